/**
 * The simulation runner (DESIGN.md §4, issue 7): a whole cluster in one process, built by the same
 * createNode() as production, on a SimNetwork, SimStores and one SimClock, with every random choice
 * drawn from one seed. The same seed replays the same run exactly: the trace hash proves it.
 *
 * One run:
 * 1. plan the faults from the seed (swarm testing: each seed picks its own subset of fault kinds and
 *    their intensities), start N nodes with static members n1..nN;
 * 2. run the cart workload (src/sim/workloads.ts) while faults are injected: per-link drop,
 *    duplicate and delay (which reorders), partitions, crash-restart of nodes (a restart is
 *    createNode again on the same SimStore after crash(): committed data survives, and the runtime
 *    reloads its identity from it, taking a new epoch after a crash), and at most one disk loss
 *    (wipe) per run;
 * 3. heal everything, restart every node that is down, and let the cluster settle (the liveness
 *    phase): every node judges every member up again (gossip), requests in flight finish and hints
 *    are handed off; then either every key is read with R = N (which read-repairs every replica) or,
 *    in half the runs, anti-entropy alone must converge every replica before any read; a final read
 *    of every key gives the answer the invariants check;
 * 4. check the invariants (src/sim/invariants.ts).
 *
 * Nodes are driven only through their ports; the runner looks into a node only to see whether it
 * is quiet (its root actor's liveness view and coordinator count, its store's writes and hints).
 */
import type { SealKey } from '../protocol/seal.js';
import { clusterIdOf } from '../protocol/cluster-id.js';
import type { AnyActorRef } from 'xstate';
import { Prng } from '../core/prng.js';
import { quorumDefault, type Quorum } from '../core/quorum.js';
import { claimInitial, partitionOf, preferenceList, type Ring } from '../core/ring.js';
import { logFieldsAsData, type Log, type LogFields } from '../ports/log.js';
import { createNode, type NodeConfig, type RunningNode } from '../runtime/create-node.js';
import { SimClock, type SimClockView } from '../adapters/sim/sim-clock.js';
import { type LinkFaults, SimNetwork } from '../adapters/sim/sim-network.js';
import { SimStore } from '../adapters/sim/sim-store.js';
import { type InjectedBugs, withBugs } from './bugs.js';
import {
  checkAckedInFinalRead,
  checkConvergence,
  checkReads,
  checkStoredValuesWritten,
  type Violation,
} from './invariants.js';
import { type Outcome, SimClient, sleep } from './sim-client.js';
import { TraceHash } from './trace-hash.js';
import { decodeEnvelope } from '../protocol/envelope.js';
import type { DvvSet } from '../core/dvv.js';
import { describe } from './invariants.js';
import { CartWorkload } from './workloads.js';
import { DeleteWorkload, settleDeletes } from './delete-workload.js';
import { membershipLivenessProblems, membershipRoundsMax } from './membership-liveness.js';

export const faultKinds = ['drop', 'duplicate', 'delay', 'partition', 'crash', 'wipe', 'join', 'leave', 'force-remove'] as const;
export type FaultKind = (typeof faultKinds)[number];
/**
 * Membership changes: a spare node started with seeds joins (staged and committed through
 * api.cluster, as the admin client does), a member leaves (it hands its data over and exits), or a
 * member's machine is lost for good (stopped, its disk gone) and it is force-removed. Swarm testing
 * draws them from a fork of the plan's stream, so adding them left the other kinds' draws (and so
 * every older seed's faults) as they were.
 */
export const membershipKinds: readonly FaultKind[] = ['join', 'leave', 'force-remove'];

export function isFaultKind(x: string): x is FaultKind {
  return (faultKinds as readonly string[]).includes(x);
}

export interface SimOptions {
  seed: number;
  /** Nodes n1..nN (default 5). */
  nodes?: number;
  /** Cart adds in all, shared among the clients (each add is a get then a put). Default 100. */
  ops?: number;
  /** The fault kinds to inject, or 'swarm': the seed picks them and their intensities. */
  faults?: readonly FaultKind[] | 'swarm';
  /**
   * Kinds that swarm testing never picks (the other kinds are drawn as without it, so the rest of
   * each seed's plan stays the same).
   */
  swarmExcludes?: readonly FaultKind[];
  /** Concurrent workload clients (default 3). */
  clients?: number;
  /** Shared keys (default 3): few keys and several clients make concurrent writes and siblings. */
  keys?: number;
  /**
   * Keys a deleter client writes, deletes and sometimes writes again, with the tombstone reaper on
   * (src/sim/delete-workload.ts; default 2; 0: no deletes).
   */
  deletes?: number;
  /** Partitions of the ring (default 16). */
  partitions?: number;
  quorum?: Partial<Quorum>;
  /** Deadline of each client request (default 400 simulated ms). */
  requestTimeoutMs?: number;
  /** Test only: deliberately broken mechanisms (src/sim/bugs.ts). */
  bugs?: InjectedBugs;
  /** The run fails when the workload has not finished by this simulated time (default 10 min). */
  simTimeLimitMs?: number;
  /** Debugging: called with every fault and every delivered message, decoded, as one line. */
  debug?: (line: string) => void;
}

