/**
 * The inspection tap: what a node's actors are doing, for people watching (issue 9). It answers
 * snapshots (every live actor: id, machine, state, a context summary, children) and runs follow
 * sessions that turn xstate's inspection stream into records (spawns, events, transitions, actions,
 * ends), filtered by actor and by client request, batched, rate-limited and sampled.
 *
 * Cost when nobody watches: none. The tap subscribes to the actor system's inspection stream
 * (`system.inspect`, the observer set that createActor's `inspect` option fills) only while a follow
 * session is open, and unsubscribes when the last one ends; with no observer xstate's only work is
 * its own `inspectionObservers.size` check. A permanent `inspect` option with a flag check inside
 * would cost more: xstate would build and spread every inspection event to call it.
 *
 * Following one request: the node's coordinator actor runs every request as a pure core, not as an
 * actor of its own, so xstate's stream does not show them; while a session is open its batches say
 * what routing and each request's steps did (CoordinatorRouteTrace, CoordinatorStepTrace), and the
 * tap turns those into the records of an actor named by the request's id (coordinator-<seq>), as if
 * it were one. The request is followed whole from its start to done; events anywhere else follow
 * it when they carry its reqId (a node forwarding it) or come from its coordinator (from = its node,
 * reqId = its id: the replica requests it sends and what they cause). On its start the tap tells
 * the session's peers about it before the coordinator sends anything, so that the replicas on
 * other nodes recognise its requests: on one NATS connection that notice arrives first.
 *
 * Actions carry no event in xstate's stream, so they are attributed to the event the actor is
 * processing: each actor's events wait in a short queue (pendingEventsPerActorMax) from delivery
 * until the snapshot that ends their processing.
 *
 * Nothing here throws into an actor: an error in the observer is counted and reported, never
 * rethrown (xstate calls observers without a guard, inside the actor's own processing).
 */
import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';
import type { CoordinatorRouteTrace, CoordinatorStepTrace } from '../../actors/coordinator.machine.js';
import type { Clock } from '../ports/clock.js';
import {
  type ActorInfo,
  type CheckResult,
  correlationsMax,
  type EndMessage,
  type EndReason,
  flushIntervalMs,
  type FollowRequest,
  inspectSessionsMax,
  type InspectRecord,
  pendingEventsPerActorMax,
  recordsPerBatchMax,
  recordsPerSecondMax,
  type RecordsMessage,
  type SnapshotAnswer,
  snapshotActorsMax,
  type Summary,
} from './inspect-protocol.js';

export interface TapSink {
  records(msg: RecordsMessage): void;
  end(msg: EndMessage): void;
}

export interface TapDeps {
  nodeId: string;
  clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'>;
  /** Tells a peer that `reqId` from `origin` (a coordinator) belongs to `session`. */
  correlate?: (peer: string, session: string, origin: string, reqId: string) => void;
  /** An error inside the observer: counted, reported here, never rethrown into an actor. */
  onError?: (err: unknown) => void;
}

export interface TapStats {
  sessionsOpened: number;
  records: number;
  dropped: number;
  observerErrors: number;
}

/** What the tap reads of an actor: public members of xstate's Actor. */
interface ActorLike {
  id: string;
  src: unknown;
  options?: { input?: unknown };
  getSnapshot(): SnapshotLike | undefined;
}

interface SnapshotLike {
  value?: unknown;
  status?: string;
  context?: unknown;
  children?: Record<string, ActorLike | undefined>;
}

interface TransitionLike {
  eventType?: string;
  source?: { path?: string[] };
}

interface EventLike {
  type: string;
  [field: string]: unknown;
}

/** An actor's snapshot, or undefined while it initialises (xstate's development build throws then). */
function snapshotOf(ref: ActorLike): SnapshotLike | undefined {
  try {
    return ref.getSnapshot();
  } catch {
    return undefined;
  }
}

