/**
 * A hundred nodes in the simulator (issue 20, item 5): the same createNode() as production on one
 * SimNetwork, SimClock and a SimStore per node, Q partitions (default 1024), a steady put/get load,
 * then a join of J new nodes (started with --seeds, joins staged at members and committed once),
 * then a leave of L members (each staged at itself, committed once). No faults: this measures the
 * membership machinery at size, not its failure handling (`ringkv sim` does that).
 *
 * Reported: gossip bytes per round per node; gossip rounds from each commit until every node routes
 * by the new ring; partitions that changed their first owner against the least any balanced claim
 * must move; the spread of partitions per node (primary ownership) after each step; and the
 * simulator's own time. Anti-entropy runs at its default interval (60 s), so it barely runs in the
 * simulated minutes.
 */
import { Prng } from '../core/prng.js';
import { quorumDefault } from '../core/quorum.js';
import type { Ring } from '../core/ring.js';
import { silentLog } from '../ports/log.js';
import type { SealKey } from '../protocol/seal.js';
import { clusterIdOf } from '../protocol/cluster-id.js';
import { createNode, type NodeConfig, type RunningNode } from '../runtime/create-node.js';
import { SimClock } from '../adapters/sim/sim-clock.js';
import { SimNetwork } from '../adapters/sim/sim-network.js';
import { SimStore } from '../adapters/sim/sim-store.js';
import { SimClient, sleep } from './sim-client.js';
import { type GossipContext, departureStep, departureWaiting } from '../../actors/gossip.machine.js';

export interface ScaleOptions {
  seed: number;
  nodes: number;
  partitions: number;
  joins: number;
  leaves: number;
  /** Gossip round in simulated ms. */
  gossipRoundMs: number;
  /** Requests in flight from the load clients all the time. */
  load: number;
  /** How long the cluster settles after each commit before the next step (simulated ms) at most. */
  stepLimitMs: number;
  /** Called with a line at each phase (the run takes minutes at 100 nodes). */
  progress?: (line: string) => void;
}

export const scaleDefaults: ScaleOptions = { seed: 1, nodes: 100, partitions: 1024, joins: 10, leaves: 10, gossipRoundMs: 1000, load: 2, stepLimitMs: 120_000 };

export interface SpreadReport {
  nodes: number;
  min: number;
  max: number;
  mean: number;
}

export interface StepReport {
  step: 'join' | 'leave';
  nodes: string[];
  ringVersion: number;
  /** Simulated ms, and gossip rounds, from the commit until every node routes by this ring (or later). */
  convergedAfterMs: number | null;
  roundsToConverge: number | null;
  /** Partitions whose first owner changed, and the least a balanced claim must move. */
  partitionsMoved: number;
  partitionsMovedMin: number;
  spread: SpreadReport;
  /** Leave only: simulated ms from the commit until every leaving node had handed over and exited. */
  exitedAfterMs?: number | null;
  /** Leave only: each leaver that had not exited by the limit, and what it still held. */
  stuck?: string[];
}

export interface ScaleReport {
  options: ScaleOptions;
  initialSpread: SpreadReport;
  gossipBytesPerRoundPerNode: number;
  steps: StepReport[];
  requests: { ok: number; failed: number };
  simulatedMs: number;
  wallMs: number;
}

const clusterName = 'scale';

interface Slot {
  id: string;
  store: SimStore;
  node?: RunningNode;
  exited: boolean;
}

