/**
 * createNode(): binds the node machine to its ports (DESIGN.md §2, §4). The machines decide; this
 * file performs what they decide: every named I/O action is implemented here, and results come back
 * to the actors as events. The same function builds production nodes (NATS, LMDB, system clock) and
 * simulated ones (SimNetwork, SimStore, SimClock).
 */
import { type AnyActorRef, createActor, type InspectionEvent, type Observer } from 'xstate';
import type { NodeEvent } from '../../actors/node.events.js';
import { type NodeContext, type NodeInput, nodeMachine } from '../../actors/node.machine.js';
import { type ChildRef, coordinatorActorId, directRoute } from '../../actors/node-routes.js';
import { type AnswerParams, type CoordinatorOutput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { CoordinatorEvent, CoordinatorItem } from '../../actors/coordinator.events.js';
import { gossipMachine, gossipRoundMsDefault, phiDefaults, phiThresholdDefault } from '../../actors/gossip.machine.js';
import type { PhiOptions } from '../core/phi.js';
import { type CollectParams, type DropHintsParams, type HandoffInput, handoffDefaults, handoffMachine } from '../../actors/handoff.machine.js';
import { departedOf, isDeparted } from '../core/departed.js';
import { departureStatusOf } from './departure-status.js';
import { fallbackWaitMsDefault } from '../core/targets.js';
import type { HandoffItem } from '../../actors/handoff.events.js';
import { antiEntropyDefaults, antiEntropyMachine } from '../../actors/anti-entropy.machine.js';
import { type AnswerTransfersParams, type TransferInput, transferDefaults, transferMachine } from '../../actors/transfer.machine.js';
import { type CollectTransferParams, type DropSentParams, partitionTransferMachine } from '../../actors/partition-transfer.machine.js';
import { createTransferIo, type TransferTotals } from './transfer-io.js';
import { exchangeMachine } from '../../actors/exchange.machine.js';
import { fanoutDefault, shapeProblem, type TreeShape } from '../core/merkle.js';
import { type AaeView, createAaeIo } from './anti-entropy-io.js';
import { DeliveryTally, hintSummary } from './hint-summary.js';
import type { ApiBackupOk, ApiHintsOk, ApiStatusOk, DurabilityMode, ProcessMemory } from '../protocol/messages.js';
import {
  type CommitWriteParams,
  type ReadAndAnswerParams,
  type ReadAndReplyParams,
  type SendParams,
  replicaMachine,
  writesInFlightMaxDefault,
} from '../../actors/replica.machine.js';
import { quorumDefault, type Quorum } from '../core/quorum.js';
import { applySync, applyWrite, screenStored } from '../core/replica-write.js';
import { partitionCountDefault, partitionsReplicatedBy, type Ring } from '../core/ring.js';
import { type ClusterState, hasRing, initialState, joinerState, mergeStates, ringOf } from '../core/cluster-state.js';
import type { GossipBody } from '../../actors/gossip.events.js';
import type { TellNodeParams } from '../../actors/gossip.machine.js';
import { checkClusterState, checkGossipBody } from '../protocol/validation.js';
import { decodeEnvelope } from '../protocol/envelope.js';
import { errorBody } from '../protocol/errors.js';
import type { Inbound } from '../ports/transport.js';
import type { DvvSet } from '../core/dvv.js';
import { splitmix32 } from '../core/prng.js';
import { decode, encode } from '../protocol/codec.js';
import { encodeEnvelope, encodeStateAnswer, protocolVersion } from '../protocol/envelope.js';
import { defaultLimits, type Limits } from '../protocol/limits.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Hint, Store } from '../ports/store.js';
import type { Role, Transport } from '../ports/transport.js';
import { type Identity, loadIdentity, markCleanStop, renewEpoch } from './identity.js';
import { createRouter, type RouterStats } from './router.js';
import { createInspectServer, type InspectServer } from './inspect-server.js';
import { createMemberGate, newGateStats, type GateStats } from './member-gate.js';
import type { SealKey } from '../protocol/seal.js';
import { operatorDefaults } from '../core/defaults.js';

export interface NodeConfig {
  nodeId: string;
  cluster: string;
  /**
   * The members of a new cluster (`--members`): a node with no stored cluster state forms the ring
   * of exactly these nodes (the same on each of them). Ignored once a cluster state is stored.
   */
  members: string[];
  /**
   * Members to join through (`--seeds`): a node with no stored cluster state and no members learns
   * the cluster from a seed and stages its own join (Riak's `cluster join`); commit takes it in.
   */
  seeds?: string[];
  partitions?: number;
  quorum?: Partial<Quorum>;
  limits?: Partial<Limits>;
  requestTimeoutMs?: number;
  readRepairWaitMs?: number;
  /** How long a request waits for a target before a spare of the extended preference list is asked too. */
  fallbackWaitMs?: number;
  coordinatorsMax?: number;
  writesInFlightMax?: number;
  /** How often a node gossips with one peer; 0 turns gossip (and failure detection) off. */
  gossipRoundMs?: number;
  /** Phi above which a member is judged down (8: about one false suspicion in 10^8). */
  phiThreshold?: number;
  phi?: Partial<PhiOptions>;
  handoff?: Partial<Omit<HandoffInput, 'nodeId'>>;
  antiEntropy?: Partial<AntiEntropyConfig>;
  /** Ownership transfer (limits, batches, byte rate); defaults in transferDefaults. */
  transfer?: Partial<Omit<TransferInput, 'nodeId' | 'ring' | 'n' | 'now'>>;
}

/** Anti-entropy (Merkle exchanges, Dynamo §4.7); defaults in antiEntropyDefaults. */
export interface AntiEntropyConfig {
  /** A round of exchanges starts at most this often; 0: never (no anti-entropy). */
  intervalMs: number;
  /** The node's anti-entropy traffic, both directions of its exchanges, in bytes per second. */
  bytesPerSec: number;
  /** Exchanges running at once on this node. */
  exchangesMax: number;
  /** Fan-out of the trees; the segment count is the store's. */
  fanout: number;
  /** How long a peer has to answer one step of an exchange. */
  requestTimeoutMs: number;
  /** Start paused (`ringkv aae resume` starts it). */
  paused: boolean;
}

export interface NodePorts {
  /**
   * Given the same seal key (src/protocol/seal.ts) as `seal`, or the node's own messages are
   * dropped by every member it sends them to.
   */
  transport: Transport;
  /** The cluster's id and secret: every inbound message meets the member gate with it first. */
  seal: SealKey;
  store: Store;
  clock: Clock;
  log: Log;
  /** A fresh epoch for a node without data: random in production, seeded in simulation. */
  newEpoch: () => string;
  /** Seeds the node's protocol randomness (the choice of gossip peers). */
  seed?: number;
  /** Told about each client request this node handles (metrics); must not throw. */
  requests?: RequestObserver;
  /** The process's memory, reported in api.status answers (absent in simulation: no process to measure). */
  memory?: () => ProcessMemory;
  /** What an ack means with this node's store, reported in api.status answers. */
  durability?: DurabilityMode;
  /**
   * An inspection observer given to createActor, so that it sees every actor from its start (the
   * Stately inspector, `--stately-inspect`). Absent by default: xstate then builds no inspection
   * events at all, and the inspection tap subscribes only while someone follows.
   */
  inspect?: Observer<InspectionEvent>;
  /**
   * Copies the store into a backup directory (`ringkv backup`; src/server/backup.ts). Absent where
   * there is nothing on disk to copy (simulation): api.backup is then refused with BAD_REQUEST.
   */
  backup?: (dir: string, identity: Identity) => Promise<ApiBackupOk>;
}

/** Client requests as this node sees them: the hooks behind request counts and latencies. */
export interface RequestObserver {
  /** A client request reached this node's root actor (op: put, del, get, status). */
  received(op: string, from: string, reqId: string): void;
  /** This node answered a client request: kind `api.<op>.ok`, or `error` with its code. */
  answered(from: string, reqId: string, kind: string, code: string | undefined): void;
  /** This node passed a client request on to another node, which answers it. */
  forwarded(from: string, reqId: string, to: string): void;
}

export interface NodeStats extends RouterStats {
  /** What the member gate passed and dropped (ringkv_messages_unauthenticated_total). */
  gate: GateStats;
  lateAnswers: number;
  actionFailures: number;
  /** Objects whose stored copy failed its checksum (dropped; anti-entropy fetches them again). */
  objectsCorrupt: number;
  /** Reads of a key whose copy here is corrupt that this node refused to answer (the asker goes to another replica). */
  corruptReadsRefused: number;
}

export interface RunningNode {
  identity: Identity;
  stats: NodeStats;
  actor: AnyActorRef;
  /** The inspection tap and its server (the `inspect` role). */
  inspect: InspectServer;
  /** Anti-entropy counters per partition (what `ringkv aae` shows; metrics read them too). */
  aae: AaeView;
  /** Pending hints by target and the delivery rate (what `ringkv hints` shows; metrics read it too). */
  hints(): ApiHintsOk;
  /** Resolves (with the reason) when this node has left the cluster or was removed: stop it then. */
  exited: Promise<string>;
  /** Ownership transfer totals since start, and the partition transfers running and waiting now (metrics). */
  transfers(): TransferTotals;
  /**
   * The first half of a graceful stop: leave the api queue group (NATS sends its requests to the
   * other nodes), answer every new put, delete or coordinated get with NOT_READY (not applied: the
   * client asks the key's next node), keep serving replica traffic and client-driven reads, and
   * wait until every request this node coordinates has been answered, at most `waitMsMax`.
   * Resolves with what was still in flight then (0 normally) and how long it waited.
   */
  drain(waitMsMax: number): Promise<{ inFlight: number; waitedMs: number }>;
  stop(): Promise<void>;
}

export const requestTimeoutMsDefault: number = operatorDefaults.requestTimeoutMs;
export const readRepairWaitMsDefault = 50;
export const coordinatorsMaxDefault = 4096;
/** How often drain() looks whether the coordinator still has requests in flight. */
const drainPollMs = 10;
/** Items in one coordinator.batch; a turn that brings more sends several (each item is small). */
export const coordinatorBatchItemsMax = 4096;

export async function createNode(config: NodeConfig, ports: NodePorts): Promise<RunningNode> {
  const { transport, store, clock } = ports;
  // Renewed while the node runs when it deletes objects it made dots in (renewEpochBeforeDrop).
  let identity = await loadIdentity(store, config.nodeId, ports.newEpoch, ports.seal.clusterId);
  const log = ports.log.child({ node: config.nodeId });
  const { nodeId } = identity;
  const stats: NodeStats = { received: 0, droppedInvalid: 0, rejected: 0, gate: newGateStats(), lateAnswers: 0, actionFailures: 0, objectsCorrupt: 0, corruptReadsRefused: 0 };
  // Members only: every message meets the gate before anything of it is decoded (member-gate.ts).
  const gate = createMemberGate({ key: ports.seal, clusterName: config.cluster, now: () => clock.now(), log, stats: stats.gate });
  const admit = (msg: Inbound): void => {
    const admitted = gate(msg);
    if (admitted !== undefined) dispatch(admitted);
  };
  const limits: Limits = { ...defaultLimits, ...config.limits };
  const roundMs = config.gossipRoundMs ?? gossipRoundMsDefault;
  const incarnation = clock.now();

  // Every inbound message goes through `dispatch`: to the seed bootstrap first when this node still
  // has to learn the cluster, then to the router.
  let dispatch: (msg: Inbound) => void = () => {};
  let listening = false;
  let clusterState = await initialClusterState(config, store, nodeId);
  if (!hasRing(clusterState)) {
    await transport.listen(admit);
    listening = true;
    clusterState = await learnFromSeeds(clusterState, config.seeds ?? [], {
      nodeId,
      incarnation,
      transport,
      clock,
      log,
      retryMs: Math.max(200, Math.min(roundMs, 1000)),
      setHandler: (h) => (dispatch = h),
    });
  }
  await store.putMeta(clusterMetaName, clusterState);
  const ring = ringOf(clusterState);

  // Every action is I/O at the edge: a failure is logged and counted, and never crashes an actor.
  const safe = <A extends unknown[]>(name: string, fn: (...args: A) => void) => (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      stats.actionFailures++;
      log.error('action failed', { action: name, err });
    }
  };

  let resolveExit: (reason: string) => void = () => {};
  const exited = new Promise<string>((resolve) => (resolveExit = resolve));
  let root: AnyActorRef | undefined;
  const requests = ports.requests;
  /** Set by drain(): requests that would start new work here are refused (NOT_READY). */
  let stopping = false;
  const deliver = (event: NodeEvent) => {
    if (requests && event.type.startsWith('api.')) {
      const e = event as { type: string; from: string; reqId: string };
      requests.received(e.type.slice('api.'.length), e.from, e.reqId);
    }
    if (!root) return;
    if (stopping && (event.type === 'api.put' || event.type === 'api.del' || event.type === 'api.get')) {
      // Refused before anything is made: the client knows it was not applied and goes to the next
      // node at once (NOT_READY is not a definite error to the client), rather than to a
      // coordinator that might not live to answer it.
      const e = event as { from: string; reqId: string; replyTo: string };
      answerClient({ replyTo: e.replyTo, to: e.from, reqId: e.reqId, kind: 'error', body: errorBody('NOT_READY', `node ${nodeId} is stopping: nothing was applied, ask another node`) });
      return;
    }
    // The request path's fast route: an event for a child that exists goes to it straight, and the
    // coordinator's go into its batch for this turn, routed as actors/node-routes.ts says, without a
    // node transition.
    const snapshot = root.getSnapshot() as { context: NodeContext; children: Record<string, ChildRef | undefined> };
    const direct = directRoute(snapshot.context, snapshot.children, event);
    if (direct === undefined) root.send(event);
    else if ('coordinator' in direct) toCoordinator(direct.coordinator);
    else direct.to.send(direct.event);
  };

  // The coordinator takes one event per turn (actors/coordinator.machine.ts): what arrives for it in
  // one turn (one NATS read, a client's batch, the local replica's answers) waits here and goes as
  // one coordinator.batch from a microtask, after the callbacks that delivered it and before the
  // next turn's I/O. A microtask, not setImmediate: the simulator drains microtasks between timers.
  let coordinatorQueue: CoordinatorItem[] = [];
  let coordinatorFlushQueued = false;
  const toCoordinator = (item: CoordinatorItem) => {
    coordinatorQueue.push(item);
    if (coordinatorFlushQueued) return;
    coordinatorFlushQueued = true;
    queueMicrotask(flushCoordinator);
  };
  const flushCoordinator = () => {
    coordinatorFlushQueued = false;
    const items = coordinatorQueue;
    coordinatorQueue = [];
    const snapshot = root?.getSnapshot() as { context: NodeContext; children: Record<string, ChildRef | undefined> } | undefined;
    const coordinator = snapshot?.children[coordinatorActorId];
    if (!snapshot || !coordinator) return;
    const traced = inspect.tap.watching;
    for (let i = 0; i < items.length; i += coordinatorBatchItemsMax) {
      const batch: CoordinatorEvent = { type: 'coordinator.batch', items: items.slice(i, i + coordinatorBatchItemsMax), now: clock.now(), view: snapshot.context, traced };
      coordinator.send(batch);
    }
  };
  // The wake-ups the coordinator's requests asked for (setTimer), by request id, until it is done.
  const coordinatorTimers = new Map<string, unknown[]>();
  const performCoordinator = (outputs: CoordinatorOutput[]) => {
    for (const o of outputs) {
      try {
        performOne(o);
      } catch (err) {
        stats.actionFailures++;
        log.error('action failed', { action: `coordinator ${o.type}`, err });
      }
    }
  };
  const performOne = (o: CoordinatorOutput) => {
    switch (o.type) {
      case 'send':
        return send(o.params);
      case 'sendAll':
        return o.params.forEach(send);
      case 'answerClient':
        return answerClient(o.params);
      case 'forward':
        return forward({ to: o.to, replyTo: o.req.replyTo, bytes: o.req.bytes });
      case 'setTimer': {
        const handle = clock.setTimeout(() => toCoordinator(o.event), Math.max(0, o.at - clock.now()));
        const handles = coordinatorTimers.get(o.event.reqId);
        if (handles) handles.push(handle);
        else coordinatorTimers.set(o.event.reqId, [handle]);
        return;
      }
      case 'done': {
        for (const handle of coordinatorTimers.get(o.id) ?? []) clock.clearTimeout(handle);
        coordinatorTimers.delete(o.id);
        return;
      }
      case 'late':
        stats.lateAnswers += o.count;
        return;
      case 'failed':
        stats.actionFailures++;
        log.error('coordinator failed on one item of a batch', { item: o.item, reqId: o.reqId, err: o.error });
        return;
      case 'trace':
      case 'routed':
        return inspect.tap.coordinatorTrace(o);
    }
  };

  const send = (p: SendParams) => {
    if (p.to === nodeId) {
      // A message to this node's own replica skips the network, but stays asynchronous so that an
      // actor never receives an event while it is still taking a transition.
      queueMicrotask(() => deliver({ type: p.kind, from: nodeId, reqId: p.reqId, body: p.body } as NodeEvent));
      return;
    }
    const role = p.kind.slice(0, p.kind.indexOf('.')) as Role;
    transport.send(p.to, role, encodeEnvelope({ v: protocolVersion, kind: p.kind, from: nodeId, to: p.to, reqId: p.reqId, body: p.body }));
  };

  const answerClient = (p: AnswerParams) => {
    // The node machine answers status from its context; the cluster id, the process's memory and
    // the store's durability mode are the runtime's to know, added here. A client pins the cluster id
    // of its first ring and ignores rings of any other (src/client/client.ts).
    if (p.kind === 'api.status.ok') {
      const body = { ...(p.body as ApiStatusOk), clusterId: identity.clusterId };
      const departure = departureStatusOf(root, store.hintCount(), clock.now());
      p = { ...p, body: { ...body, ...(ports.memory ? { memory: ports.memory() } : {}), ...(ports.durability ? { durability: ports.durability } : {}), ...(departure ? { departure } : {}) } };
    }
    requests?.answered(p.to, p.reqId, p.kind, p.kind === 'error' ? (p.body as { code?: string }).code : undefined);
    transport.reply(p.replyTo, encodeEnvelope({ v: protocolVersion, kind: p.kind, from: nodeId, to: p.to, reqId: p.reqId, body: p.body }));
  };

  const forward = (p: { to: string; replyTo: string; bytes: Uint8Array }) => {
    const env = decode(p.bytes) as { body: Record<string, unknown>; from: string; reqId: string };
    env.body.forwarded = true;
    requests?.forwarded(env.from, env.reqId, p.to);
    transport.forward(p.to, encodeEnvelope(env as never), p.replyTo);
  };

  /** Takes a new epoch at once: no write applied from now on makes a dot of the old clock id. */
  const renewEpochNow = (why: string) => {
    const renewed = renewEpoch(store, identity, ports.newEpoch);
    log.info(`new epoch: ${why}`, { from: identity.epoch, to: renewed.identity.epoch });
    identity = renewed.identity;
    renewed.stored.catch((err: unknown) => log.error('could not store the new epoch', { err }));
  };

  const commitWrite = ({ self }: { self: AnyActorRef }, p: CommitWriteParams) => {
    const hints = p.hints.length > 0 ? { targets: p.hints, now: clock.now() } : undefined;
    // The dot is made with the clock id current when the write is applied (see renewEpochBeforeDrop).
    // The store runs `mutate` at the call, so the new state is known now: this node's coordinator is
    // told at once (replica.coordinate.made) and sends it to the other replicas while this commit
    // runs (DESIGN.md §3), instead of one group commit later.
    let made: DvvSet | undefined;
    const write = (current: DvvSet | undefined) => {
      const m = applyWrite(current, p.write, identity.dotId);
      if (m.result.ok && m.next !== null && p.write.kind === 'coordinate') made = m.next;
      return m;
    };
    store.update(p.p, p.key, write, hints).then(
      (outcome) => {
        if (outcome.ok && p.write.kind === 'coordinate' && outcome.siblings >= limits.siblingsWarn) {
          log.warn('key has many siblings: clients should merge them', { partition: p.p, siblings: outcome.siblings });
        }
        self.send({ type: 'store.committed', from: p.from, reqId: p.reqId, answer: p.answer, outcome });
      },
      (err: unknown) => {
        log.error('store update failed', { partition: p.p, err });
        // The dot already went to the other replicas with a state this node failed to keep: a later
        // write of the key here would make that dot again for another value, which they would drop
        // as already seen. A new epoch (a new clock id) makes every later dot new.
        if (made !== undefined) renewEpochNow('a coordinated write whose dot was sent could not commit');
        self.send({ type: 'store.failed', from: p.from, reqId: p.reqId, message: String(err) });
      },
    );
    if (made !== undefined && p.from === nodeId) send({ to: nodeId, kind: 'replica.coordinate.made', reqId: p.reqId, body: { state: made } });
  };

  /**
   * A key whose copy here failed its checksum reads as absent, but "not found" would be a lie: the
   * other replicas hold it. A peer's coordinator is not answered (it takes the other targets); a
   * client's local read is refused with an error, and the client asks the next replica.
   */
  const isCorruptHere = (partition: number, key: Uint8Array, found: unknown): boolean => {
    if (found !== undefined || store.isCorrupt?.(partition, key) !== true) return false;
    stats.corruptReadsRefused++;
    return true;
  };

  const readAndAnswer = (p: ReadAndAnswerParams) => {
    const encoded = store.getEncoded(p.p, p.key);
    if (isCorruptHere(p.p, p.key, encoded)) return;
    if (p.from === nodeId) {
      // This node's own coordinator takes the state as an object (no encoding on the way).
      // Screened as a peer's answer would be at the router (src/core/version-check.ts).
      const state = encoded === undefined ? undefined : (decode(encoded) as DvvSet);
      send({ to: p.from, kind: 'replica.get.ok', reqId: p.reqId, body: { state: screenStored(state) } });
      return;
    }
    // A peer's: the stored bytes go into the answer as they are (no decode and re-encode).
    const head = { v: protocolVersion, kind: 'replica.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.send(p.from, 'replica', encodeStateAnswer(head, encoded));
  };

  // A client-driven read (api.local.get): the stored bytes straight back to the client, spliced
  // into the answer as they are (no decode and re-encode), like a replica.get.ok to a peer.
  const readAndReply = (p: ReadAndReplyParams) => {
    const encoded = store.getEncoded(p.p, p.key);
    if (isCorruptHere(p.p, p.key, encoded)) {
      answerClient({
        replyTo: p.replyTo,
        to: p.from,
        reqId: p.reqId,
        kind: 'error',
        body: { code: 'INTERNAL', message: `node ${nodeId}'s copy of this key failed its checksum and waits for anti-entropy to fetch it again; ask another replica` },
      });
      return;
    }
    requests?.answered(p.from, p.reqId, 'api.local.get.ok', undefined);
    const head = { v: protocolVersion, kind: 'api.local.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.reply(p.replyTo, encodeStateAnswer(head, encoded));
  };

  // Hinted handoff (Dynamo §4.6): the store work behind the handoff machine's named actions.
  const deliveries = new DeliveryTally();
  const collectBatch = ({ self }: { self: AnyActorRef }, p: CollectParams) => {
    const down = new Set(p.down);
    let target: string | null = null;
    const hints: Hint[] = [];
    const items: HandoffItem[] = [];
    let bytes = 0;
    for (const h of store.hints()) {
      if (target === null) {
        if (h.target === nodeId || down.has(h.target)) continue;
        target = h.target;
      }
      if (h.target !== target) continue;
      const state = store.get(h.partition, h.key) ?? [];
      const size = encode(state).length;
      if (items.length > 0 && (items.length >= p.itemsMax || bytes + size > p.bytesMax)) break;
      hints.push(h);
      items.push({ p: h.partition, key: h.key, state });
      bytes += size;
    }
    self.send({ type: 'handoff.collected', target, hints, items, bytes });
  };
  const clearHints = ({ self }: { self: AnyActorRef }, p: { hints: Hint[]; bytes: number }) => {
    Promise.all(p.hints.map((h) => store.removeHint(h))).then(
      (removed) => {
        const count = removed.filter(Boolean).length;
        deliveries.add(clock.now(), p.hints.length, p.bytes);
        self.send({ type: 'handoff.cleared', removed: count });
      },
      (err: unknown) => {
        log.error('could not remove delivered hints', { err });
        self.send({ type: 'handoff.cleared', removed: 0 });
      },
    );
  };
  // A departed member's hints can never be delivered (the handoff machine decides to drop them): the
  // hint entries go, in one group commit, and their objects stay for transfer and anti-entropy.
  const dropHints = ({ self }: { self: AnyActorRef }, p: DropHintsParams) => {
    const targets = new Set(p.targets);
    const drop: Hint[] = [];
    let more = false;
    try {
      if (store.hintCount() > 0) {
        for (const h of store.hints()) {
          if (!targets.has(h.target)) continue;
          if (drop.length >= p.itemsMax) {
            more = true;
            break;
          }
          drop.push(h);
        }
      }
    } catch (err) {
      // The machine waits for an answer: it gets one, and the next tick tries again.
      log.error('could not read hints to drop', { err });
      drop.length = 0;
      more = false;
    }
    if (drop.length === 0) {
      // After the machine's transition, as a new event.
      queueMicrotask(() => self.send({ type: 'handoff.dropped', removed: 0, more: false }));
      return;
    }
    Promise.all(drop.map((h) => store.removeHint(h))).then(
      (removed) => {
        const count = removed.filter(Boolean).length;
        deliveries.dropped += count;
        log.info('dropped hints for departed members', { targets: [...new Set(drop.map((h) => h.target))], hints: count });
        self.send({ type: 'handoff.dropped', removed: count, more });
      },
      (err: unknown) => {
        // The hints stay; the next tick tries again.
        log.error('could not drop hints for departed members', { err });
        self.send({ type: 'handoff.dropped', removed: 0, more: false });
      },
    );
  };
  // Hinted handoff and ownership transfer deliver objects the same way: synced, then acked.
  const applyBatch = (p: { from: string; reqId: string; items: HandoffItem[] }, ackKind = 'handoff.batch.ok', onCommitted?: () => void) => {
    Promise.all(p.items.map((item) => store.update(item.p, item.key, (current) => applySync(current, item.state)))).then(
      () => {
        onCommitted?.();
        send({ to: p.from, kind: ackKind, reqId: p.reqId, body: {} });
      },
      // No answer: the sender keeps its hints and tries again later.
      (err: unknown) => log.error('could not apply a handoff batch', { from: p.from, err }),
    );
  };
  /** Backups this node takes at once: a second request while one runs is refused with OVERLOADED. */
  const backupsAtOnceMax = 1;
  let backupsRunning = 0;
  const takeBackup = (p: { replyTo: string; to: string; reqId: string; dir: string }) => {
    const answer = (kind: string, body: unknown) => answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind, body });
    if (!ports.backup) return answer('error', { code: 'BAD_REQUEST', message: `node ${nodeId} has no store on disk to back up` });
    if (backupsRunning >= backupsAtOnceMax) return answer('error', { code: 'OVERLOADED', message: `node ${nodeId} is already taking a backup; try again when it is done` });
    backupsRunning++;
    const started = clock.now();
    log.info('backup started', { dir: p.dir });
    ports.backup(p.dir, identity).then(
      (ok) => {
        backupsRunning--;
        log.info('backup written', { dir: ok.dir, bytes: ok.bytes, tookMs: clock.now() - started });
        answer('api.backup.ok', ok);
      },
      (err: unknown) => {
        backupsRunning--;
        const bad = (err as { code?: string }).code === 'BAD_REQUEST';
        log.warn('backup failed', { dir: p.dir, err: String(err) });
        answer('error', { code: bad ? 'BAD_REQUEST' : 'INTERNAL', message: (err as Error).message ?? String(err) });
      },
    );
  };

  const answerHints = (p: { replyTo: string; to: string; reqId: string }) => {
    answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind: 'api.hints.ok', body: hintSummary(nodeId, store, clock.now(), deliveries) });
  };

  // Anti-entropy (Dynamo §4.7): the store and network work behind its machines' named actions.
  const aaeConfig = { ...antiEntropyDefaults, fanout: fanoutDefault, paused: false, ...config.antiEntropy };
  const shape: TreeShape = { segments: store.segmentCount, fanout: aaeConfig.fanout };
  const shapeIssue = shapeProblem(shape);
  if (shapeIssue) throw new Error(`anti-entropy trees: ${shapeIssue}`);
  const n = { ...quorumDefault, ...config.quorum }.n;
  const currentRing = (): Ring => (root?.getSnapshot().context as { ring?: Ring } | undefined)?.ring ?? ring;
  const aaeChild = () => root?.getSnapshot().children.antiEntropy as AnyActorRef | undefined;
  const aae = createAaeIo({
    nodeId,
    store,
    shape,
    transport,
    clock,
    log,
    settings: { intervalMs: aaeConfig.intervalMs, bytesPerSec: aaeConfig.bytesPerSec, exchangesMax: aaeConfig.exchangesMax },
    partitions: () => partitionsReplicatedBy(currentRing(), nodeId, n),
    deliver: (event) => deliver(event),
    answerClient,
    machineState: () => {
      const snap = aaeChild()?.getSnapshot() as { value: string; context: { running: string[]; queue: unknown[] } } | undefined;
      return { paused: snap?.value === 'paused', running: snap?.context.running.length ?? 0, queued: snap?.context.queue.length ?? 0 };
    },
  });
  const ae = aae.antiEntropyActions;

  // Ownership transfer: the store work behind its machines' named actions.
  /**
   * Before this node deletes objects that carry a dot of its current clock id, it takes a new epoch
   * (src/runtime/identity.ts): a later write it coordinated for such a key from nothing would make
   * those dots again. At once, so that no write applied after the deletion uses the old id.
   */
  const renewEpochBeforeDrop = (states: readonly DvvSet[]) => {
    const own = identity.dotId;
    if (!states.some((state) => state.some(([id]) => id === own))) return;
    renewEpochNow('this node deletes objects it made dots in');
  };
  // An object found corrupt is gone from this store (LmdbStore drops it): it may have carried dots
  // of this node's clock id, so, as before any drop of such an object, a new epoch comes first; at
  // most once per event-loop turn, since no dot made after the renewal can be in a record that was
  // already on disk. Synchronous: the store tells before the read that found it returns.
  let renewedThisTurn = false;
  store.watchCorruption?.((found) => {
    stats.objectsCorrupt++;
    log.warn('an object failed its checksum: dropped here; anti-entropy fetches it from the other replicas', {
      partition: found.partition,
      where: found.where,
      objectsCorrupt: stats.objectsCorrupt,
    });
    if (renewedThisTurn) return;
    renewedThisTurn = true;
    clock.setTimeout(() => (renewedThisTurn = false), 0);
    renewEpochNow('an object that failed its checksum was dropped (it may have carried dots of this node)');
  });
  const transferIo = createTransferIo({ nodeId, store, log, beforeDrop: renewEpochBeforeDrop });

  /**
   * Exits once nothing is left to hand over (handOver), or at once. The wait is at least one gossip
   * round: for the news that this node is gone to reach the others. In that round, writes from nodes
   * that have not yet learned the ring without this node can still land here (found by the
   * simulator: `ringkv sim --seed 317`); ownership transfer, which scans every round, hands them
   * over too, and a node that left goes only once nothing is left. `now`: look first, without the wait.
   */
  const exitAfterHandOver = (reason: string, handOver: boolean, now = false) => {
    const waitMs = Math.max(roundMs, 200);
    const tryExit = () => {
      const left = handOver ? transferIo.leftToHandOver(currentRing(), n) : undefined;
      if (left === undefined) return resolveExit(reason);
      log.info('exit waits: this node still holds data to hand over', { left });
      clock.setTimeout(tryExit, waitMs);
    };
    if (now) tryExit();
    else clock.setTimeout(tryExit, waitMs);
  };
  const answerTransfers = (p: AnswerTransfersParams) => {
    answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind: 'api.transfers.ok', body: transferIo.answerBody(p, clock.now()) });
  };
  const ex = aae.exchangeActions;

  const machine = nodeMachine.provide({
    actions: {
      answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
      answerHints: safe('answerHints', (_: unknown, p: { replyTo: string; to: string; reqId: string }) => answerHints(p)),
      takeBackup: safe('takeBackup', (_: unknown, p: { replyTo: string; to: string; reqId: string; dir: string }) => takeBackup(p)),
      dropLate: () => void stats.lateAnswers++,
      saveClusterState: safe('saveClusterState', (_: unknown, p: { cluster: ClusterState }) => {
        store.putMeta(clusterMetaName, p.cluster).catch((err: unknown) => log.error('could not save the cluster state', { err }));
      }),
      exitNode: safe('exitNode', (_: unknown, p: { reason: string; handOver: boolean }) => {
        log.info('node leaving the cluster', { reason: p.reason });
        exitAfterHandOver(p.reason, p.handOver);
      }),
    },
    actors: {
      coordinator: coordinatorMachine.provide({
        actions: { perform: (_: unknown, outputs: CoordinatorOutput[]) => performCoordinator(outputs) },
      }),
      gossip: gossipMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
          answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
          tellNode: safe('tellNode', (_: unknown, e: TellNodeParams) => {
            if (e.type === 'member.up' || e.type === 'member.down') log.info(e.type === 'member.down' ? 'member judged down' : 'member up', { member: e.nodeId });
            else if (e.type === 'ring.changed') log.info('ring changed', { owners: new Set(e.ring.owners).size });
            deliver(e as NodeEvent);
          }),
        },
      }),
      handoff: handoffMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          collectBatch: safe('collectBatch', collectBatch as (args: unknown, p: CollectParams) => void),
          clearHints: safe('clearHints', clearHints as (args: unknown, p: { hints: Hint[]; bytes: number }) => void),
          dropHints: safe('dropHints', dropHints as (args: unknown, p: DropHintsParams) => void),
          applyBatch: safe('applyBatch', (_: unknown, p: { from: string; reqId: string; items: HandoffItem[] }) => applyBatch(p)),
        },
      }),
      antiEntropy: antiEntropyMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => ae.send(p)),
          serveTree: safe('serveTree', (_: unknown, p: Parameters<typeof ae.serveTree>[0]) => ae.serveTree(p)),
          serveSegment: safe('serveSegment', (_: unknown, p: Parameters<typeof ae.serveSegment>[0]) => ae.serveSegment(p)),
          serveSync: safe('serveSync', (_: unknown, p: Parameters<typeof ae.serveSync>[0]) => ae.serveSync(p)),
          answerAae: safe('answerAae', (_: unknown, p: Parameters<typeof ae.answerAae>[0]) => ae.answerAae(p)),
          reportExchange: safe('reportExchange', (_: unknown, p: Parameters<typeof ae.reportExchange>[0]) => ae.reportExchange(p)),
          dropLate: () => ae.dropLate(),
        },
        actors: {
          exchange: exchangeMachine.provide({
            actions: {
              send: safe('send', (_: unknown, p: SendParams) => ex.send(p)),
              readTree: safe('readTree', (_: unknown, p: Parameters<typeof ex.readTree>[0]) => ex.readTree(p)),
              readEntries: safe('readEntries', (_: unknown, p: Parameters<typeof ex.readEntries>[0]) => ex.readEntries(p)),
              mergeAndRead: safe('mergeAndRead', (_: unknown, p: Parameters<typeof ex.mergeAndRead>[0]) => ex.mergeAndRead(p)),
            },
          }),
        },
      }),
      transfer: transferMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          findWork: safe('findWork', ({ self }: { self: AnyActorRef }, p: { scan: number; partitions: number[] }) => transferIo.findWork(self, p)) as never,
          applyTransfer: safe('applyTransfer', (_: unknown, p: { from: string; reqId: string; items: HandoffItem[] }) =>
            applyBatch(p, 'handoff.transfer.ok', () => transferIo.received(p.items)),
          ),
          answerTransfers: safe('answerTransfers', (_: unknown, p: AnswerTransfersParams) => answerTransfers(p)),
          tellNode: safe('tellNode', (_: unknown, e: { type: 'transfer.idle'; ring: Ring }) => {
            log.info('ownership transfer idle: nothing left to hand over for the current ring');
            // After the transfer machine's transition: the node and gossip take it as a new event.
            queueMicrotask(() => deliver(e));
          }),
        },
        actors: {
          partitionTransfer: partitionTransferMachine.provide({
            actions: {
              sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
              collectTransfer: safe('collectTransfer', ({ self }: { self: AnyActorRef }, p: CollectTransferParams) => transferIo.collectTransfer(self, p)) as never,
              dropSent: safe('dropSent', ({ self }: { self: AnyActorRef }, p: DropSentParams) => transferIo.dropSent(self, p)) as never,
            },
          }),
        },
      }),
      replica: replicaMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          commitWrite: safe('commitWrite', commitWrite as (args: unknown, p: CommitWriteParams) => void),
          readAndAnswer: safe('readAndAnswer', (_: unknown, p: ReadAndAnswerParams) => readAndAnswer(p)),
          readAndReply: safe('readAndReply', (_: unknown, p: ReadAndReplyParams) => readAndReply(p)),
        },
      }),
    },
  });

  const input: NodeInput = {
    nodeId,
    cluster: config.cluster,
    ring,
    quorumDefault: { ...quorumDefault, ...config.quorum },
    limits,
    requestTimeoutMs: config.requestTimeoutMs ?? requestTimeoutMsDefault,
    readRepairWaitMs: config.readRepairWaitMs ?? readRepairWaitMsDefault,
    fallbackWaitMs: config.fallbackWaitMs ?? fallbackWaitMsDefault,
    coordinatorsMax: config.coordinatorsMax ?? coordinatorsMaxDefault,
    writesInFlightMax: config.writesInFlightMax ?? writesInFlightMaxDefault,
    handoff: { nodeId, ...handoffDefaults, ...config.handoff, departed: departedOf(clusterState) },
    transfer: { ...transferDefaults, ...config.transfer, nodeId, ring, n, now: clock.now(), seed: ports.seed ?? hashSeed(identity.dotId) },
    antiEntropy: {
      nodeId,
      ring,
      n,
      shape,
      exchangesMax: aaeConfig.exchangesMax,
      bytesPerSec: aaeConfig.bytesPerSec,
      requestTimeoutMs: aaeConfig.requestTimeoutMs,
      segmentsPerRequestMax: aaeConfig.segmentsPerRequestMax,
      batchesMax: aaeConfig.batchesMax,
      paused: aaeConfig.paused,
    },
    gossip: {
      nodeId,
      cluster: clusterState,
      n,
      // Larger in every later life of this node, so its new heartbeats beat the ones remembered.
      incarnation,
      seed: ports.seed ?? hashSeed(identity.dotId),
      phiThreshold: config.phiThreshold ?? phiThresholdDefault,
      // The detector's expectations scale with the round: detection takes about 5 rounds.
      phi: roundMs > 0 ? { ...phiDefaults, firstIntervalMs: roundMs, acceptablePauseMs: roundMs, minStdDeviationMs: roundMs / 2, ...config.phi } : { ...phiDefaults, ...config.phi },
    },
  };
  const actor = createActor(machine, { input, clock, id: nodeId, ...(ports.inspect ? { inspect: ports.inspect } : {}) });
  actor.subscribe({
    error: (err) => log.error('node actor failed', { err }),
  });
  const inspect = createInspectServer({ nodeId, transport, clock, log });
  inspect.tap.attach(actor);
  actor.start();
  root = actor;

  const route = createRouter({ nodeId, q: ring.q, limits, transport, deliver, stats, now: () => clock.now(), log });
  dispatch = (msg) => (msg.role === 'inspect' || msg.role === 'inspect-peer' ? inspect.handle(msg) : route(msg));
  if (!listening) await transport.listen(admit);
  // Gossip rounds: time enters the machines only as event data, stamped here from the Clock port.
  let tickHandle: unknown;
  const tick = () => {
    deliver({ type: 'gossip.tick', now: clock.now() });
    deliver({ type: 'handoff.tick' });
    deliver({ type: 'transfer.tick', now: clock.now() });
    tickHandle = clock.setTimeout(tick, roundMs);
  };
  if (roundMs > 0) tickHandle = clock.setTimeout(tick, roundMs);
  // Anti-entropy rounds: a tick starts one unless the last is still running.
  let aaeTickHandle: unknown;
  const aaeTick = () => {
    deliver({ type: 'aae.tick' });
    aaeTickHandle = clock.setTimeout(aaeTick, aaeConfig.intervalMs);
  };
  if (aaeConfig.intervalMs > 0) aaeTickHandle = clock.setTimeout(aaeTick, aaeConfig.intervalMs);
  const status = clusterState.members[nodeId]?.status;
  log.info('node serving', { epoch: identity.epoch, newEpoch: identity.isNewEpoch, partitions: ring.q, members: Object.keys(clusterState.members), status, ringVersion: clusterState.ring.version });
  // A node that already left (or was removed) in an earlier life does not serve again. One that
  // stopped after it marked itself exiting but before it had handed over what landed on it in its
  // last round (found by the simulator: `ringkv sim --seed 20 --nodes 5 --ops 60 --faults swarm`,
  // a crash in that window) hands that over first.
  if (isDeparted(status)) exitAfterHandOver(`this node is ${status}: it left the cluster in an earlier life`, status === 'exiting', true);

  return {
    get identity() {
      return identity;
    },
    stats,
    actor,
    inspect,
    aae: aae.view,
    hints: () => hintSummary(nodeId, store, clock.now(), deliveries),
    exited,
    transfers: () => {
      const snap = (root?.getSnapshot().children.transfer as AnyActorRef | undefined)?.getSnapshot() as { context?: { running: string[]; waiting: unknown[] } } | undefined;
      return { ...transferIo.totals, running: snap?.context?.running.length ?? 0, waiting: snap?.context?.waiting.length ?? 0 };
    },
    async drain(waitMsMax: number) {
      stopping = true;
      const startedAt = clock.now();
      await transport.leaveQueueGroup?.();
      const coordinating = () => {
        const c = (root?.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children?.[coordinatorActorId];
        return (c?.getSnapshot() as { context?: { requests?: Map<string, unknown> } } | undefined)?.context?.requests?.size ?? 0;
      };
      const pause = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(() => resolve(), ms));
      while (coordinating() > 0 && clock.now() - startedAt < waitMsMax) await pause(drainPollMs);
      // Two more turns: the last answers leave with their turn's flush, and the last replica writes
      // (peers' requests) commit in their group commit and are acknowledged.
      await pause(0);
      await pause(0);
      return { inFlight: coordinating(), waitedMs: clock.now() - startedAt };
    },
    async stop() {
      if (tickHandle !== undefined) clock.clearTimeout(tickHandle);
      if (aaeTickHandle !== undefined) clock.clearTimeout(aaeTickHandle);
      inspect.tap.close();
      await transport.close();
      actor.stop();
      await markCleanStop(store, identity);
    },
  };
}