export function machineOf(ref: { src: unknown }): string {
  if (typeof ref.src === 'string') return ref.src;
  const id = (ref.src as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : 'actor';
}

/** A state value as text: `serving`, `busy.left`, `busy.(left.a, right.c)`. */
export function stateText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value !== 'object') return String(value);
  const entries = Object.entries(value as Record<string, unknown>);
  const parts = entries.map(([k, v]) => {
    const inner = stateText(v);
    return inner === '' ? k : `${k}.${inner}`;
  });
  return parts.length === 1 ? parts[0]! : `(${parts.join(', ')})`;
}

/** The coordinator actor's one event: the records of the requests it ran stand for it. */
const coordinatorBatchEvent = 'coordinator.batch';

const summaryStringMax = 80;
const summaryItemsMax = 8;
const summaryFieldsMax = 24;
/** Fields that hold user data or noise: never shown (outbox: the coordinator's last batch, performed already). */
const hiddenFields = new Set(['key', 'value', 'values', 'bytes', 'replyTo', 'limits', 'outbox']);
/** Requests in flight a coordinator's snapshot lists (the count says how many there are). */
const requestsShownMax = 16;

function isBytes(x: unknown): x is ArrayBufferView {
  return ArrayBuffer.isView(x);
}

/** A bounded, byte-free summary of any value (depth-limited; strings cut; byte arrays as sizes). */
export function summarize(value: unknown, depth = 3): Summary {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'string') return value.length > summaryStringMax ? `${value.slice(0, summaryStringMax)}…` : value;
  if (typeof value === 'bigint') return String(value);
  if (isBytes(value)) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) {
    if (depth <= 0) return `<${value.length} items>`;
    const head = value.slice(0, summaryItemsMax).map((v) => summarize(v, depth - 1));
    return value.length > summaryItemsMax ? [...head, `…+${value.length - summaryItemsMax}`] : head;
  }
  if (typeof value === 'object') {
    if (depth <= 0) return '<object>';
    const out: Record<string, Summary> = {};
    let n = 0;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (hiddenFields.has(k) || typeof v === 'function' || v === undefined) continue;
      if (++n > summaryFieldsMax) break;
      out[k] = summarizeField(k, v, depth - 1);
    }
    return out;
  }
  return null;
}

/** Fields whose generic summary would say too little or too much. */
function summarizeField(name: string, v: unknown, depth: number): Summary {
  switch (name) {
    case 'state':
      // A DVV set: its size, not its values.
      return Array.isArray(v) ? `<${v.length} siblings>` : summarize(v, depth);
    case 'answers':
    case 'down':
      // Maps keyed by node id: which nodes, not what they said.
      return v && typeof v === 'object' ? Object.keys(v).sort() : summarize(v, depth);
    case 'ring': {
      const ring = v as { q?: unknown } | null;
      return ring && typeof ring === 'object' && typeof ring.q === 'number' ? { partitions: ring.q } : summarize(v, depth);
    }
    case 'requests': {
      // The coordinator's requests in flight (a Map by id): each one's state and who has answered.
      if (!(v instanceof Map)) return summarize(v, depth);
      const shown: Summary[] = [];
      for (const r of (v as Map<string, { state: string; context: Record<string, unknown> }>).values()) {
        if (shown.length >= requestsShownMax) break;
        const c = r.context;
        const answered = c.op === 'put' ? (c.acked as string[]) : Object.keys((c.answers as object) ?? {}).sort();
        shown.push({ id: c.id as string, op: c.op as string, state: r.state, partition: c.partition as number, client: summarizeField('client', c.client, 1), targets: ((c.targets as { node: string }[]) ?? []).map((t) => t.node), answered });
      }
      return { inFlight: v.size, shown };
    }
    case 'client': {
      const c = v as Record<string, unknown> | null;
      return c && typeof c === 'object' ? summarize({ from: c.from, reqId: c.reqId, kind: c.kind }, 1) : summarize(v, depth);
    }
    default:
      return summarize(v, Math.max(depth, 1));
  }
}