export async function runScale(options: Partial<ScaleOptions> = {}): Promise<ScaleReport> {
  const o: ScaleOptions = { ...scaleDefaults, ...options };
  const wallStart = performance.now();
  const root = new Prng(o.seed >>> 0);
  const clock = new SimClock();
  const network = new SimNetwork(clock, root.fork('network'));
  let gossipBytes = 0;
  /** Messages delivered per role since the last progress line (what a slow step is busy with). */
  const byRole = new Map<string, number>();
  network.onDeliver = (d) => {
    if (d.role === 'gossip') gossipBytes += d.bytes.length;
    byRole.set(d.role, (byRole.get(d.role) ?? 0) + 1);
  };
  const traffic = (): string => {
    const text = [...byRole].map(([role, count]) => `${role} ${count}`).join(', ');
    byRole.clear();
    return text || 'no messages';
  };
  const members = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  const joiners = Array.from({ length: o.joins }, (_, i) => `n${o.nodes + i + 1}`);
  const epochPrng = root.fork('epoch');
  const newEpoch = () => epochPrng.nextUint32().toString(16).padStart(8, '0');
  const slots = new Map<string, Slot>();
  // Sealed like production (and like src/sim/runner.ts): the seal's cost is part of what scales.
  const secretPrng = root.fork('cluster-secret');
  const secret = new Uint8Array(32).map(() => secretPrng.nextUint32() & 0xff);
  const seal: SealKey = { clusterId: clusterIdOf(secret, clusterName), secret };

  const config = (nodeId: string, joining: boolean): NodeConfig => ({
    nodeId,
    cluster: clusterName,
    members: joining ? [] : members,
    ...(joining ? { seeds: members.slice(0, 3) } : {}),
    partitions: o.partitions,
    quorum: quorumDefault,
    gossipRoundMs: o.gossipRoundMs,
  });
  const start = async (id: string, joining: boolean) => {
    const slot: Slot = { id, store: new SimStore(clock, root.fork(`store-${id}`)), exited: false };
    slots.set(id, slot);
    const node = await createNode(config(id, joining), { transport: network.attach(id, { key: seal, cluster: clusterName }), seal, store: slot.store.open(), clock: clock.view(), log: silentLog, newEpoch, seed: root.fork(`node-${id}`).nextUint32() });
    slot.node = node;
    void node.exited.then(() => {
      slot.exited = true;
      void node.stop().then(() => network.crash(id));
    });
  };

  await clock.runUntilSettled(Promise.all(members.map((id) => start(id, false))), o.stepLimitMs);

  const live = () => [...slots.values()].filter((s) => s.node !== undefined && !s.exited);

  // Everything below runs on simulated time: one scenario, driven by the clock until it settles.
  const scenario = (async () => {
    // The load: puts and gets of random keys through the API queue group, all the time.
    const requests = { ok: 0, failed: 0 };
    let loadOn = true;
    const loadPrng = root.fork('load');
    const text = new TextEncoder();
    const loops = Array.from({ length: o.load }, (_, i) =>
      (async () => {
        const client = new SimClient(network, clock, `load${i + 1}`, 2000);
        while (loadOn) {
          const key = text.encode(`k${loadPrng.int(0, 99_999)}`);
          const r = loadPrng.chance(0.5) ? await client.put(key, text.encode('v')) : await client.get(key);
          if (r.ok) requests.ok++;
          else requests.failed++;
          await sleep(clock, 5);
        }
      })(),
    );

    /** The committed ring a node knows (its cluster state), and whether it routes by it already. */
    const ringAt = (s: Slot): VersionedRing | undefined => {
      const context = (s.node?.actor.getSnapshot() as { context?: { ring?: Ring; membership?: { ring: VersionedRing } } } | undefined)?.context;
      const committed = context?.membership?.ring;
      if (!committed || !context?.ring) return undefined;
      return sameOwners(context.ring.owners, committed.owners) ? committed : { ...committed, version: committed.version - 0.5 };
    };
    const anyRing = () => ringAt(live()[0]!)!;

    // Gossip volume in steady state: a few rounds with the load running.
    await sleep(clock, 3 * o.gossipRoundMs);
    const gossipFrom = gossipBytes;
    const measuredFrom = clock.now();
    const measureRounds = 10;
    await sleep(clock, measureRounds * o.gossipRoundMs);
    const gossipBytesPerRoundPerNode = Math.round((gossipBytes - gossipFrom) / ((clock.now() - measuredFrom) / o.gossipRoundMs) / o.nodes);

    const initialSpread = spreadOf(anyRing());
    const steps: StepReport[] = [];
    o.progress?.(`t=${clock.now()} steady: ${gossipBytesPerRoundPerNode} gossip bytes per round per node`);
    const admin = new SimClient(network, clock, 'admin', 5000);

    /** Stages every change, commits once at `at`, and waits until every live node routes by the ring. */
    const change = async (step: 'join' | 'leave', nodes: string[], stageAt: (node: string) => string, commitAt: string): Promise<StepReport> => {
      const before = anyRing();
      for (const node of nodes) {
        for (;;) {
          const staged = await admin.cluster(step, node, stageAt(node));
          if (staged.ok || staged.code === 'ALREADY_MEMBER') break;
          if (clock.now() > o.stepLimitMs * 10) throw new Error(`could not stage the ${step} of ${node}: ${staged.code} ${staged.message}`);
          await sleep(clock, o.gossipRoundMs);
        }
      }
      let ringVersion = 0;
      for (;;) {
        const committed = await admin.cluster('commit', undefined, commitAt);
        if (committed.ok) {
          ringVersion = committed.body.ringVersion;
          break;
        }
        await sleep(clock, o.gossipRoundMs);
      }
      const committedAt = clock.now();
      o.progress?.(`t=${committedAt} ${step} of ${nodes.length} committed: ring version ${ringVersion}`);
      const by = committedAt + o.stepLimitMs;
      const converged = () => live().every((s) => (ringAt(s)?.version ?? 0) >= ringVersion);
      while (!converged() && clock.now() < by) await sleep(clock, o.gossipRoundMs / 10);
      const convergedAfterMs = converged() ? clock.now() - committedAt : null;
    const roundsToConverge = convergedAfterMs === null ? null : Math.ceil(convergedAfterMs / o.gossipRoundMs);
      const after = live().map(ringAt).find((r) => r !== undefined && r.version >= ringVersion) ?? anyRing();
      const moved = after.owners.filter((owner, p) => owner !== before.owners[p]).length;
      const ownersBefore = new Set(before.owners).size;
      const ownersAfter = new Set(after.owners).size;
      // A claim balanced to within one partition gives each owner at least floor(Q/k): a join must
      // hand each newcomer that many, a leave must hand over what the leavers held.
      const movedMin = step === 'join' ? (ownersAfter - ownersBefore) * Math.floor(o.partitions / ownersAfter) : before.owners.filter((owner) => nodes.includes(owner)).length;
      const report: StepReport = { step, nodes, ringVersion, convergedAfterMs, roundsToConverge, partitionsMoved: moved, partitionsMovedMin: movedMin, spread: spreadOf(after) };
      if (step === 'leave') {
        const leavers = nodes.map((id) => slots.get(id)!);
        let reportAt = clock.now() + 10 * o.gossipRoundMs;
        while (!leavers.every((s) => s.exited) && clock.now() < by) {
          await sleep(clock, o.gossipRoundMs);
          if (clock.now() >= reportAt) {
            reportAt = clock.now() + 10 * o.gossipRoundMs;
            o.progress?.(`t=${clock.now()} leavers not exited: ${leavers.filter((s) => !s.exited).map(stuckLeaver).join('; ')}; messages since: ${traffic()}`);
          }
        }
        report.exitedAfterMs = leavers.every((s) => s.exited) ? clock.now() - committedAt : null;
        // Why a leaver has not exited: what it still holds, and what its transfers wait for.
        report.stuck = leavers.filter((s) => !s.exited).map((s) => stuckLeaver(s));
      }
      return report;
    };

    // Join: the new nodes start with seeds, each join is staged at a member, one commit for all.
    await Promise.all(joiners.map((id) => start(id, true)));
    await sleep(clock, 3 * o.gossipRoundMs);
    steps.push(await change('join', joiners, (_, i = 0) => members[i % members.length]!, members[0]!));

    // Leave: members staged at themselves (as `ringkv cluster leave`), one commit for all.
    const leavers = members.slice(1, 1 + o.leaves);
    steps.push(await change('leave', leavers, (node) => node, members[0]!));

    loadOn = false;
    await Promise.all(loops);
    return { initialSpread, gossipBytesPerRoundPerNode, steps, requests };
  })();
  const { initialSpread, gossipBytesPerRoundPerNode, steps, requests } = await clock.runUntilSettled(scenario, o.stepLimitMs * 20);
  const simulatedMs = clock.now();
  await clock.runUntilSettled(Promise.all(live().map((s) => s.node!.stop())), o.stepLimitMs);
  return { options: o, initialSpread, gossipBytesPerRoundPerNode, steps, requests, simulatedMs, wallMs: Math.round(performance.now() - wallStart) };
}