/** The faults of one run, drawn from its seed. */
export interface FaultPlan {
  kinds: FaultKind[];
  /** Mean per-link probabilities (each link draws its own share of them). */
  drop: number;
  duplicate: number;
  /** Largest per-hop delay; without the delay fault every hop takes 1 ms. */
  delayMaxMs: number;
  /** Ranges [min, max] in simulated ms. */
  partitionEveryMs: [number, number];
  partitionForMs: [number, number];
  crashEveryMs: [number, number];
  downForMs: [number, number];
  /** Probability that a crash takes every node at once (a power loss), not one node. */
  crashAllChance: number;
  /**
   * Probability that a client's acknowledgement of a put is followed at once by a power loss: the
   * worst moment for durability, when the write was just acknowledged and may not be committed
   * anywhere if an ack was given too early. At most crashOnAckMax per run.
   */
  crashOnAckChance: number;
  crashOnAckMax: number;
  /** Largest store commit delay. */
  commitDelayMaxMs: number;
  /**
   * The gossip round. The failure detector's acceptable pause and deviation floor scale with it
   * (production: 1000 ms rounds, 1000 ms pause, 500 ms floor), so that short crashes and partitions
   * are sometimes judged down and sometimes not.
   */
  gossipRoundMs: number;
  /** How often a node starts a round of anti-entropy exchanges (production: 60 s). */
  aaeIntervalMs: number;
  /**
   * The Merkle tree shape: segments per partition and fan-out (production: 1024 and 32). Smaller
   * trees keep the simulation fast; the choice varies the tree's depth.
   */
  treeShape: { segments: number; fanout: number };
  /**
   * How the liveness phase makes the replicas converge: 'read-repair' reads every key with R = N at
   * once; 'anti-entropy' first waits for the Merkle exchanges alone to converge every replica, and
   * reads only afterwards.
   */
  repairBy: 'read-repair' | 'anti-entropy';
  /** When the spare node starts and its join is staged, and when a member's leave is staged (simulated ms). */
  joinAtMs: number;
  leaveAtMs: number;
  /** When a member is lost for good and its force-remove staged (after the join and the leave, if any). */
  removeAtMs: number;
  /** Tombstone reaping: a sweep at most this often, and the grace period (production: 30 s and 1 h). */
  reapIntervalMs: number;
  reapGraceMs: number;
}

export interface FaultCounts {
  partitions: number;
  crashes: number;
  /** Crashes that took every node at once. */
  powerLosses: number;
  wipes: number;
  restarts: number;
  /** Uncommitted writes lost to crashes. */
  lostWrites: number;
  dropped: number;
  duplicated: number;
  /** Messages lost to partitions. */
  cut: number;
  /** Messages to a node that was down. */
  undeliverable: number;
  /** Verdicts of the failure detectors (summed over nodes): a member judged down, or up again. */
  judgedDown: number;
  judgedUp: number;
}

export interface SimReport {
  seed: number;
  nodes: number;
  clients: number;
  keys: number;
  ops: number;
  quorum: Quorum;
  faults: FaultPlan;
  injected: FaultCounts;
  bugs?: InjectedBugs;
  acked: number;
  /** Adds that timed out: may or may not have happened. */
  unknown: number;
  /** Adds refused with an error (UNAVAILABLE, OVERLOADED, ...): did not happen. */
  failed: number;
  /** Acknowledged items missing from the final read. */
  lost: number;
  /** Deletes the deleter had acknowledged, and tombstones the stores deleted (reaped, or dropped by ownership transfer), counted per replica. */
  deletesAcked: number;
  tombstonesReaped: number;
  /** Messages sent in all (gossip included), and request-path messages per add during the workload. */
  messages: number;
  messagesPerOp: number;
  /**
   * Simulated ms: the end of the workload, the heal (every node restarted), and from the heal until
   * the cluster settled: every member judged up again, and every replica converged (by reading every
   * key with R = N, or by anti-entropy alone: see FaultPlan.repairBy).
   */
  workloadMs: number;
  healAtMs: number;
  settleMs: number;
  /**
   * Membership runs: gossip rounds from the later of the heal and the last commit until the
   * membership liveness property held (src/sim/membership-liveness.ts), or null if it did not
   * within membershipRoundsMax; undefined without membership changes.
   */
  membershipRounds?: number | null;
  traceHash: string;
  traceEvents: number;
  violations: Violation[];
  ok: boolean;
  /** The command that replays this run. */
  replay: string;
  /** Faults as they happened: "t=120 crash n2". */
  events: string[];
}

const clusterName = 'sim';
/** How long the liveness phase waits for requests and writes in flight to finish. */
const quietLimitMs = 60_000;
/** How long after the heal every node must judge every member up again, and how often to look. */
const membersUpLimitMs = 60_000;
const membersUpPollMs = 10;
/** How long anti-entropy alone may take to converge every replica after the heal, and how often to look. */
const aaeConvergeLimitMs = 120_000;
const aaePollMs = 50;
/** How long after the heal (and the membership changes) every node must use one ring, with transfers idle. */
const ringSettleLimitMs = 120_000;
/** How long after the cluster settled the reaper has to reap every tombstone of a deleted key, and how long to look on after. */
const reapSettleLimitMs = 120_000;
const afterReapMs = 1_000;
/** Gossip rounds a hint or transfer batch waits for its acknowledgement (production: 10 s at 1 s rounds). */
const handoffAttemptRounds = 10;
/** Attempts of each liveness read before the run is declared stuck. */
const livenessReadAttempts = 5;
/** Node errors kept for the report (the first ones; the rest only repeat them). */
const nodeErrorsReportedMax = 20;

/**
 * A log that prints nothing, keeps every error a node logs (each one is a programmer error), and
 * counts the info lines the report shows (verdicts of the failure detector).
 */
function recordingLog(clock: SimClock, errors: string[], bound: LogFields, infos: Map<string, number> = new Map()): Log {
  return {
    debug() {},
    info(msg) {
      infos.set(msg, (infos.get(msg) ?? 0) + 1);
    },
    warn() {},
    error(msg, fields) {
      if (errors.length < nodeErrorsReportedMax) errors.push(`t=${clock.now()} ${JSON.stringify({ ...bound, ...logFieldsAsData(fields) })} ${msg}`);
    },
    child(fields) {
      return recordingLog(clock, errors, { ...bound, ...fields }, infos);
    },
  };
}

