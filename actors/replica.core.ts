/**
 * The replica's decisions over one turn's batch, as pure functions (Dynamo §4.5, the replica side of
 * a request; riak_kv's vnode put): the node's one replica actor (actors/replica.machine.ts) calls
 * them once per turn for all of its writes and once per group commit for all of their outcomes, so
 * no write costs a transition of its own.
 *
 * - planBatch: which of the turn's writes go to the store (all of them, up to writesInFlightMax
 *   waiting for their commit; beyond that OVERLOADED at once rather than a queue without bound);
 * - answersOf: the answer each committed (or failed) write owes its coordinator: replica.put.ok,
 *   replica.coordinate.ok {state}, or replica.error with a code. An ok is only ever made from a
 *   committed outcome: a replica acknowledges a write once its transaction has committed.
 */
import type { ReplicaWrite, WriteOutcome } from '../src/core/replica-write.js';
import { type ReplicaCoordinateBody, type ReplicaPutBody, replicaAcksMax } from '../src/protocol/messages.js';

export type ReplicaAnswerKind = 'replica.coordinate.ok' | 'replica.put.ok';

/** A write a coordinator asks of this node's replica: make a new dot (coordinate) or keep another replica's state (put). */
export type ReplicaWriteItem =
  | { type: 'replica.coordinate'; from: string; reqId: string; body: ReplicaCoordinateBody }
  | { type: 'replica.put'; from: string; reqId: string; body: ReplicaPutBody };

/** One write the store applies in the turn's transaction, with what to answer once it committed. */
export interface CommitWrite {
  from: string;
  reqId: string;
  p: number;
  key: Uint8Array;
  write: ReplicaWrite;
  answer: ReplicaAnswerKind;
  /** Down primaries to keep hints for, committed with the object. */
  hints: string[];
}

export interface SendParams {
  to: string;
  kind: string;
  reqId: string;
  body: unknown;
}

/** What one write came to: its store outcome, or the store's failure (nothing was written). */
export type CommitResult = { write: CommitWrite; outcome: WriteOutcome } | { write: CommitWrite; failed: string };

export interface ReplicaLimits {
  siblingsMax: number;
  /** The stored size (src/core/stored-size.ts) a client write may not take a key past; absent, no bound. */
  storedBytesMax?: number;
  writesInFlightMax: number;
}

export const writesInFlightMaxDefault = 1024;

/** The turn's writes: those the store takes now, and the answers for those refused at once. */
export function planBatch(limits: ReplicaLimits, writesInFlight: number, items: readonly ReplicaWriteItem[]): { commit: CommitWrite[]; refused: SendParams[] } {
  const commit: CommitWrite[] = [];
  const refused: SendParams[] = [];
  let waiting = writesInFlight;
  for (const item of items) {
    if (waiting >= limits.writesInFlightMax) {
      refused.push(errorAnswer(item.from, item.reqId, 'OVERLOADED', `the replica already has ${limits.writesInFlightMax} writes waiting for their commit`));
      continue;
    }
    waiting++;
    commit.push(commitWriteOf(item, limits));
  }
  return { commit, refused };
}

function commitWriteOf(item: ReplicaWriteItem, limits: ReplicaLimits): CommitWrite {
  const { from, reqId, body } = item;
  if (item.type === 'replica.coordinate') {
    const b = item.body;
    return {
      from,
      reqId,
      p: b.p,
      key: b.key,
      answer: 'replica.coordinate.ok',
      hints: b.hints ?? [],
      write:
        limits.storedBytesMax === undefined
          ? { kind: 'coordinate', context: b.context, value: b.value, siblingsMax: limits.siblingsMax }
          : { kind: 'coordinate', context: b.context, value: b.value, siblingsMax: limits.siblingsMax, storedBytesMax: limits.storedBytesMax },
    };
  }
  const b = item.body;
  const write: CommitWrite['write'] = b.encoded ? { kind: 'sync', state: b.state, encoded: b.encoded } : { kind: 'sync', state: b.state };
  return { from, reqId, p: body.p, key: body.key, answer: 'replica.put.ok', hints: b.hint ? [b.hint] : [], write };
}

/**
 * The answers a group commit's writes owe their coordinators. A coordinator's replica.put writes
 * that committed are acknowledged together: one replica.put.acks per coordinator node naming every
 * request (a coordinator needs nothing else to count W), where one alone is a plain replica.put.ok.
 * Errors and replica.coordinate.ok (the state, for this node's own coordinator) go one by one.
 */
export function answersOf(results: readonly CommitResult[]): SendParams[] {
  const out: SendParams[] = [];
  let acks: Map<string, string[]> | undefined;
  for (const r of results) {
    const { from, reqId, answer } = r.write;
    if ('failed' in r) out.push(errorAnswer(from, reqId, 'INTERNAL', `the replica could not commit: ${r.failed}`));
    else if (!r.outcome.ok) out.push(errorAnswer(from, reqId, r.outcome.code, r.outcome.message));
    else if (answer === 'replica.coordinate.ok') out.push({ to: from, kind: answer, reqId, body: { state: r.outcome.state } });
    else {
      acks ??= new Map();
      const reqIds = acks.get(from);
      if (reqIds) reqIds.push(reqId);
      else acks.set(from, [reqId]);
    }
  }
  for (const [to, reqIds] of acks ?? []) {
    for (let i = 0; i < reqIds.length; i += replicaAcksMax) {
      const some = reqIds.length <= replicaAcksMax ? reqIds : reqIds.slice(i, i + replicaAcksMax);
      out.push(some.length === 1 ? { to, kind: 'replica.put.ok', reqId: some[0]!, body: {} } : { to, kind: 'replica.put.acks', reqId: '', body: { reqIds: some } });
    }
  }
  return out;
}

function errorAnswer(to: string, reqId: string, code: string, message: string): SendParams {
  return { to, kind: 'replica.error', reqId, body: { code, message } };
}
