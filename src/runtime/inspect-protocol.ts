/**
 * The inspection protocol, spoken on `ringkv.<cluster>.node.<id>.inspect` (an internal role: NATS
 * permissions can keep clients off it). Envelopes as everywhere (DESIGN.md §5), kinds:
 *
 *   inspect.snapshot  {actor?}            -> inspect.snapshot.ok {node, t, actors, omitted}
 *   inspect.follow    {session, actors?, request?, client?, durationMs?, sampleEvery?, peers?}
 *                     reply address = the stream: inspect.follow.ok {session, durationMs, limits},
 *                     then inspect.records {session, records, dropped} batches, then
 *                     inspect.end {session, reason, sent, dropped}
 *   inspect.stop      {session}            -> inspect.stop.ok {session} (if a reply address is given)
 *   inspect.correlate {session, origin, reqId}   node to node, no answer: "records about requests
 *                     this coordinator (reqId on node origin) sends belong to the session too"
 *
 * Errors answer with kind `error` and {code: BAD_REQUEST | OVERLOADED, message}.
 */
import type { ErrorBody } from '../protocol/errors.js';

/** The most follow sessions one node serves at once. */
export const inspectSessionsMax = 8;
/** The longest a follow session may run; the default when the request names no duration. */
export const followDurationMsMax = 10 * 60_000;
export const followDurationMsDefault = 60_000;
/** Records a session may send per second; beyond it they are dropped and counted. */
export const recordsPerSecondMax = 5_000;
/** Records per inspect.records message; a full batch is sent at once. */
export const recordsPerBatchMax = 256;
/** How long records wait before a partial batch is sent. */
export const flushIntervalMs = 100;
/** Coordinators (origin, reqId) a session follows across nodes. */
export const correlationsMax = 256;
/** Actors named in one follow filter; peers named in one follow request. */
export const filterActorsMax = 64;
export const peersMax = 256;
/** Actors listed in one snapshot answer; the rest are counted in `omitted`. */
export const snapshotActorsMax = 1_000;
/** The largest sampling divisor (follow every k-th unit of work). */
export const sampleEveryMax = 1_000_000;
/** Events remembered per actor while they wait to be processed (for attributing actions). */
export const pendingEventsPerActorMax = 64;
/** Ids, names and request ids in inspect bodies. */
export const inspectIdLengthMax = 256;

export const inspectLimits = {
  inspectSessionsMax,
  followDurationMsMax,
  recordsPerSecondMax,
  recordsPerBatchMax,
  flushIntervalMs,
  correlationsMax,
  snapshotActorsMax,
  sampleEveryMax,
} as const;

/** A JSON-like summary: primitives, arrays and plain objects, never key or value bytes. */
export type Summary = null | boolean | number | string | Summary[] | { [field: string]: Summary };

export interface ActorInfo {
  id: string;
  machine: string;
  /** The parent's id; absent for the node's root actor. */
  parent?: string;
  /** The state value as text: `serving`, `collecting`, `a.b`. */
  state: string;
  status: string;
  context: Summary;
  children: string[];
}

export interface SnapshotAnswer {
  node: string;
  t: number;
  actors: ActorInfo[];
  /** Actors left out of the answer because of snapshotActorsMax. */
  omitted: number;
}

/**
 * start: the coordinator actor started a request (a core, not an actor), recorded as a spawn is;
 * done: an actor finished, or a request the coordinator ran is over.
 */
export type RecordKind = 'spawn' | 'start' | 'event' | 'transition' | 'action' | 'done';

export interface InspectRecord {
  /** Per node and session, from 1. */
  seq: number;
  /** The node's clock, ms. */
  t: number;
  node: string;
  actor: string;
  machine: string;
  kind: RecordKind;
  /** The actor's state after the record (transition, done), or when it happened. */
  state?: string;
  /** transition: the state left ('' for the initial transition). */
  from?: string;
  /** event, transition: the event (type, from, reqId, partition, code: never bytes). */
  event?: Summary;
  /** event: the sending actor's id, when an actor sent it. */
  source?: string;
  /** action: its name and a summary of its parameters. */
  action?: string;
  params?: Summary;
  /** spawn, start: a summary of the actor's input (start: the request it takes). */
  input?: Summary;
}

