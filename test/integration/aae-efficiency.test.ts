import { testSealKey } from '../support/cluster-secret.js';
import { seal } from '../../src/protocol/seal.js';
import { nodeSubject } from '../../src/protocol/subjects.js';
/**
 * Anti-entropy efficiency, in one process: two nodes (createNode, LmdbStore) joined by an
 * in-memory transport hold the same 100,000 keys over 8 partitions, except 10 that differ. One
 * round of exchanges from one node must repair exactly those keys on both sides, exchanging under 2%
 * of the bytes a full copy of the partition set would send (counted on the wire: every aae
 * envelope, both directions).
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { type DvvSet, equal, sync } from '../../src/core/dvv.js';
import { partitionOf } from '../../src/core/ring.js';
import { encode } from '../../src/protocol/codec.js';
import { systemClock } from '../../src/ports/clock.js';
import { silentLog } from '../../src/ports/log.js';
import type { Inbound, Role, Transport } from '../../src/ports/transport.js';
import { createNode, type RunningNode } from '../../src/runtime/create-node.js';
import { tempDir } from '../support/nats-server.js';

const effSeal = testSealKey('eff');

/** Delivers envelopes between in-process nodes, counting bytes per role. */
class MemoryNetwork {
  readonly handlers = new Map<string, (msg: Inbound) => void>();
  readonly bytesByRole: Record<string, number> = {};
  readonly messagesByRole: Record<string, number> = {};

  transport(self: string): Transport {
    return {
      send: (nodeId: string, role: Role, bytes: Uint8Array) => {
        this.bytesByRole[role] = (this.bytesByRole[role] ?? 0) + bytes.length;
        this.messagesByRole[role] = (this.messagesByRole[role] ?? 0) + 1;
        // Sealed as a NatsTransport seals: the bytes counted are the bytes NATS would carry.
        const subject = nodeSubject('eff', nodeId, role);
        const sealed = seal(effSeal, subject, bytes, Date.now());
        this.bytesByRole[role] = (this.bytesByRole[role] ?? 0) + sealed.length - bytes.length;
        setImmediate(() => this.handlers.get(nodeId)?.({ role, bytes: sealed, subject }));
      },
      forward: () => {},
      reply: () => {},
      listen: async (handler) => {
        this.handlers.set(self, handler);
      },
      close: async () => {
        this.handlers.delete(self);
      },
    };
  }
}

const q = 8;
const keyCount = 100_000;
const te = new TextEncoder();
const keyOf = (i: number) => te.encode(`user:${String(i).padStart(6, '0')}`);
const valueOf = (i: number) => te.encode(`{"name":"user ${i}","visits":${i % 97},"plan":"${i % 3 === 0 ? 'pro' : 'free'}","padding":"${'x'.repeat(40)}"}`);
const stateOf = (i: number): DvvSet => [['n0/seed', 1, [valueOf(i)]]];

const dirs: string[] = [];
const nodes: RunningNode[] = [];
const stores: LmdbStore[] = [];

afterAll(async () => {
  for (const n of nodes) await n.stop();
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function load(store: LmdbStore, items: Iterable<[Uint8Array, DvvSet]>): Promise<void> {
  let batch: Promise<unknown>[] = [];
  for (const [key, state] of items) {
    batch.push(store.update(partitionOf(key, q), key, (current) => ({ next: sync(current ?? [], state), result: null })));
    if (batch.length >= 2000) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}

describe('anti-entropy efficiency', () => {
  it('repairs 10 differing keys among 100,000 with under 2% of the bytes of a full copy', async () => {
    const [a, b] = ['a', 'b'].map(() => {
      const dir = tempDir('ringkv-aae-eff-');
      dirs.push(dir);
      const store = LmdbStore.open(dir);
      stores.push(store);
      return store;
    }) as [LmdbStore, LmdbStore];

    // The differences: 4 keys only a has, 3 only b has, 3 that b holds in a newer version.
    const onlyA = [11, 22_222, 45_678, 99_999];
    const onlyB = [5, 50_000, 77_777];
    const newerB = [1234, 60_606, 88_000];
    const skipA = new Set(onlyB);
    const skipB = new Set(onlyA);
    const all = Array.from({ length: keyCount }, (_, i) => i);
    const loadStarted = performance.now();
    await load(a, all.filter((i) => !skipA.has(i)).map((i) => [keyOf(i), stateOf(i)]));
    await load(b, all.filter((i) => !skipB.has(i)).map((i) => [keyOf(i), stateOf(i)]));
    await load(b, newerB.map((i) => [keyOf(i), [['n0/seed', 2, [te.encode('newer')]]] as DvvSet]));
    const loadMs = performance.now() - loadStarted;

    // A full copy of the partition set: every object as anti-entropy would carry it, [key, state].
    let fullCopyBytes = 0;
    for (let i = 0; i < keyCount; i++) fullCopyBytes += encode([keyOf(i), stateOf(i)]).length;

    const net = new MemoryNetwork();
    const config = (nodeId: string) => ({
      nodeId,
      cluster: 'eff',
      members: ['a', 'b'],
      partitions: q,
      quorum: { n: 2, r: 1, w: 1 },
      gossipRoundMs: 0,
      antiEntropy: { intervalMs: 0 },
    });
    for (const [id, store] of [['a', a], ['b', b]] as const) {
      nodes.push(await createNode(config(id), { transport: net.transport(id), seal: effSeal, store, clock: systemClock, log: silentLog, newEpoch: () => `${id}1` }));
    }
    const [nodeA, nodeB] = nodes as [RunningNode, RunningNode];
    const before = { ...net.bytesByRole };

    // One round from a: one exchange with b for each of the 8 partitions.
    const started = performance.now();
    nodeA.actor.send({ type: 'aae.tick' });
    await until(() => nodeA.aae.totals.exchanges + nodeA.aae.totals.failed >= q && nodeA.aae.status().running === 0, 60_000);
    const roundMs = performance.now() - started;

    const aaeBytes = (net.bytesByRole.aae ?? 0) - (before.aae ?? 0);
    const ratio = aaeBytes / fullCopyBytes;
    console.log(
      `aae efficiency: ${keyCount} keys (${q} partitions), 10 differing: ${aaeBytes} bytes in ${net.messagesByRole.aae} aae messages, ` +
        `full copy ${fullCopyBytes} bytes, ratio ${(ratio * 100).toFixed(3)}%, round ${roundMs.toFixed(0)} ms (loading both stores ${loadMs.toFixed(0)} ms)`,
    );
    expect(nodeA.aae.totals.failed).toBe(0);
    expect(ratio).toBeLessThan(0.02);

    // Both sides now hold the merge of the two, and every tree agrees.
    for (const i of [...onlyA, ...onlyB, ...newerB]) {
      const k = keyOf(i);
      const p = partitionOf(k, q);
      const sa = a.get(p, k);
      const sb = b.get(p, k);
      expect(sa, `key ${i}`).toBeDefined();
      expect(equal(sa!, sb!), `key ${i}`).toBe(true);
    }
    for (let p = 0; p < q; p++) expect(a.segments(p)).toEqual(b.segments(p));
    const repaired = nodeA.aae.status().partitions.reduce((n, s) => n + s.keysRepaired, 0) + nodeB.aae.status().partitions.reduce((n, s) => n + s.keysRepaired, 0);
    expect(repaired).toBe(10);
  }, 120_000);
});

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the anti-entropy round');
    await new Promise((r) => setTimeout(r, 20));
  }
}
