/**
 * Validation of every decoded message before any actor sees it (DESIGN.md §5). A bad client
 * request becomes an error reply with a code and a sentence; a bad internal message is dropped and
 * counted. Either way no actor ever receives a malformed body, so no message can crash one.
 */
import { type ClusterState, memberStatuses, stagedOps } from '../core/cluster-state.js';
import type { DvvSet, VersionVector } from '../core/dvv.js';
import { isValidPartitionCount } from '../core/ring.js';
import { levelWidth, shapeProblem, treeDepth } from '../core/merkle.js';
import { aaeItemsMax } from './aae-messages.js';
import { reapItemsMax } from './reap-messages.js';
import { decode } from './codec.js';
import type { ErrorCode } from './errors.js';
import type { Limits } from './limits.js';
import { backupDirCharsMax, type ClusterClaimRequest, clusterOps, replicaAcksMax, replicaPutsItemsMax, type ReplicaPutsItem } from './messages.js';
import { checkers, refusalOf } from './schemas.js';
import { namePattern } from './subjects.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = (message: string, code: ErrorCode = 'BAD_REQUEST'): Checked<never> => ({ ok: false, code, message });

export function isBytes(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

export function checkKey(key: unknown, limits: Limits): Checked<Uint8Array> {
  if (!isBytes(key)) return bad('key must be bytes');
  if (key.length === 0) return bad('key must not be empty');
  if (key.length > limits.keyBytesMax) return bad(`key is ${key.length} bytes; the limit is ${limits.keyBytesMax}`, 'TOO_LARGE');
  return ok(key);
}

/** A version vector (schemas.ts VersionVectorSchema), its clock ids sorted and unique as join() makes them. */
export function checkVersionVector(x: unknown): x is VersionVector {
  if (!checkers.versionVector.Check(x)) return false;
  for (let i = 1; i < x.length; i++) if (x[i]![0] <= x[i - 1]![0]) return false;
  return true;
}

/**
 * The shape of a DVV set: entries `[clock id, counter, values]` sorted by unique id. A counter only
 * has to be a number here: one that ringkv could not have issued (not a safe whole number, above
 * Limits.counterMax, below its live values' count) costs only its own entry, which every replica
 * refuses the same way when it merges (src/core/version-check.ts), so one bad entry can never make
 * a whole batch, exchange or key unusable. Callers that keep a state screen it.
 */
export function checkDvvSet(x: unknown): x is DvvSet {
  if (!checkers.dvvSet.Check(x)) return false;
  for (let i = 0; i < x.length; i++) {
    if (typeof x[i]![1] !== 'number' || (i > 0 && x[i]![0] <= x[i - 1]![0])) return false;
  }
  return true;
}

/**
 * A client context is the MessagePack of a version vector; anything else is refused. Absent, null
 * (checkClientBody lets both through: MessagePack clients often send nil for "none") and empty all
 * mean "no context": a blind write. A context longer than any history ringkv keeps
 * (historyEntriesMax) or with a counter above any ringkv issues (counterMax) is refused too: ringkv
 * never issued it. A well-formed context may still claim more than the key's replicas hold; the
 * coordinator cuts it to its stored state (dvv.clamp), so it can supersede only what it could have seen.
 */
export function decodeContext(bytes: Uint8Array | null | undefined, limits: Pick<Limits, 'historyEntriesMax' | 'counterMax'>): Checked<VersionVector> {
  if (bytes === undefined || bytes === null || bytes.length === 0) return ok([]);
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch {
    return bad('context is not one that ringkv issued (not MessagePack)');
  }
  if (Array.isArray(raw) && raw.length > limits.historyEntriesMax) {
    return bad(`context is not one that ringkv issued: it names ${raw.length} clock ids, and a key's history holds at most ${limits.historyEntriesMax}`);
  }
  if (!checkVersionVector(raw)) return bad('context is not one that ringkv issued');
  for (const [id, n] of raw) {
    if (n > limits.counterMax) return bad(`context is not one that ringkv issued: clock id ${JSON.stringify(id)} has counter ${n}, above ${limits.counterMax}`);
  }
  return ok(raw);
}

/**
 * Checks a client request body for its kind: its shape against the kind's schema (schemas.ts),
 * then the limits this node was started with, which a schema does not know (TOO_LARGE for sizes).
 */
export function checkClientBody(kind: string, body: unknown, limits: Limits): Checked<Record<string, unknown>> {
  if (!isObject(body)) return bad('request body must be a map');
  if (kind === 'api.backup') {
    if (typeof body.dir !== 'string' || body.dir.length === 0 || body.dir.length > backupDirCharsMax || body.dir.includes('\0')) {
      return bad(`dir must be a directory name of 1 to ${backupDirCharsMax} characters`);
    }
    return ok(body);
  }
  if (kind === 'api.cluster') {
    if (!(clusterOps as readonly unknown[]).includes(body.op)) return bad(`op must be one of ${clusterOps.join(', ')}`);
    if (body.node !== undefined && body.node !== null && (typeof body.node !== 'string' || !namePattern.test(body.node))) {
      return bad('node must be a node id: 1-64 letters, digits, - or _');
    }
    return ok(body);
  }
  const check = checkers.requests[kind as keyof typeof checkers.requests];
  if (check === undefined) return bad(`unknown request kind "${kind}"`);
  const fields: Record<string, unknown> = body;
  if (!check.Check(fields)) return bad(refusalOf(check, fields));
  if (!('key' in body)) return ok(body);
  const key = body.key as Uint8Array;
  if (key.length > limits.keyBytesMax) return bad(`key is ${key.length} bytes; the limit is ${limits.keyBytesMax}`, 'TOO_LARGE');
  const t = body.timeoutMs;
  if (typeof t === 'number' && t > limits.requestTimeoutMsMax) return bad(`timeoutMs must be a whole number from 1 to ${limits.requestTimeoutMsMax}`);
  if (kind === 'api.put' && (body.value as Uint8Array).length > limits.valueBytesMax) {
    return bad(`value is ${(body.value as Uint8Array).length} bytes; the limit is ${limits.valueBytesMax}`, 'TOO_LARGE');
  }
  return ok(body);
}

/** Longest request id an internal answer may name (the coordinator's are `coordinator-<seq>`). */
const reqIdCharsMax = 256;

/** Checks an internal replica message body; false means drop it. */
export function checkReplicaBody(kind: string, body: unknown, q: number): boolean {
  if (!isObject(body)) return false;
  switch (kind) {
    case 'replica.coordinate':
    case 'replica.put':
    case 'replica.get':
      if (!isCount(body.p) || body.p >= q || !isBytes(body.key) || body.key.length === 0) return false;
      if (kind === 'replica.coordinate') {
        return checkVersionVector(body.context) && (body.value === null || isBytes(body.value)) && (body.hints === undefined || isNodeIdList(body.hints));
      }
      if (kind === 'replica.put') return (checkDvvSet(body.state) || isBytes(body.state)) && (body.hint === undefined || isNodeId(body.hint));
      return true;
    case 'replica.coordinate.ok':
    case 'replica.get.ok':
      return body.state === null || checkDvvSet(body.state);
    case 'replica.put.ok':
      return true;
    case 'replica.puts':
      return Array.isArray(body.items) && body.items.length > 0 && body.items.length <= replicaPutsItemsMax;
    case 'replica.put.acks':
      return Array.isArray(body.reqIds) && body.reqIds.length > 0 && body.reqIds.length <= replicaAcksMax && body.reqIds.every((id) => typeof id === 'string' && id.length <= reqIdCharsMax);
    case 'replica.error':
      return typeof body.code === 'string' && typeof body.message === 'string';
    default:
      return false;
  }
}

/**
 * One item of a replica.puts, as the body of the replica.put it stands for (its state still
 * encoded: the router decodes it), or undefined when it is malformed (that item alone is dropped).
 */
export function replicaPutOfItem(item: unknown, q: number): { reqId: string; body: { p: number; key: Uint8Array; state: Uint8Array; hint?: string } } | undefined {
  if (!Array.isArray(item) || item.length !== 5) return undefined;
  const [reqId, p, key, state, hint] = item as ReplicaPutsItem;
  if (typeof reqId !== 'string' || reqId.length > reqIdCharsMax) return undefined;
  if (!isCount(p) || p >= q || !isBytes(key) || key.length === 0 || !isBytes(state)) return undefined;
  if (hint !== null && !isNodeId(hint)) return undefined;
  return { reqId, body: hint === null ? { p, key, state } : { p, key, state, hint } };
}

/** Members a gossip digest may name: more is not a cluster ringkv runs, so it is refused. */
export const gossipMembersMax = 1024;

/**
 * Checks a gossip digest body: `{ heartbeats: { nodeId: [incarnation, counter] }, cluster? }`, the
 * cluster state as src/core/cluster-state.ts defines it.
 */
export function checkGossipBody(body: unknown): boolean {
  if (!isObject(body) || !isObject(body.heartbeats)) return false;
  const entries = Object.entries(body.heartbeats);
  if (entries.length > gossipMembersMax) return false;
  for (const [id, hb] of entries) {
    if (id.length === 0 || id.length > 64) return false;
    if (!Array.isArray(hb) || hb.length !== 2 || !isCount(hb[0]) || !isCount(hb[1])) return false;
  }
  return body.cluster === undefined || checkClusterState(body.cluster);
}

/** Longest reply address a forwarded admin request may carry (a NATS inbox is about 30 characters). */
export const replyToCharsMax = 256;

/** The client request inside a gossip.claim (a request forwarded to the claimant). */
export function checkClaimRequest(x: unknown): x is ClusterClaimRequest {
  if (!isObject(x) || !(clusterOps as readonly unknown[]).includes(x.op)) return false;
  if (x.node !== undefined && (typeof x.node !== 'string' || !namePattern.test(x.node))) return false;
  if (typeof x.replyTo !== 'string' || x.replyTo.length === 0 || x.replyTo.length > replyToCharsMax) return false;
  return typeof x.client === 'string' && x.client.length <= 256 && typeof x.reqId === 'string' && x.reqId.length <= 256;
}

/** A cluster state: member entries with known statuses, and a ring whose owners are named members. */
export function checkClusterState(x: unknown): x is ClusterState {
  if (!isObject(x) || !isObject(x.members) || !isObject(x.ring)) return false;
  const members = Object.entries(x.members);
  if (members.length > gossipMembersMax) return false;
  for (const [id, e] of members) {
    if (!namePattern.test(id) || !isObject(e)) return false;
    if (!(memberStatuses as readonly unknown[]).includes(e.status)) return false;
    if (e.staged !== null && !(stagedOps as readonly unknown[]).includes(e.staged)) return false;
    if (!isCount(e.version) || typeof e.by !== 'string' || e.by.length > 64) return false;
  }
  const r = x.ring;
  if (!isCount(r.version) || typeof r.by !== 'string' || r.by.length > 64 || !isCount(r.q) || !isValidPartitionCount(r.q)) return false;
  if (!Array.isArray(r.owners)) return false;
  if (r.version === 0) return r.owners.length === 0;
  return r.owners.length === r.q && r.owners.every((o) => typeof o === 'string' && Object.hasOwn(x.members as object, o));
}

function isNodeId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= 64;
}