export function planFaults(prng: Prng, faults: readonly FaultKind[] | 'swarm', swarmExcludes: readonly FaultKind[] = []): FaultPlan {
  let kinds: FaultKind[];
  if (faults === 'swarm') {
    // Swarm testing (Groce et al.): leaving some faults out of a run lets others reach deeper.
    const base = faultKinds.filter((k) => !membershipKinds.includes(k) && prng.chance(k === 'wipe' ? 0.2 : 0.5));
    const m = prng.fork('membership');
    // A machine lost for good and a wiped disk are two permanent losses: with W = 2 they can take both
    // copies of an acknowledged write, as in any Dynamo. Swarm runs draw one or the other.
    const changes = membershipKinds.filter(() => m.chance(0.3)).filter((k) => k !== 'force-remove' || !base.includes('wipe'));
    kinds = faultKinds.filter((k) => (base.includes(k) || changes.includes(k)) && !swarmExcludes.includes(k));
  } else {
    kinds = faultKinds.filter((k) => faults.includes(k));
  }
  const times = prng.fork('membership-times');
  // A fork of its own: drawing these left every other draw of the plan (and older seeds) as it was.
  const reap = prng.fork('reap');
  return {
    reapIntervalMs: reap.int(100, 1000),
    reapGraceMs: reap.chance(0.3) ? 0 : reap.int(0, 2000),
    joinAtMs: times.int(0, 1500),
    leaveAtMs: times.int(0, 1500),
    removeAtMs: times.int(0, 1500),
    kinds,
    drop: kinds.includes('drop') ? round(prng.float(0.01, 0.15)) : 0,
    duplicate: kinds.includes('duplicate') ? round(prng.float(0.01, 0.2)) : 0,
    delayMaxMs: kinds.includes('delay') ? prng.int(2, 60) : 1,
    partitionEveryMs: range(prng, 100, 2000),
    // Outages from a blip to well past the failure detector's verdict (a few gossip rounds), so that
    // some runs judge members down and use fallbacks and hints, and others never notice.
    partitionForMs: range(prng, 10, 1500),
    crashEveryMs: range(prng, 100, 2000),
    downForMs: range(prng, 5, 1500),
    crashAllChance: round(prng.float(0, 0.4)),
    crashOnAckChance: round(prng.float(0, 0.1)),
    crashOnAckMax: prng.int(1, 3),
    // A durable commit takes longer than a hop (DESIGN.md §9: about 1 ms against about 0.3 ms).
    commitDelayMaxMs: prng.int(2, 30),
    gossipRoundMs: prng.int(50, 300),
    aaeIntervalMs: prng.int(100, 2000),
    treeShape: prng.pick(simTreeShapes),
    repairBy: prng.chance(0.5) ? 'anti-entropy' : 'read-repair',
  };
}

/** Tree shapes a run may use: depth 3, 2 and 2 (segments = fanout^depth). */
const simTreeShapes = [
  { segments: 8, fanout: 2 },
  { segments: 64, fanout: 8 },
  { segments: 256, fanout: 16 },
];

