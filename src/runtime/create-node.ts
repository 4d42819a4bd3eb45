/**
 * createNode(): binds the node machine to its ports (DESIGN.md §2, §4). The machines decide; this
 * file performs what they decide: every named I/O action is implemented here, and results come back
 * to the actors as events. The same function builds production nodes (NATS, LMDB, system clock) and
 * simulated ones (SimNetwork, SimStore, SimClock).
 */
import { type AnyActorRef, createActor } from 'xstate';
import type { NodeEvent } from '../../actors/node.events.js';
import { type ForwardParams, type NodeInput, nodeMachine } from '../../actors/node.machine.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { coordinatorMachine } from '../../actors/coordinator.machine.js';
import { gossipMachine, gossipRoundMsDefault, phiDefaults, phiThresholdDefault } from '../../actors/gossip.machine.js';
import type { PhiOptions } from '../core/phi.js';
import { type CollectParams, type HandoffInput, handoffDefaults, handoffMachine } from '../../actors/handoff.machine.js';
import type { HandoffItem } from '../../actors/handoff.events.js';
import { antiEntropyDefaults, antiEntropyMachine } from '../../actors/anti-entropy.machine.js';
import { exchangeMachine } from '../../actors/exchange.machine.js';
import { fanoutDefault, shapeProblem, type TreeShape } from '../core/merkle.js';
import { type AaeView, createAaeIo } from './anti-entropy-io.js';
import { DeliveryTally, hintSummary } from './hint-summary.js';
import type { ApiHintsOk } from '../protocol/messages.js';
import { type CommitWriteParams, type ReadAndAnswerParams, type SendParams, replicaMachine, writesInFlightMaxDefault } from '../../actors/replica.machine.js';
import { quorumDefault, type Quorum } from '../core/quorum.js';
import { applyWrite } from '../core/replica-write.js';
import { claimInitial, partitionCountDefault, partitionsReplicatedBy, ringNodes as ringMembers } from '../core/ring.js';
import { splitmix32 } from '../core/prng.js';
import { decode, encode } from '../protocol/codec.js';
import { encodeEnvelope, encodeStateAnswer, protocolVersion } from '../protocol/envelope.js';
import { defaultLimits, type Limits } from '../protocol/limits.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Hint, Store } from '../ports/store.js';
import type { Role, Transport } from '../ports/transport.js';
import { type Identity, loadIdentity, markCleanStop } from './identity.js';
import { createRouter, type RouterStats } from './router.js';
import { createInspectServer, type InspectServer } from './inspect-server.js';

export interface NodeConfig {
  nodeId: string;
  cluster: string;
  /** The static member list (gossip membership replaces it in a later issue). */
  members: string[];
  partitions?: number;
  quorum?: Partial<Quorum>;
  limits?: Partial<Limits>;
  requestTimeoutMs?: number;
  readRepairWaitMs?: number;
  coordinatorsMax?: number;
  writesInFlightMax?: number;
  /** How often a node gossips with one peer; 0 turns gossip (and failure detection) off. */
  gossipRoundMs?: number;
  /** Phi above which a member is judged down (8: about one false suspicion in 10^8). */
  phiThreshold?: number;
  phi?: Partial<PhiOptions>;
  handoff?: Partial<Omit<HandoffInput, 'nodeId'>>;
  antiEntropy?: Partial<AntiEntropyConfig>;
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
  transport: Transport;
  store: Store;
  clock: Clock;
  log: Log;
  /** A fresh epoch for a node without data: random in production, seeded in simulation. */
  newEpoch: () => string;
  /** Seeds the node's protocol randomness (the choice of gossip peers). */
  seed?: number;
  /** Told about each client request this node handles (metrics); must not throw. */
  requests?: RequestObserver;
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
  lateAnswers: number;
  actionFailures: number;
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
  stop(): Promise<void>;
}

export const requestTimeoutMsDefault = 5_000;
export const readRepairWaitMsDefault = 50;
export const coordinatorsMaxDefault = 4096;

