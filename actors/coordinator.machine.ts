/**
 * Coordinator: the node's one long-lived coordinator actor (Dynamo §4.5 requests, §4.6 sloppy
 * quorum, §5 read repair). It holds every request this node coordinates and takes one event per
 * event-loop turn, coordinator.batch: the turn's client requests (api.put, api.del, api.get) and the
 * replica answers and wake-ups for requests in flight. Each request is a pure core
 * (actors/coordinator.core.ts: startRequest / step, its states declared as data); the actor routes
 * each client request (actors/node-routes.ts clientRoute: coordinate, forward once, or an error),
 * gives the ones it coordinates an id unique on this node (`coordinator-<seq>`, the reqId of their
 * replica messages), steps the others, and hands the runtime the effects of the whole batch at once
 * (perform). No request costs an xstate transition of its own: that cost was most of a put's CPU
 * when each request was an actor (the README's request-cost bench).
 *
 * Takes: coordinator.batch. Sends (through perform, in order): replica.coordinate / replica.put /
 * replica.get, one answer per client request, forwards, timers to set (deadline, repairWait) and
 * requests that are done (their timers go), late answers to count, and with `traced` what each
 * request did (for `ringkv trace`).
 *
 * Invariants: every client request in a batch gets exactly one answer, from here, from the core or
 * from the node it is forwarded to; at most coordinatorsMax requests are in flight, beyond that
 * OVERLOADED at once; one item never fails its neighbours (an answer for a request not in flight is
 * counted late and dropped; an event a request's state does not take changes nothing).
 */
import { assign, createMachine, setup } from 'xstate';
import {
  type AnswerParams,
  type CoordinatorEffect,
  type CoordinatorInput,
  type CoordinatorRequest,
  type CoordinatorStateName,
  type CoreEvent,
  coordinatorInitialState,
  coordinatorStates,
  startRequest,
  step,
} from './coordinator.core.js';
import { type CoordinatorEvent, type CoordinatorItem, wakeUpKinds } from './coordinator.events.js';
import type { ClientReadEvent, ClientWriteEvent } from './node.events.js';
import { type RouteView, clientRoute } from './node-routes.js';

export type { AnswerParams, ClientAddress, CoordinatorInput } from './coordinator.core.js';

export interface CoordinatorActorInput {
  nodeId: string;
  coordinatorsMax: number;
  requestTimeoutMs: number;
  readRepairWaitMs: number;
  fallbackWaitMs: number;
}

/** What `ringkv trace` shows of one step of one request: the event it took, where it went, what it did. */
export interface CoordinatorStepTrace {
  type: 'trace';
  id: string;
  client: { from: string; reqId: string };
  /** The request's input on its first step (the start), else undefined. */
  input?: CoordinatorInput;
  event: { type: string; from?: string; code?: string };
  from: CoordinatorStateName | 'new';
  to: CoordinatorStateName;
  effects: CoordinatorEffect[];
}

/** What the runtime performs after a batch, in order: the core's effects plus routing's own. */
export type CoordinatorOutput =
  | CoordinatorEffect
  | { type: 'forward'; to: string; req: ClientWriteEvent | ClientReadEvent }
  /** Replica answers for requests no longer in flight (late or duplicated beyond the end): counted. */
  | { type: 'late'; count: number }
  /** An item whose handling threw (a bug): logged by the runtime; its client was answered INTERNAL. */
  | { type: 'failed'; item: string; reqId: string; error: string }
  | CoordinatorStepTrace
  | CoordinatorRouteTrace;

/** What `ringkv trace` shows of a client request's arrival: which node took it and what routing made of it. */
export interface CoordinatorRouteTrace {
  type: 'routed';
  req: { type: string; from: string; reqId: string; forwarded: boolean };
  /** coordinate: this node runs it (as request `id`); forward: passed on to `to`; error: answered with `code`. */
  route: 'coordinate' | 'forward' | 'error';
  id?: string;
  to?: string;
  code?: string;
}

export interface CoordinatorActorContext extends CoordinatorActorInput {
  /**
   * Every request in flight, by id. Mutated in place by the batch's one assign: copying up to
   * coordinatorsMax requests every turn would cost what running them as a core saves. The actor is
   * the table's only owner and nothing else holds it.
   */
  requests: Map<string, CoordinatorRequest>;
  seq: number;
  /** The effects of the last batch, for perform (rebuilt by every batch). */
  outbox: CoordinatorOutput[];
}

/** Steps one turn's batch: every item alone, in order; returns what the runtime is to perform. */
export function runBatch(ctx: CoordinatorActorContext, batch: CoordinatorEvent): { seq: number; outbox: CoordinatorOutput[] } {
  const out: CoordinatorOutput[] = [];
  let seq = ctx.seq;
  let late = 0;
  for (const item of batch.items) {
    // One item never fails the batch: what throws (a bug, or input no check foresaw) is reported,
    // its client answered INTERNAL, its request dropped, and the next item runs as if alone.
    const mark = out.length;
    try {
      if (isClientRequest(item)) {
        const started = startClientRequest(ctx, batch.view, item, seq + 1, batch.now, out, batch.traced);
        if (started) seq++;
        continue;
      }
      const request = ctx.requests.get(item.reqId);
      if (!request) {
        if (!wakeUpKinds.has(item.type)) late++;
        continue;
      }
      const { request: next, effects } = step(request, item as CoreEvent, batch.now);
      if (next.state === 'done') ctx.requests.delete(item.reqId);
      else ctx.requests.set(item.reqId, next);
      out.push(...effects);
      // A step that changed nothing (a duplicate, an event its state does not take) is not traced.
      if (batch.traced && (next !== request || effects.length > 0)) out.push(traceOf(next, item, request.state, effects));
    } catch (err) {
      out.length = mark;
      out.push(...failedItem(ctx, item, err));
    }
  }
  if (late > 0) out.push({ type: 'late', count: late });
  return { seq, outbox: out };
}

