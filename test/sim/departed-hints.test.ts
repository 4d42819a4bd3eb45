// Hints for a member that has left the cluster for good (force-removed, or exited after a leave)
// can never be delivered. Before the fix they stayed forever: the holder's hint count only grew, and
// since ownership transfer leaves an object with a pending hint alone, a leaving holder of such a
// hint never exited and the object never reached the key's current primaries. A scripted scenario on
// the simulator's adapters with the production runtime (gossip, failure detector, handoff, transfer,
// membership through api.cluster as the admin client sends it).
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/core/prng.js';
import { partitionOf, preferenceList } from '../../src/core/ring.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { type SimClockView, SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork } from '../../src/adapters/sim/sim-network.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import { silentLog } from '../../src/ports/log.js';
import { createNode, type RunningNode } from '../../src/runtime/create-node.js';
import { SimClient } from '../../src/sim/sim-client.js';
import type { ClusterOp } from '../../src/protocol/messages.js';
import type { ClusterState } from '../../src/core/cluster-state.js';
import { testSealKey } from '../support/cluster-secret.js';

/** A fixed secret: the simulation stays a function of its seeds. */
const simSeal = testSealKey('sim', 'sim-secret-'.repeat(4));

const members = ['n1', 'n2', 'n3', 'n4', 'n5'];
const q = 8;
const n = 3;
const roundMs = 100;
const enc = new TextEncoder();
const dec = new TextDecoder();

async function cluster() {
  const clock = new SimClock();
  const network = new SimNetwork(clock, new Prng(1));
  const epochs = new Prng(2);
  const stores = new Map(members.map((id) => [id, new SimStore(clock, new Prng(3), { commitDelayMinMs: 1, commitDelayMaxMs: 2 })]));
  const nodes = new Map<string, { node: RunningNode; view: SimClockView; exited: boolean }>();
  for (const id of members) {
    const view = clock.view();
    const node = await clock.runUntilSettled(
      createNode(
        { nodeId: id, cluster: 'sim', members, partitions: q, quorum: { n, r: 2, w: 2 }, gossipRoundMs: roundMs, requestTimeoutMs: 500, antiEntropy: { intervalMs: 0 } },
        { transport: network.attach(id, { key: simSeal, cluster: 'sim' }), seal: simSeal, store: stores.get(id)!.open(), clock: view, log: silentLog, newEpoch: () => epochs.nextUint32().toString(16), seed: members.indexOf(id) + 11 },
      ),
    );
    const slot = { node, view, exited: false };
    // A node that has left stops, as `ringkv node` does on `exited`.
    void node.exited.then(() => {
      slot.exited = true;
      network.crash(id);
      view.dispose();
      node.actor.stop();
    });
    nodes.set(id, slot);
  }
  const client = new SimClient(network, clock, 'c1', 500);
  const admin = new SimClient(network, clock, 'admin', 500);
  const run = (ms: number) => clock.runUntil(clock.now() + ms);
  const membership = (id: string) => (nodes.get(id)!.node.actor.getSnapshot().context as { membership: ClusterState }).membership;
  const hintsFor = (id: string, target: string) => [...stores.get(id)!.open().hints()].filter((h) => h.target === target).length;
  /** Stages `op` of `node` at `via` and commits there, until `via`'s committed state shows `done`. */
  const change = async (op: ClusterOp, node: string, via: string, done: (c: ClusterState) => boolean) => {
    for (let i = 0; i < 50 && !done(membership(via)); i++) {
      await clock.runUntilSettled(admin.cluster(op, node, via));
      await clock.runUntilSettled(admin.cluster('commit', undefined, via));
      await run(200);
    }
    expect(done(membership(via))).toBe(true);
  };
  return { clock, network, stores, nodes, client, run, membership, hintsFor, change };
}

function valuesOf(state: DvvSet | undefined): string[] {
  return (state ?? []).flatMap(([, , values]) => values.filter((v): v is Uint8Array => v !== null).map((v) => dec.decode(v)));
}

describe('hints for departed members', () => {
  it('are dropped once their target is force-removed, and a leaving holder still exits with every acknowledged write at the current primaries', async () => {
    const c = await cluster();
    await c.run(1000);
    // n5 goes down for good; the others judge it down.
    c.network.crash('n5');
    c.nodes.get('n5')!.view.dispose();
    c.stores.get('n5')!.crash();
    c.nodes.get('n5')!.node.actor.stop();
    await c.run(3000);

    // Writes with W = 2: those for n5's partitions are kept by a fallback with a hint for n5.
    const live = ['n1', 'n2', 'n3', 'n4'];
    const acked: string[] = [];
    for (let i = 0; i < 40; i++) {
      const key = `k${i}`;
      const put = await c.clock.runUntilSettled(c.client.put(enc.encode(key), enc.encode(`v${i}`), { n, w: 2, node: live[i % live.length] }));
      if (put.ok) acked.push(key);
    }
    expect(acked.length).toBe(40);
    await c.run(500);
    const holders = live.map((id) => ({ id, hints: c.hintsFor(id, 'n5') })).sort((a, b) => b.hints - a.hints);
    expect(holders[0]!.hints).toBeGreaterThan(0);
    const holder = holders[0]!.id;

    // n5 is force-removed: its hints can never be delivered. They are dropped everywhere.
    await c.change('force-remove', 'n5', 'n1', (s) => s.members.n5?.status === 'removed');
    await c.run(3000);
    for (const id of live) expect({ id, hints: c.hintsFor(id, 'n5') }).toEqual({ id, hints: 0 });

    // The holder leaves: with no hint left to wait for, it hands everything over and exits.
    const via = live.find((id) => id !== holder)!;
    await c.change('leave', holder, via, (s) => !s.ring.owners.includes(holder));
    for (let i = 0; i < 60 && !c.nodes.get(holder)!.exited; i++) await c.run(500);
    expect(c.nodes.get(holder)!.exited).toBe(true);
    await c.run(2000);

    // Every acknowledged write is at 2 or more of its current primaries (N = 3, W = 2), before any
    // read repairs it, and a read with R = 2 returns it.
    const remaining = live.filter((id) => id !== holder);
    const ring = { q, owners: c.membership(remaining[0]!).ring.owners };
    expect(new Set(ring.owners)).toEqual(new Set(remaining));
    for (const key of acked) {
      const p = partitionOf(enc.encode(key), q);
      const primaries = preferenceList(ring, p, n);
      const holding = primaries.filter((id) => valuesOf(c.stores.get(id)!.open().get(p, enc.encode(key))).includes(`v${key.slice(1)}`));
      expect({ key, holding: holding.length >= 2 }).toEqual({ key, holding: true });
    }
    for (const key of acked) {
      const got = await c.clock.runUntilSettled(c.client.get(enc.encode(key), { n, r: 2, node: remaining[0] }));
      expect(got.ok && got.body.values.map((v) => (v === null ? null : dec.decode(v)))).toEqual([`v${key.slice(1)}`]);
    }
    for (const id of remaining) expect({ id, hints: c.stores.get(id)!.open().hintCount() }).toEqual({ id, hints: 0 });
    await c.clock.runUntilSettled(Promise.all(remaining.map((id) => c.nodes.get(id)!.node.stop())));
  }, 120_000);
});