/** An event without its payload: type, addressing, partition and outcome. */
export function summarizeEvent(e: EventLike): Summary {
  const out: Record<string, Summary> = { type: e.type };
  for (const f of ['from', 'reqId', 'actorId', 'nodeId', 'answer', 'forwarded'] as const) {
    const v = e[f];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[f] = v;
  }
  const body = e.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object') {
    if (typeof body.p === 'number') out.p = body.p;
    if (typeof body.code === 'string') out.code = body.code;
  }
  const outcome = e.outcome as Record<string, unknown> | undefined;
  if (outcome && typeof outcome === 'object') {
    out.ok = outcome.ok === true;
    if (typeof outcome.code === 'string') out.code = outcome.code;
    if (typeof outcome.siblings === 'number') out.siblings = outcome.siblings;
  }
  return out;
}

/** Action parameters without payloads: where it goes, what kind, and any error code. */
export function summarizeParams(p: unknown, depth = 2): Summary | undefined {
  if (p === null || p === undefined || typeof p !== 'object') return undefined;
  if (Array.isArray(p)) return depth <= 0 ? `<${p.length} items>` : p.slice(0, 16).map((x) => summarizeParams(x, depth - 1) ?? null);
  const o = p as Record<string, unknown>;
  const out: Record<string, Summary> = {};
  for (const f of ['to', 'kind', 'reqId', 'from', 'p', 'answer'] as const) {
    const v = o[f];
    if (typeof v === 'string' || typeof v === 'number') out[f] = v;
  }
  const body = o.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object') {
    if (typeof body.code === 'string') out.code = body.code;
    // Hinted handoff: a fallback's write carries the primary it keeps a hint for.
    if (typeof body.hint === 'string') out.hint = body.hint;
    if (Array.isArray(body.hints) && body.hints.length > 0) out.hints = body.hints.filter((h): h is string => typeof h === 'string').slice(0, 16);
  }
  const write = o.write as Record<string, unknown> | undefined;
  if (write && typeof write === 'object' && typeof write.kind === 'string') out.write = write.kind;
  return out;
}

export interface FollowOptions extends FollowRequest {
  durationMs: number;
  sampleEvery: number;
}

interface Pending {
  event: object;
  matched: boolean;
}

class Session {
  seq = 0;
  sent = 0;
  dropped = 0;
  private buffer: InspectRecord[] = [];
  private flushTimer: unknown;
  private expiryTimer: unknown;
  private tokens = recordsPerSecondMax;
  private refilledAt: number;
  private sampleCounter = 0;
  /** Coordinators followed across nodes: reqId -> origin nodes. */
  private correlations = new Map<string, Set<string>>();
  /** Coordinators on other nodes whose requests this session follows (read by tests and `correlationsOf`). */
  correlationCount = 0;
  private whole = new WeakMap<object, boolean>();
  private pending = new WeakMap<object, Pending[]>();
  /** The state an actor left in the macrostep being processed (microsteps come one by one). */
  private lastState = new WeakMap<object, string>();
  /** Requests of this node's coordinator followed whole, by request id, until done. */
  private requestsFollowed = new Set<string>();

  constructor(
    readonly opts: FollowOptions,
    private readonly sink: TapSink,
    private readonly tap: InspectTap,
    private readonly deps: TapDeps,
  ) {
    this.refilledAt = deps.clock.now();
    this.expiryTimer = deps.clock.setTimeout(() => tap.stop(opts.session, 'expired'), opts.durationMs);
  }

  consider(ev: InspectionEvent): void {
    const ref = ev.actorRef as unknown as ActorLike;
    switch (ev.type) {
      case '@xstate.actor':
        return this.onActor(ref);
      case '@xstate.event':
        return this.onEvent(ref, ev.event as EventLike, ev.sourceRef as unknown as ActorLike | undefined);
      case '@xstate.microstep':
        return this.onMicrostep(ref, ev.event as EventLike, ev.snapshot as SnapshotLike, ev._transitions as unknown as TransitionLike[]);
      case '@xstate.action':
        return this.onAction(ref, ev.action);
      case '@xstate.snapshot':
        return this.onSnapshot(ref, ev.event, ev.snapshot as SnapshotLike);
    }
  }

