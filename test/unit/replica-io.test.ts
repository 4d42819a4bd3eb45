// The replica's I/O (src/runtime/replica-io.ts), alone on the simulator's store and network: writes
// applied with the node's current clock id and acknowledged after their commit, reads answered with
// the stored bytes, and a corrupt copy never answered as "not found".
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import type { CommitWriteParams } from '../../actors/replica.machine.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { encode } from '../../src/protocol/codec.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import type { Store } from '../../src/ports/store.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { createReplicaIo } from '../../src/runtime/replica-io.js';
import { recorder, rolePorts } from '../support/role-ports.js';

const enc = new TextEncoder();
/** As bytes on the wire: the codec decodes binaries as Buffers, the store hands out Uint8Arrays. */
const wire = (x: unknown) => Buffer.from(encode(x)).toString('hex');
const key = enc.encode('k');

const coordinate = (from: string, value: string, hints: string[] = []): CommitWriteParams => ({
  from,
  reqId: `w-${value}`,
  p: 3,
  key,
  write: { kind: 'coordinate', context: [], value: enc.encode(value), siblingsMax: 8 },
  answer: 'replica.coordinate.ok',
  hints,
});

async function setup(opts: { store?: (store: Store) => Store } = {}) {
  const t = await rolePorts();
  const store = opts.store ? opts.store(t.store) : t.store;
  const local: NodeEvent[] = [];
  t.shared.deliver = (e) => void local.push(e);
  const renewals: string[] = [];
  const answered: string[] = [];
  const requests = { received() {}, answered: (from: string, reqId: string, kind: string) => void answered.push(`${from} ${reqId} ${kind}`), forwarded() {} };
  const out = createOutbound({ shared: t.shared, transport: t.transport, requests });
  const io = createReplicaIo({ shared: t.shared, store, clock: t.clock, transport: t.transport, limits: defaultLimits, requests, out, renewEpochNow: (why) => void renewals.push(why) });
  return { t, io, local, renewals, answered, store };
}

describe('replica-io', () => {
  it("applies a coordinated write with the node's current clock id, tells this node's coordinator the new state at once, and acks after the commit", async () => {
    const { t, io, local } = await setup();
    const self = recorder();
    t.shared.identity = { ...t.shared.identity, dotId: 'n1.e7' };
    io.commitWrite({ self }, coordinate('n1', 'a'));
    expect(self.events).toEqual([]);
    await Promise.resolve();
    expect(local.map((e) => e.type)).toEqual(['replica.coordinate.made']);
    const made = (local[0] as unknown as { body: { state: DvvSet } }).body.state;
    expect(made[0]![0]).toBe('n1.e7');
    await t.run();
    expect(self.events).toMatchObject([{ type: 'store.committed', from: 'n1', reqId: 'w-a', answer: 'replica.coordinate.ok', outcome: { ok: true, siblings: 1 } }]);
    expect(wire(t.store.get(3, key))).toBe(wire(made));
  });

  it("does not tell a peer's coordinator through this node, and writes hints for down primaries with the object", async () => {
    const { t, io, local } = await setup();
    const self = recorder();
    io.commitWrite({ self }, coordinate('n2', 'b', ['n3']));
    await t.run();
    expect(local).toEqual([]);
    expect(self.events.map((e) => e.type)).toEqual(['store.committed']);
    expect([...t.store.hints()].map((h) => [h.target, h.partition])).toEqual([['n3', 3]]);
  });

  it('renews the epoch when a coordinated write whose dot was made cannot commit, and tells the replica', async () => {
    const failing = (store: Store): Store =>
      Object.assign(Object.create(store) as Store, {
        update: (p: number, k: Uint8Array, mutate: (current: DvvSet | undefined) => unknown) => {
          mutate(store.get(p, k));
          return Promise.reject(new Error('disk full'));
        },
      });
    const { t, io, renewals } = await setup({ store: failing });
    const self = recorder();
    io.commitWrite({ self }, coordinate('n1', 'c'));
    await t.run();
    expect(self.events).toEqual([{ type: 'store.failed', from: 'n1', reqId: 'w-c', message: 'Error: disk full' }]);
    expect(renewals).toEqual(['a coordinated write whose dot was sent could not commit']);
    // A sync write makes no dot: nothing to renew.
    io.commitWrite({ self }, { ...coordinate('n2', 'd'), write: { kind: 'sync', state: [] } });
    await t.run();
    expect(renewals).toHaveLength(1);
    expect(t.log.lines.filter((l) => l.msg === 'store update failed')).toHaveLength(2);
  });

  it("answers a peer's read with the stored bytes, and this node's own coordinator with the state as an object", async () => {
    const { t, io, local } = await setup();
    io.commitWrite({ self: recorder() }, coordinate('n2', 'v'));
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
    io.commitWrite({ self: recorder() }, coordinate('n2', 'v'));
    await t.run();
    io.readAndReply({ replyTo: t.replyTo, from: 'c1', reqId: 'l1', p: 3, key });
    await t.run();
    expect(t.client.map((r) => [r.env.kind, r.env.reqId, wire(r.env.body)])).toEqual([['api.local.get.ok', 'l1', wire({ state: t.store.get(3, key) })]]);
    expect(answered).toEqual(['c1 l1 api.local.get.ok']);
  });

  it('never answers a corrupt copy as "not found": no answer to a peer, an error to a client, each counted', async () => {
    const corrupt = (store: Store): Store => Object.assign(Object.create(store) as Store, { isCorrupt: (_p: number, k: Uint8Array) => k[0] === 'k'.charCodeAt(0) });
    const { t, io } = await setup({ store: corrupt });
    expect(io.isCorruptHere(3, enc.encode('other'), undefined)).toBe(false);
    io.readAndAnswer({ from: 'n2', reqId: 'r1', p: 3, key });
    io.readAndReply({ replyTo: t.replyTo, from: 'c1', reqId: 'l1', p: 3, key });
    await t.run();
    expect(t.peer).toEqual([]);
    expect(t.client.map((r) => [r.env.kind, (r.env.body as { code: string }).code])).toEqual([['error', 'INTERNAL']]);
    expect(t.shared.stats.corruptReadsRefused).toBe(2);
  });
});