export interface FollowRequest {
  session: string;
  actors?: string[];
  request?: string;
  client?: string;
  durationMs?: number;
  sampleEvery?: number;
  peers?: string[];
}

export interface RecordsMessage {
  session: string;
  records: InspectRecord[];
  /** Records dropped so far in this session (rate limit). */
  dropped: number;
}

export type EndReason = 'expired' | 'stopped' | 'replaced' | 'closed';

export interface EndMessage {
  session: string;
  reason: EndReason;
  sent: number;
  dropped: number;
}

export type CheckResult<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

const idPattern = /^[\x21-\x7e]{1,256}$/;

function isId(x: unknown): x is string {
  return typeof x === 'string' && x.length <= inspectIdLengthMax && idPattern.test(x);
}

function bad(message: string): { ok: false; error: ErrorBody } {
  return { ok: false, error: { code: 'BAD_REQUEST', message } };
}

function idList(x: unknown, name: string, max: number): CheckResult<string[] | undefined> {
  if (x === undefined || x === null) return { ok: true, value: undefined };
  if (!Array.isArray(x) || x.length > max || !x.every(isId)) return bad(`${name} must be a list of at most ${max} ids`);
  return { ok: true, value: x };
}

/** Checks a follow body; the duration is clamped to followDurationMsMax. */
export function checkFollow(body: unknown): CheckResult<Required<Pick<FollowRequest, 'session' | 'durationMs' | 'sampleEvery'>> & FollowRequest> {
  if (typeof body !== 'object' || body === null) return bad('the follow body must be a map');
  const b = body as Record<string, unknown>;
  if (!isId(b.session)) return bad('session must be an id of 1-256 printable characters');
  const actors = idList(b.actors, 'actors', filterActorsMax);
  if (!actors.ok) return actors;
  const peers = idList(b.peers, 'peers', peersMax);
  if (!peers.ok) return peers;
  for (const f of ['request', 'client'] as const) {
    if (b[f] !== undefined && b[f] !== null && !isId(b[f])) return bad(`${f} must be an id of 1-256 printable characters`);
  }
  const durationMs = b.durationMs ?? followDurationMsDefault;
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs <= 0) return bad('durationMs must be a positive number');
  const sampleEvery = b.sampleEvery ?? 1;
  if (typeof sampleEvery !== 'number' || !Number.isInteger(sampleEvery) || sampleEvery < 1 || sampleEvery > sampleEveryMax) {
    return bad(`sampleEvery must be a whole number from 1 to ${sampleEveryMax}`);
  }
  const value: Required<Pick<FollowRequest, 'session' | 'durationMs' | 'sampleEvery'>> & FollowRequest = {
    session: b.session,
    durationMs: Math.min(durationMs, followDurationMsMax),
    sampleEvery,
  };
  if (actors.value) value.actors = actors.value;
  if (peers.value) value.peers = peers.value;
  if (typeof b.request === 'string') value.request = b.request;
  if (typeof b.client === 'string') value.client = b.client;
  return { ok: true, value };
}

export function checkSessionBody(body: unknown): CheckResult<{ session: string }> {
  const b = body as Record<string, unknown> | null;
  if (typeof b !== 'object' || b === null || !isId(b.session)) return bad('session must be an id of 1-256 printable characters');
  return { ok: true, value: { session: b.session } };
}

export function checkCorrelate(body: unknown): CheckResult<{ session: string; origin: string; reqId: string }> {
  const b = body as Record<string, unknown> | null;
  if (typeof b !== 'object' || b === null || !isId(b.session) || !isId(b.origin) || !isId(b.reqId)) {
    return bad('inspect.correlate needs session, origin and reqId ids');
  }
  return { ok: true, value: { session: b.session, origin: b.origin, reqId: b.reqId } };
}

export function checkSnapshot(body: unknown): CheckResult<{ actor?: string }> {
  if (body === undefined || body === null) return { ok: true, value: {} };
  if (typeof body !== 'object') return bad('the snapshot body must be a map');
  const actor = (body as Record<string, unknown>).actor;
  if (actor === undefined || actor === null) return { ok: true, value: {} };
  if (!isId(actor)) return bad('actor must be an id of 1-256 printable characters');
  return { ok: true, value: { actor } };
}
