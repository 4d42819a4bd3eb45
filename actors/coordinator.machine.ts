/**
 * Coordinator: serves one client request at a time (Dynamo §4.5, §5). The node spawns it with its
 * first request; when that is over it waits in `idle` (telling the node, tellNode coordinator.done)
 * and the node hands it the next request as coordinator.start { input }, which resets every
 * per-request field. A request runs on one of the
 * request's targets: the first N healthy nodes of the key's extended preference list (sloppy quorum,
 * §4.6), where a fallback stands in for a down primary and keeps the write with a hint for it.
 *
 * put/del: the local replica makes the new dot and commits (replica.coordinate, with the hints this
 * node keeps), then the resulting state goes to the other targets (replica.put, with a hint on a
 * fallback's); with W acks, the local one included, the client gets its new context. W counts
 * fallbacks unless the request says sloppy: false; pw primaries must be among them. get: replica.get
 * to the targets; with R answers (pr of them primaries) their DVV sets
 * are merged and the client gets every sibling plus one context; answers that come in a little later
 * are still awaited, and every replica that answered with less than the merge gets read repair.
 *
 * Takes: coordinator.start, replica.*.ok, replica.error, deadline, repairWaitOver. Sends:
 * replica.coordinate, replica.put, replica.get; one answer to the client; coordinator.done to the node.
 *
 * Invariants: the client is answered exactly once: with the result on quorum, UNAVAILABLE
 * {needed, alive} before any replica is asked when too few are believed alive, an error a replica
 * reported, or TIMEOUT (indeterminate: the write may have been stored) at the deadline. Each replica
 * counts once however often its answer is duplicated. Nothing of one request (acks, answers, state,
 * timers) reaches the next: the context is rebuilt from the new input, the delayed events are
 * cancelled on the way to idle and carry their request id besides.
 */
import { assign, cancel, raise, setup } from 'xstate';
import { type DvvSet, type Sibling, type VersionVector, equal, isDeleted, join, sync, values } from '../src/core/dvv.js';
import type { Quorum } from '../src/core/quorum.js';
import type { Target } from '../src/core/targets.js';
import { encode } from '../src/protocol/codec.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { CoordinatorEvent } from './coordinator.events.js';
import type { SendParams } from './replica.machine.js';

export interface ClientAddress {
  /** Where the answer goes (a NATS inbox). */
  replyTo: string;
  /** The client's name and its request id, echoed in the answer's envelope. */
  from: string;
  reqId: string;
  /** The request kind; the answer is `${kind}.ok` or `error`. */
  kind: string;
}

export interface CoordinatorInput {
  op: 'put' | 'get';
  /** This coordinator's id: the reqId of every replica message it sends. */
  id: string;
  nodeId: string;
  client: ClientAddress;
  partition: number;
  key: Uint8Array;
  /** The N primaries of the key, in order. */
  preferenceList: string[];
  /**
   * The nodes to ask: healthy primaries and the fallbacks standing in for down ones (sloppy quorum,
   * Dynamo §4.6). For a put the first is this node.
   */
  targets: Target[];
  /** put: the down primaries whose hints the local write keeps (orphans, or the one it stands in for). */
  localHints: string[];
  quorum: Quorum;
  /** Primaries that must answer (Riak's pw / pr); 0 for none. */
  primariesNeeded: number;
  /** false: only primaries count toward W or R (a strict quorum). */
  sloppy: boolean;
  timeoutMs: number;
  /** How long a get waits for answers beyond R before it sends read repair. */
  readRepairWaitMs: number;
  /** put only: what the client saw, and the new value (null: a delete). */
  context: VersionVector;
  value: Sibling;
}

export interface CoordinatorContext extends CoordinatorInput {
  /** Replicas that acknowledged the write, local one included. */
  acked: string[];
  /** The state the local replica committed (put), or the merge of all answers (get). */
  state: DvvSet;
  /** get: each answering replica's state (null: it has nothing). */
  answers: Record<string, DvvSet | null>;
}

/** What a coordinator tells its node (tellNode): it has answered and finished its request, and is idle. */
export interface CoordinatorDone {
  type: 'coordinator.done';
  /** The request id it served (coordinator-<slot>.<seq>): its slot is free again. */
  id: string;
}

/** A fresh context for one request: nothing of the previous request in this slot carries over. */
function freshContext(input: CoordinatorInput): CoordinatorContext {
  return { ...input, acked: [], state: [], answers: {} };
}

export interface AnswerParams {
  replyTo: string;
  to: string;
  reqId: string;
  kind: string;
  body: unknown;
}

