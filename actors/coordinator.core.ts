/**
 * Coordinator core: the per-request state machine of a coordinator as plain data and functions, in
 * the manner of riak_kv's put_fsm over put_core or etcd raft's Step (Dynamo §4.5 requests, §4.6
 * sloppy quorum and hinted handoff, §5 read repair). `startRequest(input, now)` and
 * `step(request, event, now)` return the request's next state and its effects as data; the node's one
 * long-lived coordinator actor (actors/coordinator.machine.ts) holds every request in flight, steps
 * them a turn's batch at a time, and the runtime performs the effects. No xstate, no time read, no
 * I/O: time enters as `now`, timers are effects with an absolute due time.
 *
 * A put: the local replica makes the new dot (replica.coordinate); as soon as it is made, in the same
 * turn, before its commit, the new state goes to the other targets (replica.coordinate.made), so the
 * local commit and the remote ones run together; W acks, the local one included, answer the client.
 * A get: replica.get to every target; R answers make the merge the client gets; answers a little
 * later are still awaited, then every replica that answered with less gets read repair.
 *
 * Messages: takes replica.coordinate.made, replica.coordinate.ok, replica.put.ok, replica.get.ok,
 * replica.error and the request's own deadline, fallbackWait and repairWaitOver wake-ups (each
 * carrying the request id). Effects: send / sendAll (replica.coordinate, replica.put, replica.get, read repair),
 * answerClient (exactly once), setTimer, and done (the request is over and may be dropped).
 *
 * Invariants: the client is answered exactly once, with
 * the result on quorum, UNAVAILABLE {needed, alive} before any replica is asked when too few are
 * believed alive, the error a replica reported, or TIMEOUT (indeterminate: the write may have been
 * stored) at the deadline. Each replica counts once however often its answer is duplicated. An event
 * a state does not take (see `coordinatorStates`) leaves the request as it is and has no effect, so
 * no message can crash the holder. A finished request takes nothing.
 */
import { type DvvSet, type Sibling, type VersionVector, equal, isDeleted, join, sync, values } from '../src/core/dvv.js';
import type { Quorum } from '../src/core/quorum.js';
import type { Target } from '../src/core/targets.js';
import { encode } from '../src/protocol/codec.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { CoreEvent } from './coordinator.events.js';
import type { SendParams } from './replica.machine.js';

export type { CoreEvent } from './coordinator.events.js';

export interface ClientAddress {
  /** Where the answer goes (a NATS inbox). */
  replyTo: string;
  /** The client's name and its request id, echoed in the answer's envelope. */
  from: string;
  reqId: string;
  /** The request kind; the answer is `${kind}.ok` or `error`. */
  kind: string;
}

/** One request, as routing decided it (actors/node-routes.ts clientRoute) plus its id and timing. */
export interface CoordinatorInput {
  op: 'put' | 'get';
  /** This request's id on this node: the reqId of every replica message it sends. */
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
  /**
   * The rest of the extended preference list believed up, best first (Dynamo §4.6). A target that has
   * not answered within `fallbackWaitMs` is replaced by the next of them for this request: the
   * coordinator does not wait for the failure detector to notice a cut or a paused node.
   */
  spares: string[];
  /** How long a target may take to answer before the next spare is asked in its place (0: never). */
  fallbackWaitMs: number;
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
  /** The state the local replica made (put), or the merge of all answers (get). */
  state: DvvSet;
  /** get: each answering replica's state (null: it has nothing). */
  answers: Record<string, DvvSet | null>;
  /** Targets a spare was asked in place of (each is replaced once; its own late answer still counts). */
  replaced: string[];
}

export interface AnswerParams {
  replyTo: string;
  to: string;
  reqId: string;
  kind: string;
  body: unknown;
}

/** The states a request passes through; `done` is final. */
export type CoordinatorStateName = 'checking' | 'coordinating' | 'replicating' | 'collecting' | 'repairing' | 'done';

export interface StateDecl {
  /** What the state is for, in one sentence (shown by `ringkv diagram coordinator`). */
  description: string;
  /** Each event it takes and the states it may go to (several: the choice depends on a guard). */
  on: Partial<Record<CoreEvent['type'], CoordinatorStateName[]>>;
  /** Transitions taken on entry without an event (the quorum is already there). */
  always?: CoordinatorStateName[];
  final?: boolean;
}

/**
 * The states declared as data: which event each takes and where it goes. `step` refuses any event
 * a state does not declare, and test/unit/coordinator-core.test.ts checks every transition `step`
 * makes is one declared here, so the diagram generated from this table is the code's.
 */
