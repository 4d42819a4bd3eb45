/**
 * Anti-entropy: one per node (Dynamo §4.7). On each aae.tick with no round in progress it plans a
 * round: for each partition this node replicates (a primary of its preference list), one exchange
 * with each other replica of that partition that is not believed down, in turn. It runs at most
 * exchangesMax of them at once, each an exchange child (exchange.machine.ts) with its share of the
 * node's byte rate. It also serves its peers' exchanges (aae.tree, aae.segment, aae.put) through the
 * runtime, and answers api.aae: status, pause (stops the running exchanges, refuses peers' requests
 * and starts no round) and resume.
 *
 * On ring.changed it takes the new ring: the rest of the round keeps only exchanges of partitions
 * this node still replicates with peers that still do; running exchanges finish (a peer that no
 * longer replicates the partition refuses with NOT_OWNER), and the next round is planned on the new
 * ring.
 *
 * Takes: ring.changed, aae.tick {down}, aae.tree / aae.segment / aae.put (peers' requests), the answers and local
 * results of its exchanges (routed to the exchange whose id prefixes their reqId; others dropped as
 * late), api.aae, its exchanges' done events. Sends: through the runtime, the answers to peers'
 * requests (serveTree, serveSegment, serveSync), aae.error when paused, when the tree shapes differ or
 * when this node does not replicate the partition,
 * the api.aae answer (answerAae), and each finished exchange's output (reportExchange).
 *
 * Invariants: at most exchangesMax exchanges run; a round's queue holds at most one entry per
 * (partition, peer) pair, so it is bounded by Q * (N - 1); while paused nothing runs or is served.
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { TreeShape } from '../src/core/merkle.js';
import { partitionsReplicatedBy, preferenceList, type Ring } from '../src/core/ring.js';
import type { AaeErrorBody, AaePutBody, AaeSegmentBody, AaeTreeBody } from '../src/protocol/aae-messages.js';
import type { AntiEntropyEvent } from './anti-entropy.events.js';
import { type ExchangeInput, exchangeDefaults, exchangeMachine, type ExchangeOutput } from './exchange.machine.js';
import type { SendParams } from './replica.machine.js';
import { operatorDefaults } from '../src/core/defaults.js';

export interface AntiEntropyInput {
  nodeId: string;
  ring: Ring;
  /** Replicas per key: the primaries of a preference list are its first n nodes. */
  n: number;
  shape: TreeShape;
  /** Exchanges running at once, at most (K). */
  exchangesMax: number;
  /** The node's anti-entropy byte rate, shared by its running exchanges. */
  bytesPerSec: number;
  requestTimeoutMs: number;
  segmentsPerRequestMax: number;
  batchesMax: number;
  /** Start paused (no rounds, peers refused). */
  paused: boolean;
}

export interface AntiEntropyContext extends AntiEntropyInput {
  /** The rest of this round: [partition, peer]. */
  queue: [number, string][];
  /** Ids of the running exchanges. */
  running: string[];
  seq: number;
  rounds: number;
}

export interface ServeParams<B> {
  from: string;
  reqId: string;
  body: B;
}

export interface AnswerAaeParams {
  replyTo: string;
  to: string;
  reqId: string;
  paused: boolean;
  running: number;
  queued: number;
}

export const antiEntropyDefaults = {
  /** A round starts at most this often (the runtime's tick). */
  intervalMs: operatorDefaults.aaeIntervalMs as number,
  exchangesMax: operatorDefaults.aaeExchangesMax as number,
  bytesPerSec: operatorDefaults.aaeBytesPerSec as number,
  ...exchangeDefaults,
};

export const exchangeIdPrefix = 'exchange-';

/** The exchange a reqId belongs to: reqIds are `<exchange id>.<step>`. */
export function exchangeOf(reqId: string): string {
  const dot = reqId.lastIndexOf('.');
  return dot < 0 ? reqId : reqId.slice(0, dot);
}

/** One round: every (partition, other replica) pair this node takes part in, peers down left out. */
export function planRound(ring: Ring, nodeId: string, n: number, down: readonly string[]): [number, string][] {
  const skip = new Set(down);
  const out: [number, string][] = [];
  for (const p of partitionsReplicatedBy(ring, nodeId, n)) {
    for (const peer of preferenceList(ring, p, n)) if (peer !== nodeId && !skip.has(peer)) out.push([p, peer]);
  }
  return out;
}