function answer(ctx: CoordinatorContext, body: unknown): AnswerParams {
  return { replyTo: ctx.client.replyTo, to: ctx.client.from, reqId: ctx.client.reqId, kind: `${ctx.client.kind}.ok`, body };
}

function answerError(ctx: CoordinatorContext, body: ErrorBody): AnswerParams {
  return { replyTo: ctx.client.replyTo, to: ctx.client.from, reqId: ctx.client.reqId, kind: 'error', body };
}

function needed(ctx: CoordinatorContext): number {
  return ctx.op === 'put' ? ctx.quorum.w : ctx.quorum.r;
}

function isPrimary(ctx: CoordinatorContext, node: string): boolean {
  return ctx.preferenceList.includes(node);
}

/** Of these answering nodes, how many count toward W or R, and how many are primaries. */
function counted(ctx: CoordinatorContext, nodes: readonly string[]): { quorum: number; primaries: number } {
  const primaries = nodes.filter((node) => isPrimary(ctx, node)).length;
  return { quorum: ctx.sloppy ? nodes.length : primaries, primaries };
}

/** True when these answers (acks or reads) make the quorum the client asked for. */
export function hasQuorum(ctx: CoordinatorContext, nodes: readonly string[]): boolean {
  const c = counted(ctx, nodes);
  return c.quorum >= needed(ctx) && c.primaries >= ctx.primariesNeeded;
}

function targetNodes(ctx: CoordinatorContext): string[] {
  return ctx.targets.map((t) => t.node);
}

/** The read repair a finished get sends: the merged state to every replica that lacked part of it. */
const readRepair = {
  type: 'sendAll' as const,
  params: ({ context }: { context: CoordinatorContext }): SendParams[] =>
    repairTargets(context.answers, context.state).map((to) => ({
      to,
      kind: 'replica.put',
      reqId: context.id,
      body: { p: context.partition, key: context.key, state: context.state },
    })),
};

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as CoordinatorInput,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    sendAll: (_, _params: SendParams[]) => {},
    answerClient: (_, _params: AnswerParams) => {},
    /** Provided by the runtime: tells the node this coordinator is idle again (its slot is free). */
    tellNode: (_, _params: CoordinatorDone) => {},
    recordAnswer: assign(({ context, event }) => {
      if (event.type !== 'replica.get.ok') return {};
      const state = event.body.state;
      return {
        answers: { ...context.answers, [event.from]: state },
        state: state === null ? context.state : sync(context.state, state),
      };
    }),
  },
  guards: {
    lacksLiveQuorum: ({ context }) => !hasQuorum(context, targetNodes(context)),
    isGet: ({ context }) => context.op === 'get',
    // Delayed events carry the request id they were raised for: one left from an earlier request
    // in this slot (cancel should have removed it) is ignored.
    isCurrent: ({ context, event }) => 'reqId' in event && event.reqId === context.id,
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => freshContext(input),
  initial: 'checking',
  states: {
    // Every request starts here, the first one (the spawn input) and each coordinator.start.
    checking: {
      entry: raise(({ context }) => ({ type: 'deadline' as const, reqId: context.id }), { id: 'deadline', delay: ({ context }) => context.timeoutMs }),
      always: [
        {
          guard: 'lacksLiveQuorum',
          target: 'idle',
          actions: {
            type: 'answerClient',
            params: ({ context }) =>
              answerError(context, {
                code: 'UNAVAILABLE',
                message: unavailableMessage(context),
                needed: needed(context),
                alive: counted(context, targetNodes(context)).quorum,
              }),
          },
        },
        { guard: 'isGet', target: 'collecting' },
        { target: 'coordinating' },
      ],
    },

    // put: wait for the local replica to make the dot and commit.
    coordinating: {
      entry: {
        type: 'send',
        params: ({ context }) => ({
          to: context.nodeId,
          kind: 'replica.coordinate',
          reqId: context.id,
          body: { p: context.partition, key: context.key, context: context.context, value: context.value, hints: context.localHints },
        }),
      },
      on: {
        'replica.coordinate.ok': {
          target: 'replicating',
          actions: assign({ state: ({ event }) => event.body.state, acked: ({ event }) => [event.from] }),
        },
        'replica.error': {
          target: 'idle',
          actions: {
            type: 'answerClient',
            params: ({ context, event }) => answerError(context, event.body as ErrorBody),
          },
        },
        deadline: { guard: 'isCurrent', target: 'idle', actions: { type: 'answerClient', params: ({ context }) => timeoutAnswer(context) } },
      },
    },

    // put: the other replicas sync the new state; W acks answer the client.
    replicating: {
      entry: {
        type: 'sendAll',
        params: ({ context }) =>
          context.targets
            .filter((t) => t.node !== context.nodeId)
            .map((t) => ({
              to: t.node,
              kind: 'replica.put',
              reqId: context.id,
              body: { p: context.partition, key: context.key, state: context.state, ...(t.hintFor ? { hint: t.hintFor } : {}) },
            })),
      },
      always: {
        guard: ({ context }) => hasQuorum(context, context.acked),
        target: 'idle',
        actions: { type: 'answerClient', params: ({ context }) => answer(context, { context: encode(join(context.state)) }) },
      },
      on: {
        'replica.put.ok': {
          guard: ({ context, event }) => !context.acked.includes(event.from),
          actions: assign({ acked: ({ context, event }) => [...context.acked, event.from] }),
        },
        deadline: { guard: 'isCurrent', target: 'idle', actions: { type: 'answerClient', params: ({ context }) => timeoutAnswer(context) } },
      },
    },

    // get: wait for R answers.
    collecting: {
      entry: {
        type: 'sendAll',
        params: ({ context }) =>
          context.targets.map((t) => ({ to: t.node, kind: 'replica.get', reqId: context.id, body: { p: context.partition, key: context.key } })),
      },
      always: {
        guard: ({ context }) => hasQuorum(context, Object.keys(context.answers)),
        target: 'repairing',
        actions: { type: 'answerClient', params: ({ context }) => answer(context, readResult(context.state)) },
      },
      on: {
        'replica.get.ok': {
          guard: ({ context, event }) => !(event.from in context.answers),
          actions: 'recordAnswer',
        },
        deadline: { guard: 'isCurrent', target: 'idle', actions: { type: 'answerClient', params: ({ context }) => timeoutAnswer(context) } },
      },
    },

    // get: the client has its answer; wait briefly for the rest, then repair the replicas that
    // answered with less than the merge.
    repairing: {
      entry: raise(({ context }) => ({ type: 'repairWaitOver' as const, reqId: context.id }), { id: 'repairWait', delay: ({ context }) => context.readRepairWaitMs }),
      always: { guard: ({ context }) => Object.keys(context.answers).length >= context.targets.length, target: 'idle', actions: readRepair },
      on: {
        'replica.get.ok': {
          guard: ({ context, event }) => !(event.from in context.answers),
          actions: 'recordAnswer',
        },
        repairWaitOver: { guard: 'isCurrent', target: 'idle', actions: readRepair },
        deadline: { guard: 'isCurrent', target: 'idle', actions: readRepair },
      },
    },

    // The request is over (the client has its answer, read repair is sent): the coordinator waits in
    // its slot for the node's next request, so a request costs no spawn (xstate copies the node's
    // children map on each). Its timers are cancelled; answers for the old request that still come
    // are dropped by the node (the slot's request id), and ignored here anyway.
    idle: {
      entry: [cancel('deadline'), cancel('repairWait'), { type: 'tellNode', params: ({ context }) => ({ type: 'coordinator.done' as const, id: context.id }) }],
      on: {
        'coordinator.start': { target: 'checking', actions: assign(({ event }) => freshContext(event.input)) },
      },
    },
  },
});