export const coordinatorStates: Record<CoordinatorStateName, StateDecl> = {
  checking: {
    description: 'A new request: UNAVAILABLE when too few targets are believed alive, else a put coordinates and a get collects.',
    on: {},
    always: ['done', 'coordinating', 'collecting'],
  },
  coordinating: {
    description: 'put: the local replica makes the new dot (its commit runs on while the others are asked).',
    on: { 'replica.coordinate.made': ['replicating'], 'replica.coordinate.ok': ['replicating', 'done'], 'replica.error': ['done'], deadline: ['done'] },
  },
  replicating: {
    description: 'put: the other targets sync the new state while the local commit runs; W acks (local one included) answer the client.',
    on: { 'replica.coordinate.ok': ['replicating', 'done'], 'replica.put.ok': ['replicating', 'done'], 'replica.error': ['done'], fallbackWait: ['replicating'], deadline: ['done'] },
    always: ['done'],
  },
  collecting: {
    description: 'get: every target is asked; R answers (pr of them primaries) answer the client with the merge.',
    on: { 'replica.get.ok': ['collecting', 'repairing', 'done'], fallbackWait: ['collecting'], deadline: ['done'] },
    always: ['repairing'],
  },
  repairing: {
    description: 'get: the client has its answer; late answers are awaited briefly, then stale replicas get read repair.',
    on: { 'replica.get.ok': ['repairing', 'done'], repairWaitOver: ['done'], deadline: ['done'] },
    always: ['done'],
  },
  done: { description: 'The client is answered and read repair sent: the request can be dropped.', on: {}, final: true },
};

export const coordinatorInitialState: CoordinatorStateName = 'checking';

/** A request in flight: its state's name and the same context the xstate coordinator keeps. */
export interface CoordinatorRequest {
  state: CoordinatorStateName;
  context: CoordinatorContext;
}

/** Effects as data: what the runtime is to do after a step, in order. */
export type CoordinatorEffect =
  | { type: 'send'; params: SendParams }
  | { type: 'sendAll'; params: SendParams[] }
  | { type: 'answerClient'; params: AnswerParams }
  /** Wake this request with `event` at time `at` (ms on the runtime's Clock); one per name. */
  | { type: 'setTimer'; name: 'deadline' | 'repairWait' | 'fallbackWait'; at: number; event: CoreEvent }
  /** The request is over: drop its timers and the request itself. */
  | { type: 'done'; id: string };

export interface StepResult {
  request: CoordinatorRequest;
  effects: CoordinatorEffect[];
}

/** Starts one request at time `now`: arms its deadline and sends its first messages (or answers UNAVAILABLE). */
export function startRequest(input: CoordinatorInput, now: number): StepResult {
  const context: CoordinatorContext = { ...input, acked: [], state: [], answers: {}, replaced: [] };
  const effects: CoordinatorEffect[] = [
    { type: 'setTimer', name: 'deadline', at: now + input.timeoutMs, event: { type: 'deadline', reqId: input.id } },
  ];
  const targets = context.targets.map((t) => t.node);
  if (!hasQuorum(context, targets)) {
    effects.push({
      type: 'answerClient',
      params: errorAnswer(context, {
        code: 'UNAVAILABLE',
        message: unavailableMessage(context),
        needed: needed(context),
        alive: counted(context, targets).quorum,
      }),
    });
    return finish({ state: 'done', context }, effects);
  }
  if (context.op === 'get') return enterCollecting(context, effects, now);
  effects.push({
    type: 'send',
    params: {
      to: context.nodeId,
      kind: 'replica.coordinate',
      reqId: context.id,
      body: { p: context.partition, key: context.key, context: context.context, value: context.value, hints: context.localHints },
    },
  });
  return { request: { state: 'coordinating', context }, effects };
}

/**
 * One event for one request. An event for another request id, or one its state does not take,
 * returns the request unchanged with no effects (the wake-up of a request already over, a late
 * or duplicated answer).
 */