function isNodeIdList(x: unknown): x is string[] {
  return Array.isArray(x) && x.length <= 16 && x.every(isNodeId);
}

/** Items in one handoff batch, at most (the sender's batchItemsMax is well below). */
export const handoffItemsMax = 4096;

/** Checks a handoff message body; false means drop it. */
export function checkHandoffBody(kind: string, body: unknown, q: number): boolean {
  if (!isObject(body)) return false;
  if (kind === 'handoff.batch.ok' || kind === 'handoff.transfer.ok') return true;
  if (kind === 'handoff.transfer.busy') return typeof body.message === 'string';
  if (kind === 'handoff.transfer.done') return isCount(body.p) && body.p < q;
  if (kind === 'handoff.transfer') {
    // Ownership transfer: one partition's objects, every item of that partition.
    if (!isCount(body.p) || body.p >= q || !Array.isArray(body.items) || body.items.length > handoffItemsMax) return false;
    const p = body.p;
    return body.items.every((item: unknown) => isObject(item) && item.p === p && isBytes(item.key) && item.key.length > 0 && checkDvvSet(item.state));
  }
  if (kind !== 'handoff.batch' || !Array.isArray(body.items) || body.items.length > handoffItemsMax) return false;
  return body.items.every(
    (item: unknown) => isObject(item) && isCount(item.p) && item.p < q && isBytes(item.key) && item.key.length > 0 && checkDvvSet(item.state),
  );
}