export async function createNode(config: NodeConfig, ports: NodePorts): Promise<RunningNode> {
  const { transport, store, clock } = ports;
  const identity = await loadIdentity(store, config.nodeId, ports.newEpoch);
  const log = ports.log.child({ node: config.nodeId });
  const { nodeId } = identity;
  const stats: NodeStats = { received: 0, droppedInvalid: 0, rejected: 0, lateAnswers: 0, actionFailures: 0 };
  const limits: Limits = { ...defaultLimits, ...config.limits };
  const ring = claimInitial(config.members, config.partitions ?? partitionCountDefault);

  // Every action is I/O at the edge: a failure is logged and counted, and never crashes an actor.
  const safe = <A extends unknown[]>(name: string, fn: (...args: A) => void) => (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      stats.actionFailures++;
      log.error('action failed', { action: name, err: String(err) });
    }
  };

  let root: AnyActorRef | undefined;
  const requests = ports.requests;
  const deliver = (event: NodeEvent) => {
    if (requests && event.type.startsWith('api.')) {
      const e = event as { type: string; from: string; reqId: string };
      requests.received(e.type.slice('api.'.length), e.from, e.reqId);
    }
    root?.send(event);
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
    requests?.answered(p.to, p.reqId, p.kind, p.kind === 'error' ? (p.body as { code?: string }).code : undefined);
    transport.reply(p.replyTo, encodeEnvelope({ v: protocolVersion, kind: p.kind, from: nodeId, to: p.to, reqId: p.reqId, body: p.body }));
  };

  const forward = (p: ForwardParams) => {
    const env = decode(p.bytes) as { body: Record<string, unknown>; from: string; reqId: string };
    env.body.forwarded = true;
    requests?.forwarded(env.from, env.reqId, p.to);
    transport.forward(p.to, encodeEnvelope(env as never), p.replyTo);
  };

  const commitWrite = ({ self }: { self: AnyActorRef }, p: CommitWriteParams) => {
    const hints = p.hints.length > 0 ? { targets: p.hints, now: clock.now() } : undefined;
    store.update(p.p, p.key, (current) => applyWrite(current, p.write), hints).then(
      (outcome) => {
        if (outcome.ok && p.write.kind === 'coordinate' && outcome.siblings >= limits.siblingsWarn) {
          log.warn('key has many siblings: clients should merge them', { partition: p.p, siblings: outcome.siblings });
        }
        self.send({ type: 'store.committed', from: p.from, reqId: p.reqId, answer: p.answer, outcome });
      },
      (err: unknown) => {
        log.error('store update failed', { partition: p.p, err: String(err) });
        self.send({ type: 'store.failed', from: p.from, reqId: p.reqId, message: String(err) });
      },
    );
  };

  const readAndAnswer = (p: ReadAndAnswerParams) => {
    if (p.from === nodeId) {
      // This node's own coordinator takes the state as an object (no encoding on the way).
      send({ to: p.from, kind: 'replica.get.ok', reqId: p.reqId, body: { state: store.get(p.p, p.key) ?? null } });
      return;
    }
    // A peer's: the stored bytes go into the answer as they are (no decode and re-encode).
    const head = { v: protocolVersion, kind: 'replica.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.send(p.from, 'replica', encodeStateAnswer(head, store.getEncoded(p.p, p.key)));
  };

  const roundMs = config.gossipRoundMs ?? gossipRoundMsDefault;
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
        log.error('could not remove delivered hints', { err: String(err) });
        self.send({ type: 'handoff.cleared', removed: 0 });
      },
    );
  };
  const applyBatch = (p: { from: string; reqId: string; items: HandoffItem[] }) => {
    Promise.all(p.items.map((item) => store.update(item.p, item.key, (current) => applyWrite(current, { kind: 'sync', state: item.state })))).then(
      () => send({ to: p.from, kind: 'handoff.batch.ok', reqId: p.reqId, body: {} }),
      // No answer: the sender keeps its hints and tries again later.
      (err: unknown) => log.error('could not apply a handoff batch', { from: p.from, err: String(err) }),
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
  const aaeChild = () => root?.getSnapshot().children.antiEntropy as AnyActorRef | undefined;
  const aae = createAaeIo({
    nodeId,
    store,
    shape,
    transport,
    clock,
    log,
    settings: { intervalMs: aaeConfig.intervalMs, bytesPerSec: aaeConfig.bytesPerSec, exchangesMax: aaeConfig.exchangesMax },
    partitions: partitionsReplicatedBy(ring, nodeId, n),
    deliver: (event) => deliver(event),
    answerClient,
    machineState: () => {
      const snap = aaeChild()?.getSnapshot() as { value: string; context: { running: string[]; queue: unknown[] } } | undefined;
      return { paused: snap?.value === 'paused', running: snap?.context.running.length ?? 0, queued: snap?.context.queue.length ?? 0 };
    },
  });
  const ae = aae.antiEntropyActions;
  const ex = aae.exchangeActions;

  const machine = nodeMachine.provide({
    actions: {
      answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
      forward: safe('forward', (_: unknown, p: ForwardParams) => forward(p)),
      answerHints: safe('answerHints', (_: unknown, p: { replyTo: string; to: string; reqId: string }) => answerHints(p)),
      dropLate: () => void stats.lateAnswers++,
    },
    actors: {
      coordinator: coordinatorMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
          answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
        },
      }),
      gossip: gossipMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
          tellNode: safe('tellNode', (_: unknown, e: { type: 'member.up' | 'member.down'; nodeId: string }) => {
            log.info(e.type === 'member.down' ? 'member judged down' : 'member up', { member: e.nodeId });
            deliver(e);
          }),
        },
      }),
      handoff: handoffMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          collectBatch: safe('collectBatch', collectBatch as (args: unknown, p: CollectParams) => void),
          clearHints: safe('clearHints', clearHints as (args: unknown, p: { hints: Hint[]; bytes: number }) => void),
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
      replica: replicaMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          commitWrite: safe('commitWrite', commitWrite as (args: unknown, p: CommitWriteParams) => void),
          readAndAnswer: safe('readAndAnswer', (_: unknown, p: ReadAndAnswerParams) => readAndAnswer(p)),
        },
      }),
    },
  });

  const input: NodeInput = {
    nodeId,
    dotId: identity.dotId,
    cluster: config.cluster,
    ring,
    quorumDefault: { ...quorumDefault, ...config.quorum },
    limits,
    requestTimeoutMs: config.requestTimeoutMs ?? requestTimeoutMsDefault,
    readRepairWaitMs: config.readRepairWaitMs ?? readRepairWaitMsDefault,
    coordinatorsMax: config.coordinatorsMax ?? coordinatorsMaxDefault,
    writesInFlightMax: config.writesInFlightMax ?? writesInFlightMaxDefault,
    handoff: { nodeId, ...handoffDefaults, ...config.handoff },
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
      members: ringMembers(ring),
      // Larger in every later life of this node, so its new heartbeats beat the ones remembered.
      incarnation: clock.now(),
      seed: ports.seed ?? hashSeed(identity.dotId),
      phiThreshold: config.phiThreshold ?? phiThresholdDefault,
      // The detector's expectations scale with the round: detection takes about 5 rounds.
      phi: roundMs > 0 ? { ...phiDefaults, firstIntervalMs: roundMs, acceptablePauseMs: roundMs, minStdDeviationMs: roundMs / 2, ...config.phi } : { ...phiDefaults, ...config.phi },
    },
  };
  const actor = createActor(machine, { input, clock, id: nodeId });
  actor.subscribe({
    error: (err) => log.error('node actor failed', { err: String(err) }),
  });
  const inspect = createInspectServer({ nodeId, transport, clock, log });
  inspect.tap.attach(actor);
  actor.start();
  root = actor;

  const route = createRouter({ nodeId, q: ring.q, limits, transport, deliver, stats, now: () => clock.now() });
  await transport.listen((msg) => (msg.role === 'inspect' ? inspect.handle(msg) : route(msg)));
  // Gossip rounds: time enters the machines only as event data, stamped here from the Clock port.
  let tickHandle: unknown;
  const tick = () => {
    deliver({ type: 'gossip.tick', now: clock.now() });
    deliver({ type: 'handoff.tick' });
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
  log.info('node serving', { epoch: identity.epoch, newEpoch: identity.isNewEpoch, partitions: ring.q, members: config.members });

  return {
    identity,
    stats,
    actor,
    inspect,
    aae: aae.view,
    hints: () => hintSummary(nodeId, store, clock.now(), deliveries),
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

/** A 32-bit seed from a string (the node's clock id), so each node draws its own sequence. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return splitmix32(h >>> 0);
}