function range(prng: Prng, lo: number, hi: number): [number, number] {
  const a = prng.int(lo, hi);
  const b = prng.int(lo, hi);
  return a <= b ? [a, b] : [b, a];
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function replayCommand(o: SimOptions): string {
  const faults = o.faults === undefined || o.faults === 'swarm' ? 'swarm' : o.faults.length === 0 ? 'none' : o.faults.join(',');
  const parts = [`ringkv sim --seed ${o.seed} --nodes ${o.nodes ?? 5} --ops ${o.ops ?? 100} --faults ${faults}`];
  if (faults === 'swarm' && o.swarmExcludes && o.swarmExcludes.length > 0) parts.push(`--swarm-exclude ${o.swarmExcludes.join(',')}`);
  if (o.clients !== undefined) parts.push(`--clients ${o.clients}`);
  if (o.keys !== undefined) parts.push(`--keys ${o.keys}`);
  if (o.deletes !== undefined && o.deletes !== 2) parts.push(`--deletes ${o.deletes}`);
  return parts.join(' ');
}

interface NodeSlot {
  id: string;
  store: SimStore;
  /** Starts so far: the first is a fresh node, later ones restarts. */
  starts: number;
  /** gone: it left the cluster (handed everything over and exited); it is never started again. */
  state: 'starting' | 'up' | 'down' | 'gone';
  view?: SimClockView;
  running?: RunningNode;
  starting?: Promise<void>;
}

export async function runSimulation(opts: SimOptions): Promise<SimReport> {
  const seed = opts.seed >>> 0;
  const nodeCount = opts.nodes ?? 5;
  const ops = opts.ops ?? 100;
  const clientCount = opts.clients ?? 3;
  const keyCount = opts.keys ?? 3;
  // Q = 16, or more for a cluster larger than that (a spare node included): a ring of Q partitions
  // takes at most Q nodes (TOO_MANY_NODES).
  const partitions = opts.partitions ?? Math.max(16, 2 ** Math.ceil(Math.log2(nodeCount + 1)));
  const quorum: Quorum = { ...quorumDefault, ...opts.quorum };
  const timeoutMs = opts.requestTimeoutMs ?? 400;
  const simTimeLimitMs = opts.simTimeLimitMs ?? 600_000;
  if (nodeCount < 1 || clientCount < 1 || keyCount < 1 || ops < 0) throw new RangeError('nodes, clients and keys must be at least 1');

  const root = new Prng(seed);
  const plan = planFaults(root.fork('plan'), opts.faults ?? 'swarm', opts.swarmExcludes);
  const faultPrng = root.fork('faults');
  const clock = new SimClock();
  const network = new SimNetwork(clock, root.fork('network'));
  const trace = new TraceHash();
  const events: string[] = [];
  const counts: FaultCounts = {
    partitions: 0,
    crashes: 0,
    powerLosses: 0,
    wipes: 0,
    restarts: 0,
    lostWrites: 0,
    dropped: 0,
    duplicated: 0,
    cut: 0,
    undeliverable: 0,
    judgedDown: 0,
    judgedUp: 0,
  };

  const debug = opts.debug;
  network.onDeliver = (d) => {
    trace.num(d.at).text(d.from).text(d.to).text(d.role).text(d.replyTo ?? '').bytes(d.bytes).end();
    if (debug) debug(`t=${d.at} ${d.from} -> ${d.to} ${describeMessage(d.bytes)}`);
  };
  const event = (what: string) => {
    const line = `t=${clock.now()} ${what}`;
    events.push(line);
    trace.text(line).end();
    debug?.(line);
  };
  let onPutAcked: ((clientId: string) => void) | undefined;
  const observe = (clientId: string, reqId: string, kind: string, outcome: Outcome<unknown>) => {
    trace.num(clock.now()).text(clientId).text(reqId).text(kind).text(outcome.ok ? 'ok' : outcome.code).end();
    if (outcome.ok && kind === 'api.put') onPutAcked?.(clientId);
  };

  // The cluster.
  const members = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
  const staticRing = claimInitial(members, partitions);
  const epochPrng = root.fork('epoch');
  // The cluster secret, drawn from the seed: the simulated nodes seal and check every internal
  // message as production nodes do (SimSeal), so the sweeps cover the seal and the member gate.
  const secretPrng = root.fork('cluster-secret');
  const secret = new Uint8Array(32).map(() => secretPrng.nextUint32() & 0xff);
  const seal: SealKey = { clusterId: clusterIdOf(secret, clusterName), secret };
  const newEpoch = () => epochPrng.nextUint32().toString(16).padStart(8, '0');
  const nodeErrors: string[] = [];
  const infos = new Map<string, number>();
  const log = recordingLog(clock, nodeErrors, {}, infos);
  // The spare node of a join run: it starts with no members, only seeds, like `ringkv node --seeds`.
  const joinerId = plan.kinds.includes('join') ? `n${nodeCount + 1}` : undefined;
  const config = (nodeId: string): NodeConfig => ({
    nodeId,
    cluster: clusterName,
    members: nodeId === joinerId ? [] : members,
    ...(nodeId === joinerId ? { seeds: members } : {}),
    partitions,
    quorum,
    requestTimeoutMs: timeoutMs,
    gossipRoundMs: plan.gossipRoundMs,
    phi: { acceptablePauseMs: plan.gossipRoundMs, minStdDeviationMs: plan.gossipRoundMs / 2 },
    // Production waits 10 s (10 gossip rounds of 1 s) for a hint batch or transfer batch to be
    // acknowledged before it sends again; scaled with the round like the detector above, so a batch
    // lost to a crash is sent again within as many rounds as in production (the liveness bound is
    // in rounds: src/sim/membership-liveness.ts).
    handoff: { attemptTimeoutMs: handoffAttemptRounds * plan.gossipRoundMs },
    transfer: { attemptTimeoutMs: handoffAttemptRounds * plan.gossipRoundMs },
    antiEntropy: { intervalMs: plan.aaeIntervalMs, requestTimeoutMs: timeoutMs, fanout: plan.treeShape.fanout },
    reap: { intervalMs: plan.reapIntervalMs, graceMs: plan.reapGraceMs, answerTimeoutMs: timeoutMs },
  });
  const slots = new Map<string, NodeSlot>(
    [...members, ...(joinerId ? [joinerId] : [])].map((id) => [
      id,
      {
        id,
        state: 'down',
        starts: 0,
        store: new SimStore(clock, root.fork(`store-${id}`), { commitDelayMaxMs: plan.commitDelayMaxMs, segments: plan.treeShape.segments }),
      },
    ]),
  );

  const start = (slot: NodeSlot) => {
    const view = clock.view();
    slot.view = view;
    slot.state = 'starting';
    const transport = network.attach(slot.id, { key: seal, cluster: clusterName });
    slot.starts++;
    const store = withBugs(slot.store.open(), opts.bugs);
    const seed = root.fork(`node-${slot.id}-${slot.starts}`).nextUint32();
    slot.starting = createNode(config(slot.id), { transport, seal, store, clock: view, log, newEpoch, seed }).then((node) => {
      if (slot.view !== view) {
        // It crashed while starting: this incarnation is dead already.
        node.actor.stop();
        return;
      }
      slot.running = node;
      slot.state = 'up';
      // A node that left the cluster (it handed everything over) stops, as node-process does.
      void node.exited.then((reason) => {
        if (slot.running !== node) return;
        event(`exit ${slot.id}: ${reason}`);
        slot.state = 'gone';
        slot.running = undefined;
        slot.starting = undefined;
        void node.stop().then(() => {
          network.crash(slot.id);
          view.dispose();
        });
      });
    });
  };

  const crash = (slot: NodeSlot, wipe: boolean) => {
    network.crash(slot.id);
    slot.view?.dispose();
    const before = slot.store.stats.lostOnCrash;
    if (wipe) slot.store.wipe();
    else slot.store.crash();
    counts.lostWrites += slot.store.stats.lostOnCrash - before;
    (slot.running?.actor as AnyActorRef | undefined)?.stop();
    slot.running = undefined;
    slot.view = undefined;
    slot.starting = undefined;
    slot.state = 'down';
  };

  for (const id of members) start(slots.get(id)!);
  await clock.runUntilSettled(Promise.all([...slots.values()].map((s) => s.starting)), simTimeLimitMs);

  // Faults.
  let faultsOn = true;
  const faultTimers = new Set<unknown>();
  const later = (ms: number, fn: () => void) => {
    const handle: unknown = clock.setTimeout(() => {
      faultTimers.delete(handle);
      if (faultsOn) fn();
    }, ms);
    faultTimers.add(handle);
  };
  const every = (rangeMs: [number, number], fn: () => void) => {
    const tick = () => {
      fn();
      later(faultPrng.int(...rangeMs), tick);
    };
    later(faultPrng.int(...rangeMs), tick);
  };

  const clientIds = Array.from({ length: clientCount }, (_, i) => `c${i + 1}`);
  if (plan.kinds.some((k) => k === 'drop' || k === 'duplicate' || k === 'delay')) {
    const linkPrng = faultPrng.fork('links');
    const endpoints = [...members, ...clientIds];
    for (const from of endpoints) {
      for (const to of endpoints) {
        if (from === to || (!members.includes(from) && !members.includes(to))) continue;
        const link: LinkFaults = {
          // Each link draws its own intensity: some links are much worse than others.
          drop: round(plan.drop * 2 * linkPrng.next()),
          duplicate: round(plan.duplicate * 2 * linkPrng.next()),
          delayMinMs: 1,
          delayMaxMs: Math.max(1, linkPrng.int(1, plan.delayMaxMs)),
        };
        network.setLinkFaults(from, to, link);
      }
    }
    if (joinerId) {
      // The spare node's links draw from their own fork: the members' links stay as without it.
      const joinerLinks = faultPrng.fork('links-joiner');
      for (const other of endpoints) {
        for (const [from, to] of [[joinerId, other], [other, joinerId]] as const) {
          network.setLinkFaults(from, to, {
            drop: round(plan.drop * 2 * joinerLinks.next()),
            duplicate: round(plan.duplicate * 2 * joinerLinks.next()),
            delayMinMs: 1,
            delayMaxMs: Math.max(1, joinerLinks.int(1, plan.delayMaxMs)),
          });
        }
      }
    }
    event(`links drop~${plan.drop} duplicate~${plan.duplicate} delay<=${plan.delayMaxMs}ms`);
  }

  if (plan.kinds.includes('partition') && nodeCount > 1) {
    every(plan.partitionEveryMs, () => {
      if (network.isPartitioned()) return;
      const shuffled = faultPrng.shuffle(members);
      const cut = faultPrng.int(1, nodeCount - 1);
      const a = shuffled.slice(0, cut).sort();
      const b = shuffled.slice(cut).sort();
      network.partition(a, b);
      counts.partitions++;
      event(`partition ${a.join(',')} | ${b.join(',')}`);
      later(faultPrng.int(...plan.partitionForMs), () => {
        network.heal();
        event('partition healed');
      });
    });
  }

  const restartLater = (slot: NodeSlot) => {
    later(faultPrng.int(...plan.downForMs), () => {
      if (slot.state !== 'down') return;
      counts.restarts++;
      event(`restart ${slot.id}`);
      start(slot);
    });
  };

  const crashSome = (powerLoss: boolean, why: string) => {
    const up = [...slots.values()].filter((s) => s.state !== 'down' && s.state !== 'gone');
    if (up.length === 0) return;
    const victims = powerLoss ? up : [faultPrng.pick(up)];
    if (powerLoss) counts.powerLosses++;
    for (const slot of victims) {
      counts.crashes++;
      crash(slot, false);
      restartLater(slot);
    }
    event(`${powerLoss ? 'power loss: crash' : 'crash'} ${victims.map((s) => s.id).join(',')}${why}`);
  };
  let crashesOnAck = 0;
  if (plan.kinds.includes('crash')) {
    every(plan.crashEveryMs, () => crashSome(faultPrng.chance(plan.crashAllChance), ''));
    onPutAcked = (clientId) => {
      if (crashesOnAck >= plan.crashOnAckMax || !faultPrng.chance(plan.crashOnAckChance)) return;
      crashesOnAck++;
      // A timer, not a call: the crash must not run inside the client's delivery.
      later(0, () => crashSome(true, ` (right after ${clientId} got a put acknowledged)`));
    };
  }

  if (plan.kinds.includes('wipe')) {
    later(faultPrng.int(0, Math.max(1, ops * 10)), () => {
      const slot = slots.get(faultPrng.pick(members))!;
      if (slot.state === 'gone') return;
      counts.wipes++;
      crash(slot, true);
      event(`disk lost: wipe ${slot.id}`);
      restartLater(slot);
    });
  }

  // Membership changes, staged and committed through api.cluster over the SimNetwork (the requests
  // of src/client/admin.ts). They go on after the heal until committed.
  const admin = new SimClient(network, clock, 'admin', timeoutMs, observe);
  const membershipPrng = root.fork('membership');
  const membershipFailures: string[] = [];
  const adminRetryMs = 100;
  const membershipDeadline = () => clock.now() > simTimeLimitMs;
  const ringMembers = () => [...slots.values()].filter((s) => s.state === 'up' && (membershipOf(s.running)?.ring.version ?? 0) > 0);
  /** Stages `op` of `node` at a member and commits it there, until some node's committed state shows it done. */
  /** The member whose leave the cluster's ring shows (it must hand over and exit). */
  let leaverId: string | undefined;
  /** When a commit last succeeded (the liveness bound counts from it, or from the heal if later). */
  let lastCommitAt = 0;
  const stageAndCommit = async (op: 'join' | 'leave' | 'force-remove', node: string, done: (c: ClusterStateView) => boolean, via: () => string | undefined): Promise<boolean> => {
    while (!membershipDeadline()) {
      // Done once every node that is not gone is up and its committed state shows the change.
      const expected = [...slots.values()].filter((s) => s.state !== 'gone' && s.starts > 0);
      if (expected.every((s) => s.state === 'up' && (membershipOf(s.running)?.ring.version ?? 0) > 0 && done(membershipOf(s.running)!))) {
        if (op === 'leave') leaverId = node;
        return true;
      }
      const at = via();
      if (at === undefined) {
        await sleep(clock, adminRetryMs);
        continue;
      }
      const staged = await admin.cluster(op, node, at);
      if (!staged.ok && (staged.code === 'TOO_FEW_NODES' || staged.code === 'TOO_MANY_NODES')) {
        event(`${op} ${node} refused at ${at}: ${staged.message}`);
        return false;
      }
      if (!staged.ok && staged.code !== 'ALREADY_MEMBER') {
        await sleep(clock, adminRetryMs);
        continue;
      }
      const committed = await admin.cluster('commit', undefined, at);
      // Like a careful operator, look again until the cluster's ring shows the change: a commit
      // made at the same time at another node may win over this one.
      if (committed.ok) {
        lastCommitAt = clock.now();
        event(`${op} ${node} committed at ${at}: ring version ${committed.body.ringVersion}`);
      }
      await sleep(clock, adminRetryMs);
    }
    membershipFailures.push(`the ${op} of ${node} was not committed by t=${simTimeLimitMs}`);
    return false;
  };
  let joinTask: Promise<boolean> | undefined;
  if (joinerId) {
    const slot = slots.get(joinerId)!;
    joinTask = (async () => {
      await sleep(clock, plan.joinAtMs);
      if (slot.starts === 0 && slot.state === 'down') {
        event(`start ${joinerId} with seeds ${members.join(',')}`);
        start(slot);
      }
      return stageAndCommit('join', joinerId, (c) => c.ring.owners.includes(joinerId), () => {
        if (slot.state !== 'up') return undefined;
        const up = ringMembers().filter((s) => s.id !== joinerId);
        return up.length === 0 ? undefined : membershipPrng.pick(up).id;
      });
    })();
  }
  let leaveTask: Promise<boolean> | undefined;
  if (plan.kinds.includes('leave')) {
    const leaver = membershipPrng.pick(members);
    leaveTask = (async () => {
      // After the join, if both: a three-node cluster with N = 3 can lose a member only once it has four.
      if (joinTask) await joinTask;
      await sleep(clock, plan.leaveAtMs);
      if (slots.get(leaver)!.state === 'gone') return false;
      // Like `ringkv cluster leave`: asked at the leaving node itself.
      return stageAndCommit(
        'leave',
        leaver,
        (c) => !c.ring.owners.includes(leaver) && c.members[leaver] !== undefined,
        () => (slots.get(leaver)!.state === 'up' ? leaver : undefined),
      );
    })();
  }
  let removeTask: Promise<boolean> | undefined;
  if (plan.kinds.includes('force-remove')) {
    const removePrng = root.fork('membership-remove');
    const lost = removePrng.pick(members);
    removeTask = (async () => {
      if (joinTask) await joinTask;
      if (leaveTask) await leaveTask;
      await sleep(clock, plan.removeAtMs);
      const slot = slots.get(lost)!;
      if (slot.state === 'gone') return false;
      // The machine is lost for good: stopped, its disk gone, never started again. The operator then
      // force-removes it at another member (the request goes on to the claimant, which may be the
      // lost node itself: then its removal is staged once the member asked judges it down).
      crash(slot, true);
      slot.state = 'gone';
      event(`machine lost: ${lost} stopped for good, its disk gone`);
      const removed = await stageAndCommit(
        'force-remove',
        lost,
        // A leaving member lost after it had handed everything over is exiting already: departed,
        // nothing left to remove (force-remove answers UNKNOWN_NODE; found by seed 1108).
        (c) => !c.ring.owners.includes(lost) && (c.members[lost]?.status === 'removed' || c.members[lost]?.status === 'exiting'),
        () => {
          const up = ringMembers().filter((s) => s.id !== lost);
          return up.length === 0 ? undefined : removePrng.pick(up).id;
        },
      );
      if (!removed) {
        // Refused (it would leave fewer than N nodes): the operator brings a machine back under its id.
        slot.state = 'down';
        event(`restart ${lost} (its removal was refused)`);
        start(slot);
      }
      return removed;
    })();
  }
  const membershipTasks = [joinTask, leaveTask, removeTask].filter((t): t is Promise<boolean> => t !== undefined);

  // The workload.
  const workload = new CartWorkload(Array.from({ length: keyCount }, (_, i) => `cart-${i + 1}`));
  const clientPrng = root.fork('clients');
  const runs = clientIds.map((id, i) => {
    const client = new SimClient(network, clock, id, timeoutMs, observe);
    const share = Math.floor(ops / clientCount) + (i < ops % clientCount ? 1 : 0);
    return workload.runClient({ client, index: i + 1, ops: share, thinkMaxMs: 20, prng: clientPrng.fork(id), clock });
  });
  const deletes = new DeleteWorkload(Array.from({ length: opts.deletes ?? 2 }, (_, i) => `gone-${i + 1}`));
  for (const slot of slots.values()) slot.store.onRemoved = (_p, key, state) => deletes.recordRemoved(key, state);
  if (deletes.keys.length > 0) {
    const deleter = new SimClient(network, clock, 'd1', timeoutMs, observe);
    runs.push(deletes.run({ client: deleter, clock, prng: root.fork('deleter'), pauseMaxMs: plan.reapIntervalMs + plan.reapGraceMs }));
  }
  await clock.runUntilSettled(Promise.all(runs), simTimeLimitMs);
  const workloadMs = clock.now();
  const workloadMessages = requestMessages(network.stats.sentByRole);

  // Heal everything and restart every node that is down.
  faultsOn = false;
  for (const handle of faultTimers) clock.clearTimeout(handle);
  faultTimers.clear();
  network.healAll();
  for (const slot of slots.values()) if (slot.state === 'down') start(slot);
  event('heal: faults off, every node started');
  await clock.runUntilSettled(Promise.all([...slots.values()].map((s) => s.starting)), simTimeLimitMs);
  const healAtMs = clock.now();
  if (membershipTasks.length > 0) await clock.runUntilSettled(Promise.all(membershipTasks), simTimeLimitMs);

  // Liveness: every node sees every member up again; requests still in flight finish; every key is
  // read with R = N (read repair); the clock runs; every key is read again for the final answer.
  const violations: Violation[] = [];
  // Membership liveness (src/sim/membership-liveness.ts): every ring change finishes within a bound
  // in gossip rounds, counted from the heal or the last commit, whichever is later.
  let membershipRounds: number | null | undefined;
  if (membershipTasks.length > 0) {
    const from = Math.max(healAtMs, lastCommitAt);
    const by = from + membershipRoundsMax * plan.gossipRoundMs;
    const problems = (): string[] => {
      const live = [...slots.values()].filter((s) => s.state === 'up' && membershipOf(s.running) !== undefined);
      const gone = [...slots.values()].filter((s) => s.state === 'gone').map((s) => s.id);
      return membershipLivenessProblems(live.map((s) => ({ id: s.id, ...membershipOf(s.running)! })), gone);
    };
    while (problems().length > 0 && clock.now() < by) await clock.runUntil(clock.now() + membersUpPollMs);
    const left = problems();
    membershipRounds = left.length === 0 ? Math.ceil(Math.max(0, clock.now() - from) / plan.gossipRoundMs) : null;
    if (left.length > 0) {
      violations.push({ invariant: 'membership-liveness', message: `${membershipRoundsMax} gossip rounds (${membershipRoundsMax * plan.gossipRoundMs} ms) after t=${from}: ${left.join('; ')}` });
    }
  }
  // A node that left is no longer expected: neither its own view nor the others' verdict on it counts.
  const judgedDown = () =>
    [...slots.values()]
      .filter((s) => s.state !== 'gone')
      .flatMap((s) => Object.keys(downOf(s.running)).filter((d) => slots.get(d)?.state !== 'gone').map((d) => `${s.id} judges ${d} down`));
  const upBy = healAtMs + membersUpLimitMs;
  while (judgedDown().length > 0 && clock.now() < upBy) await clock.runUntil(clock.now() + membersUpPollMs);
  if (judgedDown().length > 0) {
    violations.push({ invariant: 'members-up', message: `${membersUpLimitMs} ms after the heal: ${judgedDown().join(', ')}` });
  }
  // Quiet: no node coordinates a request, no store has a write in flight, and every hint has been
  // handed off (gossip goes on).
  const busy = () => [...slots.values()].some((s) => coordinatorsOf(s.running) > 0 || s.store.uncommitted() > 0 || s.store.hintCount() > 0);
  let stuck = false;
  const quiesce = async () => {
    const by = clock.now() + quietLimitMs;
    while (busy() && clock.now() < by && !stuck) await clock.runUntil(clock.now() + membersUpPollMs);
    if (!busy() || stuck) return;
    stuck = true;
    const hints = [...slots.values()].filter((s) => s.store.hintCount() > 0).map((s) => `${s.id} holds ${s.store.hintCount()} hints`);
    const other = [...slots.values()].filter((s) => coordinatorsOf(s.running) > 0 || s.store.uncommitted() > 0).map((s) => `${s.id} is busy`);
    if (hints.length > 0) violations.push({ invariant: 'hints-drained', message: `${quietLimitMs} ms after the heal: ${hints.join(', ')}` });
    if (other.length > 0) violations.push({ invariant: 'members-up', message: `${quietLimitMs} ms after the heal: ${other.join(', ')}` });
  };
  const live = new SimClient(network, clock, 'live', timeoutMs, observe);
  const readAll = async (key: string): Promise<Set<string> | undefined> => {
    for (let attempt = 1; attempt <= livenessReadAttempts; attempt++) {
      const r = await live.get(workload.keyBytes(key), { n: quorum.n, r: quorum.n });
      if (r.ok) return workload.mergeRead(r.body.values, `liveness read of ${key}`);
    }
    return undefined;
  };
  await quiesce();
  // Membership runs: every node uses the same committed ring, and ownership transfer is idle (no
  // node holds a partition it does not replicate, no partition transfer running or waiting).
  let ring: Ring = staticRing;
  if (membershipTasks.length > 0) {
    const ringProblems = (): string[] => {
      const up = [...slots.values()].filter((s) => s.state !== 'gone');
      const problems: string[] = [];
      const rings = new Set(up.map((s) => JSON.stringify(membershipOf(s.running)?.ring ?? null)));
      if (rings.size !== 1) problems.push(`the nodes use ${rings.size} different rings`);
      const first = up[0] && ringOf(up[0].running);
      if (!first) return [...problems, 'no node is up'];
      if (leaverId && slots.get(leaverId)!.state !== 'gone') {
        const s = slots.get(leaverId)!;
        const t = s.running?.transfers();
        const hintTargets = [...new Set([...s.store.hints()].map((h) => h.target))].join(',');
        problems.push(
          `the leave of ${leaverId} was committed but it has not exited (${s.state}; ${first.owners.includes(leaverId) ? 'still' : 'not'} in the ring; ${s.store.hintCount()} hints${hintTargets ? ` for ${hintTargets}` : ''}; ` +
            `${t ? `${t.running} transfers running, ${t.waiting} waiting` : 'not running'}; its status ${membershipOf(s.running)?.members[leaverId]?.status ?? '?'})`,
        );
      }
      for (const s of slots.values()) {
        const t = s.running?.transfers();
        if (t && t.running + t.waiting > 0) problems.push(`${s.id} has ${t.running} partition transfers running and ${t.waiting} waiting`);
        for (let p = 0; p < first.q; p++) {
          if (preferenceList(first, p, quorum.n).includes(s.id)) continue;
          const held = [...s.store.keys(p)].length;
          if (held > 0) problems.push(`${s.id} holds ${held} keys of partition ${p}, which it does not replicate`);
        }
      }
      return problems;
    };
    const by = clock.now() + ringSettleLimitMs;
    while (ringProblems().length > 0 && clock.now() < by) await clock.runUntil(clock.now() + membersUpPollMs);
    const left = ringProblems();
    for (const message of membershipFailures) violations.push({ invariant: 'ring-settled', message });
    if (left.length > 0) violations.push({ invariant: 'ring-settled', message: `${ringSettleLimitMs} ms after the heal: ${left.join('; ')}` });
    const first = [...slots.values()].find((s) => s.state === 'up');
    if (first) ring = ringOf(first.running)!;
    await quiesce();
  }
  const readReplica = (nodeId: string, p: number, key: Uint8Array) => slots.get(nodeId)!.store.get(p, key);
  let settleMs = 0;
  if (plan.repairBy === 'anti-entropy') {
    // No reads: the Merkle exchanges alone must bring every replica of every key to the same state.
    const by = clock.now() + aaeConvergeLimitMs;
    const diverged = () => checkConvergence(workload, ring, quorum.n, readReplica);
    while (diverged().length > 0 && clock.now() < by) await clock.runUntil(clock.now() + aaePollMs);
    const left = diverged();
    if (left.length > 0) {
      violations.push(...left.map((v) => ({ invariant: 'anti-entropy' as const, message: `${aaeConvergeLimitMs} ms after the heal, without reads: ${v.message}` })));
    }
    settleMs = clock.now() - healAtMs;
  }
  const finalItems = new Map<string, Set<string>>();
  for (const round of ['repair', 'final']) {
    const results = await clock.runUntilSettled(Promise.all(workload.keys.map(readAll)), simTimeLimitMs);
    await quiesce();
    // Settled: members up, and every key read with R = N, which repairs every replica.
    if (round === 'repair' && plan.repairBy === 'read-repair') settleMs = clock.now() - healAtMs;
    if (round === 'final') {
      workload.keys.forEach((key, i) => {
        const items = results[i];
        if (items) finalItems.set(key, items);
        else violations.push({ invariant: 'final-read', message: `the final read of ${key} failed ${livenessReadAttempts} times after heal` });
      });
    }
  }

  // Deletes: every deleted key read with R = N, the reaper given its time, then every store looked at.
  const liveStores = () =>
    new Map([...slots.values()].filter((s) => s.state !== 'gone').map((s) => [s.id, (key: Uint8Array) => s.store.get(partitionOf(key, partitions), key)] as const));
  if (deletes.deletes.length > 0) {
    const deleteViolations = await clock.runUntilSettled(
      settleDeletes({ workload: deletes, live, clock, n: quorum.n, stores: liveStores, allKeys: [...workload.keys, ...deletes.keys].map((k) => workload.keyBytes(k)), reapLimitMs: reapSettleLimitMs, afterMs: afterReapMs, attempts: livenessReadAttempts }),
      simTimeLimitMs + reapSettleLimitMs,
    );
    violations.push(...deleteViolations);
  }

  // Invariants.
  violations.push(...nodeErrors.slice(0, nodeErrorsReportedMax).map((message) => ({ invariant: 'no-node-errors' as const, message })));
  violations.push(...checkReads(workload));
  const lostViolations = checkAckedInFinalRead(workload, finalItems);
  violations.push(...lostViolations);
  violations.push(...checkConvergence(workload, ring, quorum.n, readReplica));
  violations.push(...checkStoredValuesWritten(workload, ring, quorum.n, readReplica));

  // A clean stop writes to the store (the node's clean-stop mark), so the clock must run meanwhile.
  await clock.runUntilSettled(Promise.all([...slots.values()].map((slot) => slot.running?.stop())), simTimeLimitMs);
  counts.judgedDown = infos.get('member judged down') ?? 0;
  counts.judgedUp = infos.get('member up') ?? 0;

  const s = network.stats;
  Object.assign(counts, {
    dropped: s.dropped,
    duplicated: s.duplicated,
    cut: s.cut,
    undeliverable: s.undeliverable,
  });
  const adds = workload.adds;
  const report: SimReport = {
    seed,
    nodes: nodeCount,
    clients: clientCount,
    keys: keyCount,
    ops,
    quorum,
    faults: plan,
    injected: counts,
    acked: adds.filter((a) => a.outcome === 'acked').length,
    unknown: adds.filter((a) => a.outcome === 'unknown').length,
    failed: adds.filter((a) => a.outcome === 'failed').length,
    lost: lostViolations.length,
    deletesAcked: deletes.deletes.length,
    tombstonesReaped: deletes.tombstonesRemoved,
    messages: s.sent,
    messagesPerOp: ops === 0 ? 0 : Math.round((workloadMessages / ops) * 10) / 10,
    workloadMs,
    healAtMs,
    settleMs,
    ...(membershipRounds !== undefined ? { membershipRounds } : {}),
    traceHash: trace.hex(),
    traceEvents: trace.events,
    violations,
    ok: violations.length === 0,
    replay: replayCommand({ ...opts, seed }),
    events,
  };
  if (opts.bugs) report.bugs = opts.bugs;
  return report;
}

/** The members a running node judges down (the node machine's liveness view). */
function downOf(node: RunningNode | undefined): Record<string, true> {
  const snapshot = node?.actor.getSnapshot() as { context?: { down?: Record<string, true> } } | undefined;
  return snapshot?.context?.down ?? {};
}

/** The parts of a node's cluster state the runner looks at. */
interface ClusterStateView {
  members: Record<string, { status: string }>;
  ring: { version: number; owners: string[] };
}

/** A running node's cluster state (members and committed ring), as its root actor holds it. */
function membershipOf(node: RunningNode | undefined): ClusterStateView | undefined {
  const snapshot = node?.actor.getSnapshot() as { context?: { membership?: ClusterStateView } } | undefined;
  return snapshot?.context?.membership;
}

/** The ring a running node routes by. */
function ringOf(node: RunningNode | undefined): Ring | undefined {
  const snapshot = node?.actor.getSnapshot() as { context?: { ring?: Ring } } | undefined;
  return snapshot?.context?.ring;
}

/** Client requests the node's root actor is coordinating now. */
function coordinatorsOf(node: RunningNode | undefined): number {
  const coordinator = (node?.actor.getSnapshot() as { children?: Record<string, { getSnapshot(): { context?: { requests?: Map<string, unknown> } } } | undefined> } | undefined)?.children?.coordinator;
  return coordinator?.getSnapshot().context?.requests?.size ?? 0;
}

/** Messages of the request path (client requests, replica traffic, answers): not gossip. */
function requestMessages(byRole: Record<string, number>): number {
  return (byRole.api ?? 0) + (byRole.replica ?? 0) + (byRole.reply ?? 0);
}

/** One message as a line of text, for debugging: kind, request id, and the body with DVV sets spelled out. */
export function describeMessage(bytes: Uint8Array): string {
  const env = decodeEnvelope(bytes);
  if (typeof env === 'string') return `(bad: ${env})`;
  const body = (env.body ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    if (k === 'state') parts.push(`state=${v === null ? 'null' : describe(v as DvvSet)}`);
    else if (k === 'values' && Array.isArray(v)) parts.push(`values=${v.map((x) => Buffer.from(x as Uint8Array).toString('utf8')).join(' | ')}`);
    else if (v instanceof Uint8Array) parts.push(`${k}=${k === 'key' || k === 'value' ? Buffer.from(v).toString('utf8') : `<${v.length} bytes>`}`);
    else parts.push(`${k}=${JSON.stringify(v)}`);
  }
  return `${env.kind} #${env.reqId} ${parts.join(' ')}`;
}