export function step(request: CoordinatorRequest, event: CoreEvent, now: number): StepResult {
  const { state, context } = request;
  const unchanged: StepResult = { request, effects: [] };
  if (event.reqId !== context.id) return unchanged;
  if (!(event.type in coordinatorStates[state].on)) return unchanged;
  const effects: CoordinatorEffect[] = [];
  if (event.type === 'deadline') {
    if (state === 'repairing') return enterDone(context, effects, true);
    effects.push({ type: 'answerClient', params: timeoutAnswer(context) });
    return finish({ state: 'done', context }, effects);
  }
  switch (state) {
    case 'coordinating':
      // Only this node's own replica was asked to coordinate: what claims to come from another is forged.
      if (!('from' in event) || event.from !== context.nodeId) return unchanged;
      // The dot is made: the others are sent the new state now, the local ack comes with its commit.
      if (event.type === 'replica.coordinate.made') return enterReplicating({ ...context, state: event.body.state }, effects, now);
      // A replica that commits before it says "made" (an older node's): its ack is the local one too.
      if (event.type === 'replica.coordinate.ok') return enterReplicating({ ...context, state: event.body.state, acked: [event.from] }, effects, now);
      if (event.type === 'replica.error') {
        effects.push({ type: 'answerClient', params: errorAnswer(context, event.body as ErrorBody) });
        return finish({ state: 'done', context }, effects);
      }
      return unchanged;
    case 'replicating':
      if (event.type === 'fallbackWait') return askSpares(context, effects, now, 'replicating', context.acked);
      if (event.type === 'replica.error') {
        // Only the local replica's commit can fail here (replica.put answers no error but OVERLOADED,
        // which is one missing ack): the others may hold the write, so the outcome is unknown.
        if (event.from !== context.nodeId) return unchanged;
        effects.push({ type: 'answerClient', params: errorAnswer(context, event.body as ErrorBody) });
        return finish({ state: 'done', context }, effects);
      }
      if (event.type !== 'replica.put.ok' && event.type !== 'replica.coordinate.ok') return unchanged;
      // The local ack is the commit of the dot it made; a replica.coordinate.ok from elsewhere is forged.
      if (event.type === 'replica.coordinate.ok' && event.from !== context.nodeId) return unchanged;
      if (context.acked.includes(event.from)) return unchanged;
      return checkReplicated({ ...context, acked: [...context.acked, event.from] }, effects);
    case 'collecting':
      if (event.type === 'fallbackWait') return askSpares(context, effects, now, 'collecting', Object.keys(context.answers));
      if (event.type !== 'replica.get.ok' || event.from in context.answers) return unchanged;
      return checkCollected(recordAnswer(context, event.from, event.body.state), effects, now);
    case 'repairing':
      if (event.type === 'repairWaitOver') return enterDone(context, effects, true);
      if (event.type !== 'replica.get.ok' || event.from in context.answers) return unchanged;
      return checkAllAnswered(recordAnswer(context, event.from, event.body.state), effects);
    default:
      return unchanged;
  }
}

function enterReplicating(context: CoordinatorContext, effects: CoordinatorEffect[], now: number): StepResult {
  const others = context.targets.filter((t) => t.node !== context.nodeId);
  effects.push({ type: 'sendAll', params: others.map((t) => replicaPut(context, t)) });
  armFallbackWait(context, effects, now);
  return checkReplicated(context, effects);
}

function replicaPut(context: CoordinatorContext, t: Target): SendParams {
  return {
    to: t.node,
    kind: 'replica.put',
    reqId: context.id,
    body: { p: context.partition, key: context.key, state: context.state, ...(t.hintFor ? { hint: t.hintFor } : {}) },
  };
}

function replicaGet(context: CoordinatorContext, t: Target): SendParams {
  return { to: t.node, kind: 'replica.get', reqId: context.id, body: { p: context.partition, key: context.key } };
}

/** Wakes the request after `fallbackWaitMs` if a spare could still stand in for a silent target. */
function armFallbackWait(context: CoordinatorContext, effects: CoordinatorEffect[], now: number): void {
  if (context.fallbackWaitMs <= 0 || context.spares.length === 0 || !context.sloppy) return;
  effects.push({ type: 'setTimer', name: 'fallbackWait', at: now + context.fallbackWaitMs, event: { type: 'fallbackWait', reqId: context.id } });
}

/**
 * Dynamo §4.6 without waiting for the failure detector: every remote target that has not answered
 * within the wait (and was not replaced already) gets the next spare of the extended preference list
 * in its place, asked the same thing. A put's spare keeps the write with a hint for the primary the
 * silent target is or stands in for, so hinted handoff takes it home once the primary is back. The
 * silent target's own late answer still counts. The local replica is never replaced: its answer
 * waits only on this node's disk. Only sloppy requests use spares: fallbacks never count otherwise.
 */
function askSpares(context: CoordinatorContext, effects: CoordinatorEffect[], now: number, state: 'replicating' | 'collecting', answered: readonly string[]): StepResult {
  const silent = context.targets.filter((t) => t.node !== context.nodeId && !answered.includes(t.node) && !context.replaced.includes(t.node));
  const spares = [...context.spares];
  const replaced = [...context.replaced];
  const added: Target[] = [];
  for (const t of silent) {
    const spare = spares.shift();
    if (spare === undefined) break;
    replaced.push(t.node);
    added.push({ node: spare, hintFor: t.hintFor ?? t.node });
  }
  if (added.length === 0) return { request: { state, context }, effects };
  const next: CoordinatorContext = { ...context, spares, replaced, targets: [...context.targets, ...added] };
  effects.push({ type: 'sendAll', params: added.map((t) => (state === 'replicating' ? replicaPut(next, t) : replicaGet(next, t))) });
  armFallbackWait(next, effects, now);
  return { request: { state, context: next }, effects };
}