function unavailableMessage(ctx: CoordinatorContext): string {
  const up = targetNodes(ctx);
  const strict = ctx.sloppy ? '' : ' (sloppy: false, so fallbacks do not count)';
  const pn = ctx.primariesNeeded > 0 ? ` and ${ctx.primariesNeeded} of them must be primaries` : '';
  return `${needed(ctx)} replicas must answer${pn}, but of the preference list (${ctx.preferenceList.join(', ')}) only ${up.join(', ') || 'none'} can${strict}`;
}

function timeoutAnswer(ctx: CoordinatorContext): AnswerParams {
  const got = ctx.op === 'put' ? ctx.acked.length : Object.keys(ctx.answers).length;
  return answerError(ctx, {
    code: 'TIMEOUT',
    message: `only ${got} of the ${needed(ctx)} replicas needed answered within ${ctx.timeoutMs} ms; the ${ctx.op} may or may not have taken effect`,
  });
}

/** What a get answers: the live siblings (tombstones left out) and the context of everything seen. */
export function readResult(state: DvvSet): { found: boolean; values: Uint8Array[]; context: Uint8Array } {
  const live = values(state).filter((v): v is Uint8Array => v !== null);
  return { found: !isDeleted(state) && live.length > 0, values: live, context: encode(join(state)) };
}

/** Replicas whose answer lacks part of the merged state: they get the merge (read repair). */
export function repairTargets(answers: Record<string, DvvSet | null>, merged: DvvSet): string[] {
  if (merged.length === 0) return [];
  return Object.keys(answers)
    .sort()
    .filter((node) => {
      const state = answers[node];
      return state === null || state === undefined || !equal(sync(state, merged), state);
    });
}
