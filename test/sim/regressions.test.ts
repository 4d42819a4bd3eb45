// Regression tests for the protocol bugs the simulator found (both fixed), each replayed as a short
// scripted scenario on the simulator's adapters with the production runtime, so that it does not
// hang on one seed of a sweep, which any protocol change reshuffles. Each scenario keeps every
// acknowledged item with the real code, and loses one when its bug is injected again
// (src/sim/bugs.ts): so the scenario still reaches the state that the fix is about.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/core/prng.js';
import { type SimClockView, SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork, calmLink } from '../../src/adapters/sim/sim-network.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import { silentLog } from '../../src/ports/log.js';
import { createNode, type RunningNode } from '../../src/runtime/create-node.js';
import { type InjectedBugs, withBugs } from '../../src/sim/bugs.js';
import { SimClient } from '../../src/sim/sim-client.js';
import { decodeCart, encodeCart } from '../../src/sim/workloads.js';
import { runSimulation } from '../../src/sim/runner.js';
import { testSealKey } from '../support/cluster-secret.js';

/** A fixed secret: the simulation stays a function of its seeds. */
const simSeal = testSealKey('sim', 'sim-secret-'.repeat(4));

const members = ['n1', 'n2', 'n3'];
const key = new TextEncoder().encode('cart');
const quorum = { n: 3, r: 2, w: 2 };

/** Three nodes on calm links (1 ms a hop), gossip off, each store with its own fixed commit delay. */
async function scriptedCluster(commitDelayMs: Record<string, number>, bugs: InjectedBugs) {
  const clock = new SimClock();
  const network = new SimNetwork(clock, new Prng(1));
  const epochs = new Prng(2);
  const stores = new Map(
    members.map((id) => {
      const ms = commitDelayMs[id]!;
      return [id, new SimStore(clock, new Prng(3), { commitDelayMinMs: ms, commitDelayMaxMs: ms })];
    }),
  );
  const nodes = new Map<string, { node: RunningNode; view: SimClockView }>();
  const start = async (id: string) => {
    const view = clock.view();
    const node = await clock.runUntilSettled(
      createNode(
        { nodeId: id, cluster: 'sim', members, partitions: 4, gossipRoundMs: 0, requestTimeoutMs: 200 },
        {
          transport: network.attach(id, { key: simSeal, cluster: 'sim' }),
          seal: simSeal,
          store: withBugs(stores.get(id)!.open(), bugs),
          clock: view,
          log: silentLog,
          newEpoch: () => epochs.nextUint32().toString(16),
          seed: 7,
        },
      ),
    );
    nodes.set(id, { node, view });
  };
  const crash = (id: string, wipe = false) => {
    // The power goes: the node's transport, timers and uncommitted writes are gone.
    network.crash(id);
    nodes.get(id)!.view.dispose();
    if (wipe) stores.get(id)!.wipe();
    else stores.get(id)!.crash();
    nodes.get(id)!.node.actor.stop();
  };
  for (const id of members) await start(id);
  const client = new SimClient(network, clock, 'c1', 200);
  /** Items of the final read (R = N), after the cluster has had time to repair itself. */
  const finalItems = async () => {
    await clock.runUntil(clock.now() + 500);
    const final = await clock.runUntilSettled(client.get(key, { n: 3, r: 3, node: 'n2' }));
    await clock.runUntil(clock.now() + 500);
    // A clean stop writes the node's clean-stop mark: the clock must run meanwhile.
    await clock.runUntilSettled(Promise.all([...nodes.values()].map(({ node }) => node.stop())));
    const items = final.ok ? final.body.values.flatMap((v) => decodeCart(v) ?? []) : ['(the final read failed)'];
    return [...new Set(items)].sort();
  };
  return { clock, network, client, start, crash, finalItems };
}

/**
 * Dot reuse after a crash. n1 coordinates a put whose commit is slow; before it commits, a read
 * coordinated by n1 answers from n1's store overlay, so the uncommitted dot n1/e:1 reaches a client,
 * whose next put (through n2) supersedes it and is acknowledged. n1 crashes: the write is lost. Had
 * the node restarted with the same epoch, its next write of the key would make dot n1/e:1 again
 * for a new value, and the replicas that saw n1/e:1 superseded would drop that value on sync
 * although its put was acknowledged. The fix: a node takes a new epoch after a crash.
 */
async function dotReuse(bugs: InjectedBugs = {}): Promise<{ acked: boolean; final: string[] }> {
  const c = await scriptedCluster({ n1: 40, n2: 1, n3: 1 }, bugs);
  // 1. A put through n1: n1 makes dot n1/e:1 and waits 40 ms for its commit.
  void c.client.put(key, encodeCart(['a']), { ...quorum, node: 'n1' });
  await c.clock.runUntil(c.clock.now() + 5);
  // 2. A read coordinated by n1 sees the uncommitted dot in n1's overlay.
  const read = await c.clock.runUntilSettled(c.client.get(key, { ...quorum, node: 'n1' }));
  expect(read.ok && read.body.values.map((v) => decodeCart(v))).toEqual([['a']]);
  // 3. A put through n2 with that context supersedes n1/e:1; n2 and n3 commit at once.
  const context = read.ok ? read.body.context : undefined;
  const second = await c.clock.runUntilSettled(c.client.put(key, encodeCart(['a', 'b']), { ...quorum, context, node: 'n2' }));
  expect(second.ok).toBe(true);
  // 4. n1 crashes before its commit and restarts.
  c.crash('n1');
  await c.start('n1');
  // 5. A new put through n1 without a context: with the old epoch this would be dot n1/e:1 again.
  const third = await c.clock.runUntilSettled(c.client.put(key, encodeCart(['c']), { ...quorum, node: 'n1' }));
  return { acked: third.ok, final: await c.finalItems() };
}