function checkReplicated(context: CoordinatorContext, effects: CoordinatorEffect[]): StepResult {
  if (!hasQuorum(context, context.acked)) return { request: { state: 'replicating', context }, effects };
  effects.push({ type: 'answerClient', params: okAnswer(context, { context: encode(join(context.state)) }) });
  return finish({ state: 'done', context }, effects);
}

function enterCollecting(context: CoordinatorContext, effects: CoordinatorEffect[], now: number): StepResult {
  effects.push({ type: 'sendAll', params: context.targets.map((t) => replicaGet(context, t)) });
  armFallbackWait(context, effects, now);
  return checkCollected(context, effects, now);
}

function checkCollected(context: CoordinatorContext, effects: CoordinatorEffect[], now: number): StepResult {
  if (!hasQuorum(context, Object.keys(context.answers))) return { request: { state: 'collecting', context }, effects };
  effects.push({ type: 'answerClient', params: okAnswer(context, readResult(context.state)) });
  // `now` is the time stamped on the event that made the quorum (the core reads no clock).
  effects.push({ type: 'setTimer', name: 'repairWait', at: now + context.readRepairWaitMs, event: { type: 'repairWaitOver', reqId: context.id } });
  return checkAllAnswered(context, effects);
}

function checkAllAnswered(context: CoordinatorContext, effects: CoordinatorEffect[]): StepResult {
  if (Object.keys(context.answers).length >= context.targets.length) return enterDone(context, effects, true);
  return { request: { state: 'repairing', context }, effects };
}

/** The get is over: read repair to every replica whose answer lacked part of the merge. */
function enterDone(context: CoordinatorContext, effects: CoordinatorEffect[], repair: boolean): StepResult {
  if (repair) {
    effects.push({
      type: 'sendAll',
      // A fallback is repaired with its hint, so what it is sent goes home with hinted handoff
      // instead of staying on a node that does not own the key.
      params: repairTargets(context.answers, context.state).map((to) => replicaPut(context, context.targets.find((t) => t.node === to) ?? { node: to })),
    });
  }
  return finish({ state: 'done', context }, effects);
}

function finish(request: CoordinatorRequest, effects: CoordinatorEffect[]): StepResult {
  effects.push({ type: 'done', id: request.context.id });
  return { request, effects };
}

function recordAnswer(context: CoordinatorContext, from: string, state: DvvSet | null): CoordinatorContext {
  return {
    ...context,
    answers: { ...context.answers, [from]: state },
    state: state === null ? context.state : sync(context.state, state),
  };
}

function needed(ctx: CoordinatorContext): number {
  return ctx.op === 'put' ? ctx.quorum.w : ctx.quorum.r;
}

/** Of these answering nodes, how many count toward W or R, and how many are primaries. */
function counted(ctx: CoordinatorContext, nodes: readonly string[]): { quorum: number; primaries: number } {
  const primaries = nodes.filter((node) => ctx.preferenceList.includes(node)).length;
  return { quorum: ctx.sloppy ? nodes.length : primaries, primaries };
}

/** True when these answers (acks or reads) make the quorum the client asked for. */
export function hasQuorum(ctx: CoordinatorContext, nodes: readonly string[]): boolean {
  const c = counted(ctx, nodes);
  return c.quorum >= needed(ctx) && c.primaries >= ctx.primariesNeeded;
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

function okAnswer(ctx: CoordinatorContext, body: unknown): AnswerParams {
  return { replyTo: ctx.client.replyTo, to: ctx.client.from, reqId: ctx.client.reqId, kind: `${ctx.client.kind}.ok`, body };
}

function errorAnswer(ctx: CoordinatorContext, body: ErrorBody): AnswerParams {
  return { replyTo: ctx.client.replyTo, to: ctx.client.from, reqId: ctx.client.reqId, kind: 'error', body };
}

function unavailableMessage(ctx: CoordinatorContext): string {
  const up = ctx.targets.map((t) => t.node);
  const strict = ctx.sloppy ? '' : ' (sloppy: false, so fallbacks do not count)';
  const pn = ctx.primariesNeeded > 0 ? ` and ${ctx.primariesNeeded} of them must be primaries` : '';
  return `${needed(ctx)} replicas must answer${pn}, but of the preference list (${ctx.preferenceList.join(', ')}) only ${up.join(', ') || 'none'} can${strict}`;
}

function timeoutAnswer(ctx: CoordinatorContext): AnswerParams {
  const got = ctx.op === 'put' ? ctx.acked.length : Object.keys(ctx.answers).length;
  return errorAnswer(ctx, {
    code: 'TIMEOUT',
    message: `only ${got} of the ${needed(ctx)} replicas needed answered within ${ctx.timeoutMs} ms; the ${ctx.op} may or may not have taken effect`,
  });
}
