// The replica's I/O (src/runtime/replica-io.ts), alone on the simulator's store and network: a
// turn's writes go to the replica actor as one batch, a commit's writes are applied with the node's
// current clock id and come back as one replica.committed, reads are answered with the stored bytes,
// and a corrupt copy is never answered as "not found".
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import type { CommitWrite, ReplicaWriteItem } from '../../actors/replica.machine.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { encode } from '../../src/protocol/codec.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import type { Store } from '../../src/ports/store.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { createReplicaIo, replicaBatchItemsMax } from '../../src/runtime/replica-io.js';
import { recorder, rolePorts } from '../support/role-ports.js';

const enc = new TextEncoder();
const key = enc.encode('k');
/** As bytes on the wire: the codec decodes binaries as Buffers, the store hands out Uint8Arrays. */
const wire = (x: unknown) => Buffer.from(encode(x)).toString('hex');

const coordinate = (from: string, value: string, hints: string[] = []): CommitWrite => ({
  from,
  reqId: `w-${value}`,
  p: 3,
  key,
  write: { kind: 'coordinate', context: [], value: enc.encode(value), siblingsMax: 8 },
  answer: 'replica.coordinate.ok',
  hints,
});

async function setup(opts: { store?: (store: Store) => Store; watching?: boolean; noActor?: boolean } = {}) {
  const t = await rolePorts();
  const store = opts.store ? opts.store(t.store) : t.store;
  const local: NodeEvent[] = [];
  t.shared.deliver = (e) => void local.push(e);
  const renewals: string[] = [];
  const answered: string[] = [];
  const shown: ReplicaWriteItem[][] = [];
  const requests = { received() {}, answered: (from: string, reqId: string, kind: string) => void answered.push(`${from} ${reqId} ${kind}`), forwarded() {} };
  const out = createOutbound({ shared: t.shared, transport: t.transport, requests });
  const actor = recorder();
  let dotId = 'n1.e1';
  const io = createReplicaIo({
    nodeId: 'n1',
    store,
    transport: t.transport,
    log: t.log,
    limits: defaultLimits,
    now: () => t.clock.now(),
    dotId: () => dotId,
    actor: () => (opts.noActor ? undefined : actor),
    send: out.send,
    answerClient: out.answerClient,
    renewEpoch: (why) => void renewals.push(why),
    requests,
    tap: { watching: opts.watching ?? false, replicaItems: (items) => void shown.push([...items]), replicaAnswers: () => undefined },
    stats: t.shared.stats,
  });
  return { t, io, actor, local, renewals, answered, shown, setDotId: (d: string) => (dotId = d) };
}

const item = (reqId: string): ReplicaWriteItem => ({ type: 'replica.put', from: 'n2', reqId, body: { p: 3, key, state: [] } }) as unknown as ReplicaWriteItem;