function stuckLeaver(s: Slot): string {
  const t = s.node?.transfers();
  const context = (s.node?.actor.getSnapshot() as { context?: { membership?: { members: Record<string, { status: string }>; ring: { version: number; owners: string[] } } } } | undefined)?.context;
  const m = context?.membership;
  const held = [...new Set([...s.store.hints()].map((h) => h.target))];
  const children = (s.node?.actor.getSnapshot() as { children?: Record<string, { getSnapshot(): { context: unknown } } | undefined> } | undefined)?.children;
  const gossip = children?.gossip?.getSnapshot().context as GossipContext | undefined;
  const transfer = children?.transfer?.getSnapshot().context as { scanning: boolean; idleTold: boolean; running: string[]; waiting: unknown[] } | undefined;
  const departure = gossip
    ? gossip.exiting
      ? 'told to exit; stopping'
      : gossip.transferIdle
      ? `handed over; waits for ${departureWaiting(gossip).join(',') || 'nobody'} to acknowledge (${departureStep(gossip) ?? 'no step'})`
      : `transfer not idle (${transfer ? `scanning ${transfer.scanning}, idle told ${transfer.idleTold}, ${transfer.running.length} running, ${transfer.waiting.length} waiting` : 'no transfer actor'})`
    : 'no gossip actor';
  return `${s.id}: ${departure}; ${m?.members[s.id]?.status ?? '?'}, ring version ${m?.ring.version ?? '?'} (${m?.ring.owners.includes(s.id) ? 'in' : 'out of'} it), ${s.store.hintCount()} hints${held.length > 0 ? ` for ${held.join(',')}` : ''}, ${t ? `${t.running} transfers running, ${t.waiting} waiting` : 'not running'}`;
}

interface VersionedRing {
  version: number;
  owners: string[];
}

function sameOwners(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function spreadOf(ring: { owners: string[] }): SpreadReport {
  const counts = new Map<string, number>();
  for (const owner of ring.owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  const values = [...counts.values()];
  return { nodes: counts.size, min: Math.min(...values), max: Math.max(...values), mean: Math.round((ring.owners.length / counts.size) * 10) / 10 };
}