/** The meta entry that keeps this node's cluster state (members, committed ring, staged plan). */
export const clusterMetaName = 'cluster';

/**
 * The cluster state a node starts from: the stored one (a restart rejoins as the same member), else
 * the ring of `--members` (a new cluster: every member computes the same state), else a joiner's
 * state that knows only itself (it learns the rest from a seed).
 */
async function initialClusterState(config: NodeConfig, store: Store, nodeId: string): Promise<ClusterState> {
  const q = config.partitions ?? partitionCountDefault;
  const stored = store.getMeta<unknown>(clusterMetaName);
  if (stored !== undefined) {
    if (checkClusterState(stored)) return stored;
    throw new Error('the stored cluster state is malformed');
  }
  if (config.members.length > 0) return initialState(config.members, q);
  if ((config.seeds ?? []).length > 0) return joinerState(nodeId, q);
  throw new Error('this node has no cluster state: give --members (a new cluster) or --seeds (join one)');
}

interface LearnDeps {
  nodeId: string;
  incarnation: number;
  transport: Transport;
  clock: Clock;
  log: Log;
  retryMs: number;
  setHandler: (handler: (msg: Inbound) => void) => void;
}

/**
 * A fresh node's first contact (Dynamo §4.8.2, seeds): it sends its state (itself, join staged) to
 * its seeds until one answers with a state that holds a committed ring, and takes that over. Client
 * requests that reach it meanwhile go on to a seed, which answers them.
 */