  /**
   * What the node's coordinator did (its batches carry these while a session is open): a client
   * request's arrival and routing as the node's records, each request's steps as the records of an
   * actor named by the request id (coordinator-<seq>), as a per-request actor's would read.
   */
  onCoordinatorTrace(t: CoordinatorStepTrace | CoordinatorRouteTrace): void {
    const node = this.deps.nodeId;
    if (t.type === 'routed') {
      const event = { type: t.req.type, from: t.req.from, reqId: t.req.reqId, forwarded: t.req.forwarded };
      // The node took the request (routing is its part): a session following the node actor sees it.
      const { request, actors } = this.opts;
      const matched = request === undefined && actors !== undefined ? actors.includes(node) : this.eventMatches(event);
      if (!matched) return;
      const ref: ActorLike = { id: node, src: 'node', getSnapshot: () => undefined };
      this.emit(ref, { kind: 'event', event: summarizeEvent(event), state: 'serving' });
      if (t.route === 'forward') this.emit(ref, { kind: 'action', action: 'forward', params: { to: t.to ?? '' } });
      if (t.route === 'error') this.emit(ref, { kind: 'action', action: 'answerClient', params: { kind: 'error', code: t.code ?? '' } });
      return;
    }
    const ref: ActorLike = { id: t.id, src: 'coordinator', getSnapshot: () => undefined };
    if (t.from === 'new') {
      if (!this.followsRequest(t)) return;
      this.requestsFollowed.add(t.id);
      this.emit(ref, { kind: 'start', input: summarize(t.input) });
      if (t.to !== 'checking') this.emit(ref, { kind: 'transition', from: 'checking', state: t.to, event: { type: 'always' } });
    } else {
      if (!this.requestsFollowed.has(t.id)) return;
      this.emit(ref, { kind: 'event', event: t.event, state: t.from });
      if (t.to !== t.from) this.emit(ref, { kind: 'transition', from: t.from, state: t.to, event: t.event });
    }
    for (const e of t.effects) {
      if (e.type !== 'send' && e.type !== 'sendAll' && e.type !== 'answerClient') continue;
      if (e.type === 'sendAll' && e.params.length === 0) continue;
      const record: Partial<InspectRecord> = { kind: 'action', action: e.type };
      const params = summarizeParams(e.params);
      if (params !== undefined) record.params = params;
      this.emit(ref, record);
    }
    if (t.to === 'done') {
      this.requestsFollowed.delete(t.id);
      this.emit(ref, { kind: 'done', state: 'done', event: { type: 'done' } });
    }
  }

  /** Whether a request the coordinator starts is followed whole (and its replica messages on peers). */
  private followsRequest(t: CoordinatorStepTrace): boolean {
    const { request, client, actors } = this.opts;
    if (this.requestsFollowed.size >= correlationsMax) return false;
    if (request !== undefined) {
      const mine = t.client.reqId === request && (client === undefined || t.client.from === client);
      if (mine) this.adopt(t.id);
      return mine;
    }
    if (actors !== undefined) return actors.includes(t.id) || actors.includes('coordinator');
    return this.sample();
  }

  correlate(origin: string, reqId: string): void {
    let origins = this.correlations.get(reqId);
    if (origins?.has(origin)) return;
    if (this.correlationCount >= correlationsMax) return;
    if (!origins) this.correlations.set(reqId, (origins = new Set()));
    origins.add(origin);
    this.correlationCount++;
  }

  end(reason: EndReason): void {
    this.deps.clock.clearTimeout(this.expiryTimer);
    this.flush();
    this.sink.end({ session: this.opts.session, reason, sent: this.sent, dropped: this.dropped });
  }

  private isWhole(ref: ActorLike, spawnedNow = false): boolean {
    let w = this.whole.get(ref);
    if (w === undefined) {
      w = this.decideWhole(ref, spawnedNow);
      this.whole.set(ref, w);
    }
    return w;
  }

  private decideWhole(ref: ActorLike, spawnedNow: boolean): boolean {
    // A request is followed through the coordinator's trace (onCoordinatorTrace), never as an actor.
    if (this.opts.request !== undefined) return false;
    if (this.opts.actors !== undefined) return this.opts.actors.includes(ref.id);
    // Unfiltered: an actor spawned while the session runs is one unit of sampling.
    return spawnedNow && this.sample();
  }