/** What an enqueueActions callback of this machine receives, loosely typed (see the casts below). */
interface Args {
  context: AntiEntropyContext;
  event: AntiEntropyEvent;
  self: { getSnapshot(): { children: Record<string, unknown> } };
  enqueue: {
    (action: string | { type: string; params?: unknown }): void;
    spawnChild(src: string, options: { id: string; input: unknown }): void;
    stopChild(id: string): void;
    sendTo(to: unknown, event: unknown): void;
    assign(update: Partial<AntiEntropyContext>): void;
  };
}

/** Spawns exchanges from the queue while fewer than exchangesMax run. */
function startExchanges(enqueue: Args['enqueue'], context: AntiEntropyContext, queue: [number, string][], running: string[]): void {
  const q = [...queue];
  const r = [...running];
  let seq = context.seq;
  while (r.length < context.exchangesMax && q.length > 0) {
    const [p, peer] = q.shift()!;
    const id = `${exchangeIdPrefix}${++seq}`;
    const input: ExchangeInput = {
      id,
      peer,
      p,
      shape: context.shape,
      requestTimeoutMs: context.requestTimeoutMs,
      bytesPerSec: Math.max(1, Math.floor(context.bytesPerSec / context.exchangesMax)),
      segmentsPerRequestMax: context.segmentsPerRequestMax,
      batchesMax: context.batchesMax,
    };
    enqueue.spawnChild('exchange', { id, input });
    r.push(id);
  }
  enqueue.assign({ queue: q, running: r, seq });
}

function refusal(event: { from: string; reqId: string }, body: AaeErrorBody): SendParams {
  return { to: event.from, kind: 'aae.error', reqId: event.reqId, body };
}

function isForeignShape(context: AntiEntropyContext, body: { shape: [number, number] }): boolean {
  return body.shape[0] !== context.shape.segments || body.shape[1] !== context.shape.fanout;
}

/** A peer may only exchange a partition this node replicates: it must never push keys we do not own. */
function isNotReplica(context: AntiEntropyContext, body: { p: number }): boolean {
  return !preferenceList(context.ring, body.p, context.n).includes(context.nodeId);
}

/** Refuses a request for a partition this node does not replicate. */
const refuseNotReplica = {
  guard: ({ context, event }: { context: AntiEntropyContext; event: AntiEntropyEvent }) => isNotReplica(context, (event as { body: { p: number } }).body),
  actions: {
    type: 'send' as const,
    params: ({ context, event }: { context: AntiEntropyContext; event: AntiEntropyEvent }) => {
      const e = event as { from: string; reqId: string; body: { p: number } };
      return refusal(e, { code: 'NOT_OWNER', message: `${context.nodeId} does not replicate partition ${e.body.p}` });
    },
  },
};

/** A peer whose trees have another shape cannot be compared with: refused with BAD_REQUEST. */
const refuseForeignShape = {
  guard: ({ context, event }: { context: AntiEntropyContext; event: AntiEntropyEvent }) =>
    isForeignShape(context, (event as unknown as { body: Parameters<typeof isForeignShape>[1] }).body),
  actions: {
    type: 'send' as const,
    params: ({ context, event }: { context: AntiEntropyContext; event: AntiEntropyEvent }) =>
      refusal(event as { from: string; reqId: string }, {
        code: 'BAD_REQUEST',
        message: `this node's trees have ${context.shape.segments} segments and fan-out ${context.shape.fanout}`,
      }),
  },
};