function learnFromSeeds(state: ClusterState, seeds: string[], deps: LearnDeps): Promise<ClusterState> {
  const { nodeId, transport, clock, log } = deps;
  const targets = seeds.filter((s) => s !== nodeId);
  if (targets.length === 0) return Promise.reject(new Error('this node has no ring yet and no seed to learn it from: give --seeds'));
  return new Promise((resolve) => {
    let current = state;
    let attempt = 0;
    let timer: unknown;
    const ask = () => {
      attempt++;
      // Seeds drop what is not sealed with their cluster's secret without a word: say what to check.
      if (attempt % 10 === 0) log.warn('no seed has answered yet: are the seeds up, and does this node have the cluster secret they were given?', { seeds: targets, attempts: attempt });
      const body: GossipBody = { heartbeats: { [nodeId]: [deps.incarnation, 0] }, cluster: current };
      for (const seed of targets) {
        transport.send(seed, 'gossip', encodeEnvelope({ v: protocolVersion, kind: 'gossip.digest', from: nodeId, to: seed, reqId: `join.${attempt}`, body }));
      }
      timer = clock.setTimeout(ask, deps.retryMs);
    };
    deps.setHandler((msg) => {
      if (msg.role === 'api') {
        if (msg.replyTo !== undefined) transport.forward(targets[0]!, msg.bytes, msg.replyTo);
        return;
      }
      // An admin request cannot be passed on (the forward role takes only reads and writes): it is
      // told this node is not ready rather than left to time out.
      if (msg.role === 'admin') {
        if (msg.replyTo !== undefined) answerNotReady(transport, nodeId, msg);
        return;
      }
      if (msg.role !== 'gossip') return;
      const env = decodeEnvelope(msg.bytes);
      if (typeof env === 'string' || !checkGossipBody(env.body)) return;
      const cluster = (env.body as GossipBody).cluster;
      if (!cluster) return;
      current = mergeStates(current, cluster);
      if (hasRing(current)) {
        clock.clearTimeout(timer);
        log.info('learned the cluster from a seed', { from: env.from, ringVersion: current.ring.version, members: Object.keys(current.members) });
        resolve(current);
      }
    });
    ask();
  });
}

function answerNotReady(transport: Transport, nodeId: string, msg: Inbound): void {
  const env = decodeEnvelope(msg.bytes);
  const to = typeof env === 'string' ? '' : env.from;
  const reqId = typeof env === 'string' ? '' : env.reqId;
  const body = { code: 'NOT_READY', message: `node ${nodeId} has not learned the ring from a seed yet` };
  transport.reply(msg.replyTo!, encodeEnvelope({ v: protocolVersion, kind: 'error', from: nodeId, to, reqId, body }));
}

/** A 32-bit seed from a string (the node's clock id), so each node draws its own sequence. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return splitmix32(h >>> 0);
}