  /** A coordinator of the followed request: its own requests belong to the session, here and on peers. */
  private adopt(coordinatorId: string): void {
    const node = this.deps.nodeId;
    this.correlate(node, coordinatorId);
    for (const peer of this.opts.peers ?? []) {
      if (peer !== node) this.deps.correlate?.(peer, this.opts.session, node, coordinatorId);
    }
  }

  /**
   * The writes a turn brought the node's replica actor (replica-io.ts): its xstate event is the
   * whole batch, so each item is recorded as an event of the replica actor on its own, and matched
   * like any event (by its reqId, or a coordinator this session follows).
   */
  onReplicaItems(items: readonly { type: string; from: string; reqId: string }[]): void {
    const ref: ActorLike = { id: 'replica', src: 'replica', getSnapshot: () => undefined };
    for (const item of items) {
      const event = { type: item.type, from: item.from, reqId: item.reqId };
      if (this.opts.request === undefined && this.opts.actors !== undefined ? !this.opts.actors.includes('replica') : !this.eventMatches(event)) continue;
      this.emit(ref, { kind: 'event', event: summarizeEvent(event), state: 'serving' });
    }
  }

  /**
   * The answers the replica actor sends for a group commit (replica-io.ts), recorded as its `send`
   * actions, one per request answered (a replica.put.acks stands for each request it names), matched
   * as the request they answer: by reqId and the coordinator it came from.
   */
  onReplicaAnswers(sends: readonly { to: string; kind: string; reqId: string; body: unknown }[]): void {
    const ref: ActorLike = { id: 'replica', src: 'replica', getSnapshot: () => undefined };
    for (const p of sends) {
      const reqIds = p.kind === 'replica.put.acks' ? ((p.body as { reqIds?: string[] }).reqIds ?? []) : [p.reqId];
      for (const reqId of reqIds) {
        const answered = { type: p.kind, from: p.to, reqId };
        if (this.opts.request === undefined && this.opts.actors !== undefined ? !this.opts.actors.includes('replica') : !this.eventMatches(answered)) continue;
        this.emit(ref, { kind: 'action', action: 'send', params: { to: p.to, kind: p.kind, reqId } });
      }
    }
  }

  private sample(): boolean {
    return this.sampleCounter++ % this.opts.sampleEvery === 0;
  }

  private eventMatches(e: EventLike): boolean {
    const { request, client, actors } = this.opts;
    if (request !== undefined) {
      if (e.reqId === request && (client === undefined || e.from === client)) return true;
      return typeof e.reqId === 'string' && typeof e.from === 'string' && this.correlations.get(e.reqId)?.has(e.from) === true;
    }
    if (actors !== undefined) return false;
    return this.sample();
  }

  private current(ref: ActorLike): boolean {
    return this.pending.get(ref)?.[0]?.matched === true;
  }

  private onActor(ref: ActorLike): void {
    // Called from xstate's Actor constructor: the actor has no snapshot yet, but has its input.
    if (!this.isWhole(ref, true)) return;
    this.emit(ref, { kind: 'spawn', input: summarize(ref.options?.input) });
  }

  private onEvent(ref: ActorLike, e: EventLike, source: ActorLike | undefined): void {
    if (e.type === 'xstate.init') return;
    const whole = this.isWhole(ref);
    if (e.type === coordinatorBatchEvent && !whole) return;
    const matched = whole || this.eventMatches(e);
    if (!whole && snapshotOf(ref)?.status === 'active') {
      let queue = this.pending.get(ref);
      if (!queue) this.pending.set(ref, (queue = []));
      queue.push({ event: e, matched });
      if (queue.length > pendingEventsPerActorMax) queue.shift();
    }
    if (!matched) return;
    const record: Partial<InspectRecord> = { kind: 'event', event: summarizeEvent(e), state: stateText(snapshotOf(ref)?.value) };
    if (source) record.source = source.id;
    this.emit(ref, record);
  }