/** Ascending unique whole numbers below `below`, at most `max` of them. */
function isIndexList(x: unknown, below: number, max: number): x is number[] {
  if (!Array.isArray(x) || x.length > max) return false;
  let prev = -1;
  for (const n of x) {
    if (!isCount(n) || n <= prev || n >= below) return false;
    prev = n;
  }
  return true;
}

function isKeyList(x: unknown, limits: Limits): x is Uint8Array[] {
  return Array.isArray(x) && x.length <= aaeItemsMax && x.every((k) => isBytes(k) && k.length > 0 && k.length <= limits.keyBytesMax);
}

function isObjectList(x: unknown, limits: Limits): boolean {
  return (
    Array.isArray(x) &&
    x.length <= aaeItemsMax &&
    x.every((o) => Array.isArray(o) && o.length === 2 && isBytes(o[0]) && o[0].length > 0 && o[0].length <= limits.keyBytesMax && checkDvvSet(o[1]))
  );
}

/**
 * Checks an anti-entropy message body (src/protocol/aae-messages.ts); false means drop it. Shapes
 * and indices are checked against the shape the message names; whether that shape is this node's
 * is the anti-entropy machine's question (it answers aae.error).
 */
export function checkAaeBody(kind: string, body: unknown, q: number, limits: Limits): boolean {
  if (!isObject(body)) return false;
  const hasPartition = isCount(body.p) && body.p < q;
  const shape = Array.isArray(body.shape) && body.shape.length === 2 && isCount(body.shape[0]) && isCount(body.shape[1]) ? { segments: body.shape[0], fanout: body.shape[1] } : undefined;
  switch (kind) {
    case 'aae.tree': {
      if (!hasPartition || !shape || shapeProblem(shape) !== null || !isCount(body.level) || body.level >= treeDepth(shape)) return false;
      const width = levelWidth(shape, body.level);
      return isIndexList(body.nodes, width, width) && isBytes(body.hashes) && body.hashes.length === body.nodes.length * 8;
    }
    case 'aae.tree.ok': {
      if (!isCount(body.level) || !isIndexList(body.nodes, 1 << 16, 1 << 16) || !isBytes(body.children)) return false;
      // The fan-out is the asker's to check; here only that every node got the same whole number of hashes.
      const per = body.nodes.length === 0 ? 0 : body.children.length / body.nodes.length;
      return body.nodes.length === 0 ? body.children.length === 0 : Number.isInteger(per) && per % 8 === 0 && per > 0;
    }
    case 'aae.segment':
      return (
        hasPartition &&
        shape !== undefined &&
        shapeProblem(shape) === null &&
        isIndexList(body.segments, shape.segments, shape.segments) &&
        isKeyList(body.keys, limits) &&
        isBytes(body.hashes) &&
        body.hashes.length === body.keys.length * 8
      );
    case 'aae.segment.ok':
      return isObjectList(body.objects, limits) && isKeyList(body.want, limits) && typeof body.complete === 'boolean';
    case 'aae.put':
      return hasPartition && isObjectList(body.objects, limits);
    case 'aae.put.ok':
      return isCount(body.repaired);
    case 'aae.error':
      return typeof body.code === 'string' && typeof body.message === 'string';
    default:
      return false;
  }
}