describe('replica-io', () => {
  it("sends a turn's writes to the replica actor as one replica.batch from a microtask, shown to the tap only when someone follows", async () => {
    const quiet = await setup();
    quiet.io.enqueue(item('a'));
    quiet.io.enqueue(item('b'));
    expect(quiet.actor.events).toEqual([]);
    await Promise.resolve();
    expect(quiet.actor.events).toEqual([{ type: 'replica.batch', items: [item('a'), item('b')] }]);
    expect(quiet.shown).toEqual([]);
    const traced = await setup({ watching: true });
    traced.io.enqueue(item('c'));
    await Promise.resolve();
    expect(traced.shown).toEqual([[item('c')]]);
    const stopped = await setup({ noActor: true, watching: true });
    stopped.io.enqueue(item('d'));
    await Promise.resolve();
    expect(stopped.shown).toEqual([]);
  });

  it(`splits a turn of more than ${replicaBatchItemsMax} writes into several batches`, async () => {
    const { io, actor } = await setup();
    for (let i = 0; i < replicaBatchItemsMax + 3; i++) io.enqueue(item(String(i)));
    await Promise.resolve();
    expect(actor.events.map((e) => (e.items as unknown[]).length)).toEqual([replicaBatchItemsMax, 3]);
  });

  it("commits a group's writes with the current clock id, tells this node's coordinator a state it made at once, and answers the group as one event", async () => {
    const { t, io, actor, local, setDotId } = await setup();
    setDotId('n1.e7');
    const mine = coordinate('n1', 'a');
    const peers = coordinate('n2', 'b', ['n3']);
    io.perform([{ type: 'commit', writes: [mine, { ...peers, key: enc.encode('other') }] }]);
    expect(local.map((e) => e.type)).toEqual(['replica.coordinate.made']);
    const made = (local[0] as unknown as { body: { state: DvvSet } }).body.state;
    expect(made[0]![0]).toBe('n1.e7');
    expect(actor.events).toEqual([]);
    await t.run();
    expect(actor.events).toHaveLength(1);
    expect(actor.events[0]).toMatchObject({ type: 'replica.committed', results: [{ write: mine, outcome: { ok: true, siblings: 1 } }, { outcome: { ok: true } }] });
    expect(wire(t.store.get(3, key))).toBe(wire(made));
    expect([...t.store.hints()].map((h) => [h.target, h.partition])).toEqual([['n3', 3]]);
  });

  it('renews the epoch when a coordinated write whose dot was made cannot commit, and reports it failed', async () => {
    const failing = (store: Store): Store =>
      Object.assign(Object.create(store) as Store, {
        update: (p: number, k: Uint8Array, mutate: (current: DvvSet | undefined) => unknown) => {
          mutate(store.get(p, k));
          return Promise.reject(new Error('disk full'));
        },
      });
    const { t, io, actor, renewals } = await setup({ store: failing });
    const w = coordinate('n1', 'c');
    io.perform([{ type: 'commit', writes: [w] }]);
    await t.run();
    expect(actor.events).toEqual([{ type: 'replica.committed', results: [{ write: w, failed: 'Error: disk full' }] }]);
    expect(renewals).toEqual(['a coordinated write whose dot was sent could not commit']);
    expect(t.log.lines.filter((l) => l.msg === 'store update failed')).toHaveLength(1);
  });

  it('performs the sends the actor decided, and counts an output that throws', async () => {
    const { t, io } = await setup();
    io.perform([
      { type: 'send', params: { to: 'n2', kind: 'replica.error', reqId: 'e1', body: { code: 'OVERLOADED', message: 'busy' } } },
      { type: 'commit', writes: null as unknown as CommitWrite[] },
    ]);
    await t.run();
    expect(t.peer.map((m) => [m.env.kind, m.env.reqId])).toEqual([['replica.error', 'e1']]);
    expect(t.shared.stats.actionFailures).toBe(1);
  });

  it("answers a peer's read with the stored bytes, and this node's own coordinator with the state as an object", async () => {
    const { t, io, local } = await setup();
    io.perform([{ type: 'commit', writes: [coordinate('n2', 'v')] }]);
    await t.run();
    io.readAndAnswer({ from: 'n2', reqId: 'r1', p: 3, key });
    io.readAndAnswer({ from: 'n2', reqId: 'r2', p: 3, key: enc.encode('missing') });
    io.readAndAnswer({ from: 'n1', reqId: 'r3', p: 3, key });
    await t.run();
    expect(t.peer.map((m) => [m.role, m.env.kind, m.env.reqId])).toEqual([
      ['replica', 'replica.get.ok', 'r1'],
      ['replica', 'replica.get.ok', 'r2'],
    ]);
    expect(wire(t.peer[0]!.env.body)).toBe(wire({ state: t.store.get(3, key) }));
    expect(t.peer[1]!.env.body).toEqual({ state: null });
    expect(wire(local)).toBe(wire([{ type: 'replica.get.ok', from: 'n1', reqId: 'r3', body: { state: t.store.get(3, key) } }]));
  });

  it("answers a client's local read with the stored bytes, and tells the observer", async () => {
    const { t, io, answered } = await setup();
    io.perform([{ type: 'commit', writes: [coordinate('n2', 'v')] }]);
    await t.run();
    io.readAndReply({ replyTo: t.replyTo, from: 'c1', reqId: 'l1', p: 3, key });
    await t.run();
    expect(t.client.map((r) => [r.env.kind, r.env.reqId, wire(r.env.body)])).toEqual([['api.local.get.ok', 'l1', wire({ state: t.store.get(3, key) })]]);
    expect(answered).toEqual(['c1 l1 api.local.get.ok']);
  });

  it('never answers a corrupt copy as "not found": no answer to a peer, an error to a client, each counted', async () => {
    const corrupt = (store: Store): Store => Object.assign(Object.create(store) as Store, { isCorrupt: (_p: number, k: Uint8Array) => k[0] === 'k'.charCodeAt(0) });
    const { t, io } = await setup({ store: corrupt });
    io.readAndAnswer({ from: 'n2', reqId: 'r1', p: 3, key });
    io.readAndReply({ replyTo: t.replyTo, from: 'c1', reqId: 'l1', p: 3, key });
    io.readAndAnswer({ from: 'n2', reqId: 'r2', p: 3, key: enc.encode('fine') });
    await t.run();
    expect(t.peer.map((m) => m.env.reqId)).toEqual(['r2']);
    expect(t.client.map((r) => [r.env.kind, (r.env.body as { code: string }).code])).toEqual([['error', 'INTERNAL']]);
    expect(t.shared.stats.corruptReadsRefused).toBe(2);
  });
});