export const antiEntropyMachine = setup({
  types: {
    context: {} as AntiEntropyContext,
    events: {} as AntiEntropyEvent,
    input: {} as AntiEntropyInput,
  },
  actors: {
    exchange: exchangeMachine,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    /** Answers a peer's aae.tree from this node's tree of the partition. */
    serveTree: (_, _params: ServeParams<AaeTreeBody>) => {},
    /** Answers a peer's aae.segment from this node's keys in those segments. */
    serveSegment: (_, _params: ServeParams<AaeSegmentBody>) => {},
    /** Syncs a peer's objects into the store; answers aae.put.ok after commit. */
    serveSync: (_, _params: ServeParams<AaePutBody>) => {},
    /** Answers api.aae, adding the runtime's per-partition counters. */
    answerAae: (_, _params: AnswerAaeParams) => {},
    /** Tells the runtime how an exchange ended (counters, log). */
    reportExchange: (_, _params: ExchangeOutput) => {},
    /** Counted by the runtime: answers for an exchange that is over. */
    dropLate: () => {},

    planAndStart: enqueueActions(({ enqueue, context, event }: Args) => {
      if (context.queue.length > 0 || context.running.length > 0) return;
      const down = event.type === 'aae.tick' ? (event.down ?? []) : [];
      const queue = planRound(context.ring, context.nodeId, context.n, down);
      enqueue.assign({ rounds: context.rounds + 1 });
      startExchanges(enqueue, context, queue, []);
    }) as never,

    routeToExchange: enqueueActions(({ enqueue, event, self }: Args) => {
      const id = exchangeOf((event as { reqId: string }).reqId);
      const child = id.startsWith(exchangeIdPrefix) ? self.getSnapshot().children[id] : undefined;
      if (child) enqueue.sendTo(child, event);
      else enqueue('dropLate');
    }) as never,

    finishExchange: enqueueActions(({ enqueue, context, event }: Args) => {
      const done = event as { actorId: string; output?: ExchangeOutput };
      if (!context.running.includes(done.actorId)) return;
      enqueue.stopChild(done.actorId);
      if (done.output) enqueue({ type: 'reportExchange', params: done.output });
      const running = context.running.filter((id) => id !== done.actorId);
      startExchanges(enqueue, context, context.queue, running);
    }) as never,

    stopExchanges: enqueueActions(({ enqueue, context }: Args) => {
      for (const id of context.running) enqueue.stopChild(id);
      enqueue.assign({ running: [], queue: [] });
    }) as never,
  },
}).createMachine({
  id: 'antiEntropy',
  context: ({ input }) => ({ ...input, queue: [], running: [], seq: 0, rounds: 0 }),
  initial: 'checkingPaused',
  on: {
    'aae.tree.ok': { actions: 'routeToExchange' },
    'aae.segment.ok': { actions: 'routeToExchange' },
    'aae.put.ok': { actions: 'routeToExchange' },
    'aae.error': { actions: 'routeToExchange' },
    'aae.local.tree': { actions: 'routeToExchange' },
    'aae.local.entries': { actions: 'routeToExchange' },
    'aae.local.merged': { actions: 'routeToExchange' },
    'aae.local.failed': { actions: 'routeToExchange' },
    'xstate.done.actor.*': { actions: 'finishExchange' },
    'ring.changed': {
      actions: assign(({ context, event }) => {
        const still = (p: number, peer: string) => {
          const prefs = preferenceList(event.ring, p, context.n);
          return prefs.includes(context.nodeId) && prefs.includes(peer);
        };
        return { ring: event.ring, queue: context.queue.filter(([p, peer]) => still(p, peer)) };
      }),
    },
  },
  states: {
    checkingPaused: {
      always: [{ guard: ({ context }) => context.paused, target: 'paused' }, { target: 'active' }],
    },
    active: {
      on: {
        'aae.tick': { actions: 'planAndStart' },
        'aae.tree': [
          refuseNotReplica,
          refuseForeignShape,
          { actions: { type: 'serveTree', params: ({ event }) => ({ from: event.from, reqId: event.reqId, body: event.body }) } },
        ],
        'aae.segment': [
          refuseNotReplica,
          refuseForeignShape,
          { actions: { type: 'serveSegment', params: ({ event }) => ({ from: event.from, reqId: event.reqId, body: event.body }) } },
        ],
        'aae.put': [refuseNotReplica, { actions: { type: 'serveSync', params: ({ event }) => ({ from: event.from, reqId: event.reqId, body: event.body }) } }],
        'api.aae': [
          {
            guard: ({ event }) => event.op === 'pause',
            target: 'paused',
            actions: { type: 'answerAae', params: ({ event }) => answerParams(event, true, 0, 0) },
          },
          { actions: { type: 'answerAae', params: ({ context, event }) => answerParams(event, false, context.running.length, context.queue.length) } },
        ],
      },
    },
    paused: {
      entry: 'stopExchanges',
      on: {
        'aae.tree': { actions: { type: 'send', params: ({ context, event }) => pausedRefusal(context, event) } },
        'aae.segment': { actions: { type: 'send', params: ({ context, event }) => pausedRefusal(context, event) } },
        'aae.put': { actions: { type: 'send', params: ({ context, event }) => pausedRefusal(context, event) } },
        'api.aae': [
          { guard: ({ event }) => event.op === 'resume', target: 'active', actions: { type: 'answerAae', params: ({ event }) => answerParams(event, false, 0, 0) } },
          { actions: { type: 'answerAae', params: ({ event }) => answerParams(event, true, 0, 0) } },
        ],
      },
    },
  },
});

function answerParams(event: { replyTo: string; from: string; reqId: string }, paused: boolean, running: number, queued: number): AnswerAaeParams {
  return { replyTo: event.replyTo, to: event.from, reqId: event.reqId, paused, running, queued };
}

function pausedRefusal(context: AntiEntropyContext, event: { from: string; reqId: string }): SendParams {
  return refusal(event, { code: 'OVERLOADED', message: `anti-entropy is paused on ${context.nodeId}` });
}
