// Answers out (src/runtime/outbound-io.ts), alone on the simulator's network: what leaves the node,
// on which role, with which envelope, and what the request observer is told.
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { encodedState } from '../../src/runtime/encoded-states.js';
import type { RequestObserver } from '../../src/runtime/node-api.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { rolePorts } from '../support/role-ports.js';

function observer() {
  const seen: string[] = [];
  const requests: RequestObserver = {
    received: (op, from, reqId) => void seen.push(`received ${op} ${from} ${reqId}`),
    answered: (from, reqId, kind, code) => void seen.push(`answered ${from} ${reqId} ${kind} ${code ?? '-'}`),
    forwarded: (from, reqId, to) => void seen.push(`forwarded ${from} ${reqId} ${to}`),
  };
  return { seen, requests };
}

describe('outbound-io', () => {
  it('sends an envelope to a peer on the role its kind names', async () => {
    const t = await rolePorts();
    const out = createOutbound({ shared: t.shared, transport: t.transport });
    out.send({ to: 'n2', kind: 'replica.get', reqId: 'r1', body: { p: 3 } });
    out.send({ to: 'n2', kind: 'handoff.batch', reqId: 'r2', body: { items: [] } });
    await t.run();
    expect(t.peer.map((m) => [m.role, m.env.kind, m.env.from, m.env.to, m.env.reqId])).toEqual([
      ['replica', 'replica.get', 'n1', 'n2', 'r1'],
      ['handoff', 'handoff.batch', 'n1', 'n2', 'r2'],
    ]);
    expect(t.peer[0]!.env.body).toEqual({ p: 3 });
  });

  it("sends a turn's replica.put requests to one replica as one replica.puts, each state as the bytes it was encoded as once", async () => {
    const t = await rolePorts();
    const out = createOutbound({ shared: t.shared, transport: t.transport });
    const state = [['n1.e1', 1, [new Uint8Array([7])]]] as DvvSet;
    out.send({ to: 'n2', kind: 'replica.put', reqId: 'p1', body: { p: 3, key: new Uint8Array([1]), state } });
    out.send({ to: 'n2', kind: 'replica.put', reqId: 'p2', body: { p: 4, key: new Uint8Array([2]), state } });
    await t.run();
    expect(t.peer.map((m) => [m.role, m.env.kind])).toEqual([['replica', 'replica.puts']]);
    const items = (t.peer[0]!.env.body as { items: [string, number, Uint8Array, Uint8Array, string | null][] }).items;
    expect(items.map(([reqId, p]) => [reqId, p])).toEqual([['p1', 3], ['p2', 4]]);
    const hex = Buffer.from(encodedState(state)).toString('hex');
    expect(items.map((i) => Buffer.from(i[3]).toString('hex'))).toEqual([hex, hex]);
    expect(decode(items[0]![3])).toEqual(decode(encode(state)));
    // A lone request goes as a plain replica.put.
    out.send({ to: 'n2', kind: 'replica.put', reqId: 'p3', body: { p: 3, key: new Uint8Array([1]), state } });
    await t.run();
    expect(t.peer.map((m) => m.env.kind)).toEqual(['replica.puts', 'replica.put']);
  });

  it("sends to this node itself without the network: the request path's kinds at once (into a turn's batch), anything else on a later microtask", async () => {
    const t = await rolePorts();
    const delivered: NodeEvent[] = [];
    t.shared.deliver = (e) => void delivered.push(e);
    const out = createOutbound({ shared: t.shared, transport: t.transport });
    out.send({ to: 'n1', kind: 'handoff.batch.ok', reqId: 'h1', body: {} });
    out.send({ to: 'n1', kind: 'replica.get.ok', reqId: 'r1', body: { state: null } });
    expect(delivered).toEqual([{ type: 'replica.get.ok', from: 'n1', reqId: 'r1', body: { state: null } }]);
    await Promise.resolve();
    expect(delivered.map((e) => e.type)).toEqual(['replica.get.ok', 'handoff.batch.ok']);
    expect(t.network.stats.sent).toBe(0);
  });

  it('answers a client and tells the observer, with the error code of an error', async () => {
    const t = await rolePorts();
    const { seen, requests } = observer();
    const out = createOutbound({ shared: t.shared, transport: t.transport, requests });
    out.answerClient({ replyTo: t.replyTo, to: 'c1', reqId: 'q1', kind: 'api.put.ok', body: { context: [] } });
    out.answerClient({ replyTo: t.replyTo, to: 'c1', reqId: 'q2', kind: 'error', body: { code: 'NOT_READY', message: 'no' } });
    await t.run();
    expect(seen).toEqual(['answered c1 q1 api.put.ok -', 'answered c1 q2 error NOT_READY']);
    expect(t.client.map((r) => [r.replyTo, r.env.kind, r.env.from, r.env.reqId])).toEqual([
      [t.replyTo, 'api.put.ok', 'n1', 'q1'],
      [t.replyTo, 'error', 'n1', 'q2'],
    ]);
  });

  it('adds the cluster id, memory and durability to a status answer (the runtime knows them, not the machine)', async () => {
    const t = await rolePorts();
    const memory = { rss: 1, heapUsed: 2, heapTotal: 3, external: 4, arrayBuffers: 5 };
    const out = createOutbound({ shared: t.shared, transport: t.transport, memory: () => memory as never, durability: 'sync' as never });
    out.answerClient({ replyTo: t.replyTo, to: 'c1', reqId: 's1', kind: 'api.status.ok', body: { nodeId: 'n1' } });
    // The identity is read at the answer: a renewed epoch (or cluster id) shows at once.
    t.shared.identity = { ...t.shared.identity, clusterId: 'cluster-id-2' };
    out.answerClient({ replyTo: t.replyTo, to: 'c1', reqId: 's2', kind: 'api.status.ok', body: { nodeId: 'n1' } });
    await t.run();
    expect(t.client[0]!.env.body).toMatchObject({ nodeId: 'n1', clusterId: 'cluster-id-1', memory, durability: 'sync' });
    // The process's request anatomy (src/protocol/cost-counters.ts) goes with every status answer.
    expect(Object.keys(t.client[0]!.env.body as object).sort()).toEqual(['clusterId', 'costs', 'durability', 'memory', 'nodeId']);
    expect((t.client[1]!.env.body as { clusterId: string }).clusterId).toBe('cluster-id-2');
  });

  it('forwards a client request with its reply address, marked forwarded, and tells the observer', async () => {
    const t = await rolePorts();
    const { seen, requests } = observer();
    const out = createOutbound({ shared: t.shared, transport: t.transport, requests });
    const bytes = encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'c1', to: '', reqId: 'g1', body: { key: new Uint8Array([1]) } });
    out.forward({ to: 'n2', replyTo: t.replyTo, bytes });
    await t.run();
    expect(seen).toEqual(['forwarded c1 g1 n2']);
    expect(t.peer).toHaveLength(1);
    expect(t.peer[0]!.role).toBe('forward');
    expect(t.peer[0]!.replyTo).toBe(t.replyTo);
    expect(t.peer[0]!.env).toMatchObject({ kind: 'api.get', from: 'c1', reqId: 'g1', body: { forwarded: true } });
  });
});