/**
 * An early ack. n1 coordinates a put and commits in 20 ms; it sends the new state to n2 and n3 at
 * once, but the link to n2 is slow (10 ms). n3 has the state in its overlay at once (its commit
 * takes 40 ms), and a read through n3 read-repairs n2, whose commit takes 40 ms too. When n1's
 * replica.put reaches n2, the state it carries is already in n2's overlay: the update writes
 * nothing. Had the store resolved it at once, n2 would ack before its copy was durable, the client
 * would be told "stored", and a power loss right then plus the loss of n1's disk would lose the
 * write that W = 2 replicas acked. The fix: an update that writes nothing waits for the key's
 * pending commit (LmdbStore, and SimStore after it).
 */
async function earlyAck(bugs: InjectedBugs = {}): Promise<{ acked: boolean; final: string[] }> {
  const c = await scriptedCluster({ n1: 20, n2: 40, n3: 40 }, bugs);
  c.network.setLinkFaults('n1', 'n2', { ...calmLink, delayMinMs: 10, delayMaxMs: 10 });
  const put = c.client.put(key, encodeCart(['x']), { ...quorum, node: 'n1' });
  await c.clock.runUntil(c.clock.now() + 2);
  const read = await c.clock.runUntilSettled(c.client.get(key, { n: 3, r: 3, node: 'n3' }));
  expect(read.ok && read.body.values.map((v) => decodeCart(v))).toEqual([['x']]);
  const acked = await c.clock.runUntilSettled(put);
  c.network.setLinkFaults('n1', 'n2', calmLink);
  // The worst moment: the power goes right after the client's ack, and n1's disk is lost with it.
  c.crash('n1', true);
  c.crash('n2');
  c.crash('n3');
  for (const id of members) await c.start(id);
  return { acked: acked.ok, final: await c.finalItems() };
}

describe('regressions: bugs the simulator found', () => {
  it('dot reuse after a crash: an uncommitted dot that escaped through a read is not made again for another value', async () => {
    const r = await dotReuse();
    expect(r.acked).toBe(true);
    expect(r.final).toEqual(['a', 'b', 'c']);
  });

  it('dot reuse comes back when a node keeps its epoch after a crash: the acknowledged "c" is lost', async () => {
    const r = await dotReuse({ keepEpochAfterCrash: true });
    expect(r.acked).toBe(true);
    expect(r.final).toEqual(['a', 'b']);
  });

  it('early ack: a replica acks a state it already holds only once that state is durable (W acks are W copies)', async () => {
    const r = await earlyAck();
    expect(r.acked).toBe(true);
    expect(r.final).toEqual(['x']);
  });

  it('early ack comes back when an update that writes nothing resolves at once: the acknowledged "x" is lost', async () => {
    const r = await earlyAck({ noOpAckBeforeCommit: true });
    expect(r.acked).toBe(true);
    expect(r.final).toEqual([]);
  });

  // A leaving node exited while it still held hints (transfer skips hinted objects, leaving them to
  // hinted handoff, and reported idle all the same): the objects only it held as a fallback left with
  // it. Fixed: transfer is not idle while the node holds hints (the precise check is the transfer
  // machine's test "is not idle while the node holds hints"). This is the seed that found it, as a
  // whole run: a protocol change may reshuffle it, so it guards the end result, not the exact path.
  it('leave with hints: the leaving node hands its hints off before it exits (seed 14, join then leave under faults)', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ seed: 14, nodes: 4, ops: 100, faults: ['drop', 'partition', 'crash', 'join', 'leave'] });
    expect(r.violations, r.replay).toEqual([]);
    expect(r.events.some((e) => / exit n\d: left the cluster/.test(e))).toBe(true);
  });

  // A leaving node that transfer reported idle for went one gossip round later (so the others hear
  // it is gone), and in that round writes from nodes that had not yet learned the new ring still
  // landed on it: it exited holding an object of a partition it no longer replicated, never handed
  // over. Fixed: a node that left exits only once it holds nothing it does not replicate and no
  // hint (transfer keeps scanning every round meanwhile). The seed that found it, as a whole run.
  it('leave: writes that land on the leaving node after transfer went idle are handed over before it exits (seed 317)', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ seed: 317, faults: 'swarm' });
    expect(r.violations, r.replay).toEqual([]);
    expect(r.events.some((e) => / exit n\d: left the cluster/.test(e))).toBe(true);
  });

  // A fallback coordinated writes to a key (dots n4/e:1, n4/e:2), handed the key over to its
  // returning primary and dropped its copy; coordinating that key again later from nothing, it made
  // n4/e:1 again for a new value, and every replica that had seen the first n4/e:1 dropped the new
  // value as already seen: an acknowledged write lost. Fixed: a node takes a new epoch before it
  // deletes objects carrying dots of its current clock id (src/runtime/identity.ts). The seed that
  // found it, as a whole run (seeds 822 and 927 failed the same way).
  it('dot reuse after a drop: a node that deleted a key it made dots in never makes those dots again (seed 790)', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ seed: 790, faults: 'swarm' });
    expect(r.violations, r.replay).toEqual([]);
    expect(r.lost).toBe(0);
  });
});