/** What becomes of an item whose handling threw: reported, its client (if any) answered once, its request over. */
function failedItem(ctx: CoordinatorActorContext, item: CoordinatorItem, err: unknown): CoordinatorOutput[] {
  const failed: CoordinatorOutput = { type: 'failed', item: item.type, reqId: item.reqId, error: String(err) };
  const body = { code: 'INTERNAL' as const, message: `coordinator failed on ${item.type}: ${String(err)}` };
  if (isClientRequest(item)) return [failed, { type: 'answerClient', params: errorAnswer(item, body) }];
  const request = ctx.requests.get(item.reqId);
  if (!request) return [failed];
  ctx.requests.delete(item.reqId);
  return [failed, { type: 'answerClient', params: errorAnswer(request.context.client, body) }, { type: 'done', id: item.reqId }];
}

function isClientRequest(item: CoordinatorItem): item is ClientWriteEvent | ClientReadEvent {
  return item.type === 'api.put' || item.type === 'api.del' || item.type === 'api.get';
}

/** Routes one client request and starts it when this node coordinates it; true when it took an id. */
function startClientRequest(
  ctx: CoordinatorActorContext,
  view: RouteView,
  req: ClientWriteEvent | ClientReadEvent,
  seq: number,
  now: number,
  out: CoordinatorOutput[],
  traced: boolean,
): boolean {
  const route = clientRoute(view, req);
  const routed = (r: Omit<CoordinatorRouteTrace, 'type' | 'req'>) => {
    if (traced) out.push({ type: 'routed', req: { type: req.type, from: req.from, reqId: req.reqId, forwarded: req.forwarded }, ...r });
  };
  if ('error' in route) {
    routed({ route: 'error', code: route.error.code });
    out.push({ type: 'answerClient', params: errorAnswer(req, route.error) });
    return false;
  }
  if ('forward' in route) {
    routed({ route: 'forward', to: route.forward });
    out.push({ type: 'forward', to: route.forward, req });
    return false;
  }
  if (ctx.requests.size >= ctx.coordinatorsMax) {
    routed({ route: 'error', code: 'OVERLOADED' });
    out.push({ type: 'answerClient', params: errorAnswer(req, { code: 'OVERLOADED', message: `node ${ctx.nodeId} is already coordinating ${ctx.coordinatorsMax} requests` }) });
    return false;
  }
  routed({ route: 'coordinate', id: `coordinator-${seq}` });
  const input: CoordinatorInput = {
    ...route.coordinate,
    id: `coordinator-${seq}`,
    nodeId: ctx.nodeId,
    timeoutMs: route.coordinate.timeoutMs ?? ctx.requestTimeoutMs,
    readRepairWaitMs: ctx.readRepairWaitMs,
    fallbackWaitMs: ctx.fallbackWaitMs,
  };
  const { request, effects } = startRequest(input, now);
  if (request.state !== 'done') ctx.requests.set(input.id, request);
  out.push(...effects);
  if (traced) out.push({ ...traceOf(request, { type: 'start' }, 'new', effects), input });
  return true;
}

function traceOf(request: CoordinatorRequest, event: { type: string; from?: unknown; body?: unknown }, from: CoordinatorStateName | 'new', effects: CoordinatorEffect[]): CoordinatorStepTrace {
  const { id, client } = request.context;
  const shown: CoordinatorStepTrace['event'] = { type: event.type };
  if (typeof event.from === 'string') shown.from = event.from;
  const code = (event.body as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') shown.code = code;
  return {
    type: 'trace',
    id,
    client: { from: client.from, reqId: client.reqId },
    event: shown,
    from,
    to: request.state,
    effects,
  };
}

function errorAnswer(req: { from: string; reqId: string; replyTo: string }, body: AnswerParams['body']): AnswerParams {
  return { replyTo: req.replyTo, to: req.from, reqId: req.reqId, kind: 'error', body };
}

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorActorContext,
    events: {} as CoordinatorEvent,
    input: {} as CoordinatorActorInput,
  },
  actions: {
    /** I/O, provided by the runtime: performs a batch's effects, in order. */
    perform: (_, _params: CoordinatorOutput[]) => {},
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => ({ ...input, requests: new Map(), seq: 0, outbox: [] }),
  initial: 'serving',
  states: {
    // The requests' own states are the core's (coordinatorStates): this actor only holds them.
    serving: {
      on: {
        'coordinator.batch': {
          actions: [assign(({ context, event }) => runBatch(context, event)), { type: 'perform', params: ({ context }) => context.outbox }],
        },
      },
    },
  },
});

/**
 * What `ringkv diagram coordinator` draws (src/diagram/machines.ts takes it in place of the actor's
 * one-state machine): the states of one request, built from the core's declared table
 * (coordinatorStates), so the diagram is the code's. Where an event may lead to several states, an
 * arrow is drawn to each: which one is taken depends on the answers counted so far.
 */
export const diagramMachine = createMachine({
  id: 'coordinator',
  initial: coordinatorInitialState,
  states: Object.fromEntries(
    Object.entries(coordinatorStates).map(([name, decl]) => [
      name,
      {
        description: decl.description,
        ...(decl.final ? { type: 'final' as const } : {}),
        on: Object.fromEntries(Object.entries(decl.on).map(([event, targets]) => [event, (targets ?? []).map((target) => ({ target }))])),
        ...(decl.always ? { always: decl.always.map((target) => ({ target })) } : {}),
      },
    ]),
  ),
});