  private onMicrostep(ref: ActorLike, e: EventLike, snapshot: SnapshotLike, transitions: TransitionLike[] | undefined): void {
    const to = stateText(snapshot.value);
    // Before its first macrostep ends an actor has no snapshot: the transition's source says where it was.
    const from = this.lastState.get(ref) ?? stateText(snapshotOf(ref)?.value) ?? '';
    const source = from !== '' ? from : (transitions?.[0]?.source?.path?.join('.') ?? '');
    this.lastState.set(ref, to);
    if (source === to) return;
    // An eventless transition is taken because of the event before it, but is not caused by it.
    const eventless = transitions !== undefined && transitions.length > 0 && transitions.every((t) => t.eventType === '');
    if (!(this.isWhole(ref) || this.current(ref))) return;
    this.emit(ref, { kind: 'transition', from: source, state: to, event: eventless ? { type: 'always' } : summarizeEvent(e) });
  }

  private onAction(ref: ActorLike, action: { type: string; params: unknown }): void {
    // Built-in actions (assign, raise, spawnChild, ...) show up as their effects.
    if (action.type.startsWith('xstate.')) return;
    if (!(this.isWhole(ref) || this.current(ref))) return;
    const record: Partial<InspectRecord> = { kind: 'action', action: action.type };
    const params = summarizeParams(action.params);
    if (params !== undefined) record.params = params;
    this.emit(ref, record);
  }

  private onSnapshot(ref: ActorLike, e: unknown, snapshot: SnapshotLike): void {
    this.lastState.delete(ref);
    const queue = this.pending.get(ref);
    if (queue) {
      const i = queue.findIndex((p) => p.event === e);
      if (i >= 0) queue.splice(0, i + 1);
    }
    if (snapshot.status !== 'active' && this.isWhole(ref)) {
      this.emit(ref, { kind: 'done', state: stateText(snapshot.value), event: { type: snapshot.status ?? 'done' } });
    }
  }

  private emit(ref: ActorLike, partial: Partial<InspectRecord>): void {
    const { actors, request } = this.opts;
    // With both filters, the request decides what is related and the actor list what is shown.
    if (actors !== undefined && request !== undefined && !actors.includes(ref.id)) return;
    const now = this.deps.clock.now();
    this.tokens = Math.min(recordsPerSecondMax, this.tokens + ((now - this.refilledAt) * recordsPerSecondMax) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.dropped++;
      this.tap.stats.dropped++;
      return;
    }
    this.tokens -= 1;
    this.buffer.push({ seq: ++this.seq, t: now, node: this.deps.nodeId, actor: ref.id, machine: machineOf(ref), kind: 'event', ...partial } as InspectRecord);
    this.tap.stats.records++;
    if (this.buffer.length >= recordsPerBatchMax) this.flush();
    else if (this.flushTimer === undefined) {
      this.flushTimer = this.deps.clock.setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, flushIntervalMs);
    }
  }

  private flush(): void {
    if (this.flushTimer !== undefined) {
      this.deps.clock.clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.buffer.length === 0) return;
    const records = this.buffer;
    this.buffer = [];
    this.sent += records.length;
    this.sink.records({ session: this.opts.session, records, dropped: this.dropped });
  }
}