/**
 * Checks a reaping message body (src/protocol/reap-messages.ts); false means drop it. Partitions
 * must be this ring's, keys within the key limit, states DVV sets, and an answer's lists as long as
 * each other (which question they answer is the reaper's to match).
 */
export function checkReapBody(kind: string, body: unknown, q: number, limits: Limits): boolean {
  if (!isObject(body)) return false;
  const isKey = (k: unknown) => isBytes(k) && k.length > 0 && k.length <= limits.keyBytesMax;
  switch (kind) {
    case 'reap.check':
      return (
        isCount(body.ring) &&
        Array.isArray(body.items) &&
        body.items.length <= reapItemsMax &&
        body.items.every((it) => Array.isArray(it) && it.length === 2 && isCount(it[0]) && it[0] < q && isKey(it[1]))
      );
    case 'reap.check.ok':
      return (
        isCount(body.ring) &&
        typeof body.staged === 'boolean' &&
        typeof body.moving === 'boolean' &&
        Array.isArray(body.states) &&
        Array.isArray(body.hinted) &&
        body.states.length <= reapItemsMax &&
        body.states.length === body.hinted.length &&
        body.states.every((s) => s === null || checkDvvSet(s)) &&
        body.hinted.every((h) => typeof h === 'boolean')
      );
    case 'reap.drop':
      return (
        Array.isArray(body.items) &&
        body.items.length <= reapItemsMax &&
        body.items.every((it) => Array.isArray(it) && it.length === 3 && isCount(it[0]) && it[0] < q && isKey(it[1]) && checkDvvSet(it[2]))
      );
    case 'reap.drop.ok':
      return isCount(body.dropped);
    default:
      return false;
  }
}