export class InspectTap {
  readonly stats: TapStats = { sessionsOpened: 0, records: 0, dropped: 0, observerErrors: 0 };
  private root: AnyActorRef | undefined;
  private subscription: Subscription | undefined;
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly deps: TapDeps) {}

  /** The node's root actor: snapshots walk its tree, follow sessions tap its system. */
  attach(root: AnyActorRef): void {
    this.root = root;
  }

  get watching(): boolean {
    return this.sessions.size > 0;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  snapshot(actorId?: string): SnapshotAnswer {
    const actors: ActorInfo[] = [];
    let omitted = 0;
    const visit = (ref: ActorLike, parent: string | undefined) => {
      const snap = snapshotOf(ref);
      const children = Object.entries(snap?.children ?? {}).filter((e): e is [string, ActorLike] => e[1] !== undefined && isLive(e[1]));
      if (actorId === undefined || ref.id === actorId) {
        if (actors.length >= snapshotActorsMax) omitted++;
        else {
          const info: ActorInfo = {
            id: ref.id,
            machine: machineOf(ref),
            state: stateText(snap?.value),
            status: snap?.status ?? 'unknown',
            context: summarize(snap?.context),
            children: children.map(([id]) => id),
          };
          if (parent !== undefined) info.parent = parent;
          actors.push(info);
        }
      }
      for (const [, child] of children) visit(child, ref.id);
    };
    if (this.root) visit(this.root as unknown as ActorLike, undefined);
    return { node: this.deps.nodeId, t: this.deps.clock.now(), actors, omitted };
  }

  /** Opens a follow session; a session with the same id is replaced. */
  follow(opts: FollowOptions, sink: TapSink): CheckResult<{ session: string }> {
    const existing = this.sessions.get(opts.session);
    if (existing) this.stop(opts.session, 'replaced');
    if (this.sessions.size >= inspectSessionsMax) {
      return { ok: false, error: { code: 'OVERLOADED', message: `node ${this.deps.nodeId} already serves ${inspectSessionsMax} inspection sessions` } };
    }
    this.sessions.set(opts.session, new Session(opts, sink, this, this.deps));
    this.stats.sessionsOpened++;
    if (this.subscription === undefined && this.root) this.subscription = this.root.system.inspect(this.observe);
    return { ok: true, value: { session: opts.session } };
  }

  stop(sessionId: string, reason: EndReason = 'stopped'): boolean {
    const session = this.sessions.get(sessionId);
    if (!session) return false;
    this.sessions.delete(sessionId);
    if (this.sessions.size === 0) {
      this.subscription?.unsubscribe();
      this.subscription = undefined;
    }
    try {
      session.end(reason);
    } catch (err) {
      this.deps.onError?.(err);
    }
    return true;
  }

  /** The coordinator's trace of a batch (actors/coordinator.machine.ts), for every open session. */
  coordinatorTrace(t: CoordinatorStepTrace | CoordinatorRouteTrace): void {
    try {
      for (const session of this.sessions.values()) session.onCoordinatorTrace(t);
    } catch (err) {
      this.stats.observerErrors++;
      this.deps.onError?.(err);
    }
  }

  /** A group commit's answers from the replica actor (replica-io.ts), for every open session. */
  replicaAnswers(sends: readonly { to: string; kind: string; reqId: string; body: unknown }[]): void {
    try {
      for (const session of this.sessions.values()) session.onReplicaAnswers(sends);
    } catch (err) {
      this.stats.observerErrors++;
      this.deps.onError?.(err);
    }
  }

  /** A turn's replica writes (replica-io.ts), for every open session. */
  replicaItems(items: readonly { type: string; from: string; reqId: string }[]): void {
    try {
      for (const session of this.sessions.values()) session.onReplicaItems(items);
    } catch (err) {
      this.stats.observerErrors++;
      this.deps.onError?.(err);
    }
  }

  /** How many coordinators a session follows across nodes (undefined: no such session). */
  correlationsOf(sessionId: string): number | undefined {
    return this.sessions.get(sessionId)?.correlationCount;
  }

  correlate(sessionId: string, origin: string, reqId: string): boolean {
    const session = this.sessions.get(sessionId);
    session?.correlate(origin, reqId);
    return session !== undefined;
  }

  /** Ends every session (the node is stopping). */
  close(): void {
    for (const id of [...this.sessions.keys()]) this.stop(id, 'closed');
  }

  private readonly observe = (ev: InspectionEvent): void => {
    try {
      for (const session of this.sessions.values()) session.consider(ev);
    } catch (err) {
      this.stats.observerErrors++;
      this.deps.onError?.(err);
    }
  };
}

/** False for a child that has finished or was stopped (xstate may still list it for a moment). */
function isLive(ref: ActorLike): boolean {
  const status = snapshotOf(ref)?.status;
  return status !== 'done' && status !== 'stopped';
}

/** Live actors by machine, for metrics: walks the tree from the root. */
export function countActors(root: AnyActorRef | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  const visit = (ref: ActorLike) => {
    const machine = machineOf(ref);
    counts.set(machine, (counts.get(machine) ?? 0) + 1);
    for (const child of Object.values(snapshotOf(ref)?.children ?? {})) if (child && isLive(child)) visit(child);
  };
  if (root) visit(root as unknown as ActorLike);
  return counts;
}
