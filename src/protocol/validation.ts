/**
 * Validation of every decoded message before any actor sees it (DESIGN.md §5). A bad client
 * request becomes an error reply with a code and a sentence; a bad internal message is dropped and
 * counted. Either way no actor ever receives a malformed body, so no message can crash one.
 */
import type { DvvSet, VersionVector } from '../core/dvv.js';
import { decode } from './codec.js';
import type { ErrorCode } from './errors.js';
import type { Limits } from './limits.js';

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

function checkOptions(body: Record<string, unknown>, limits: Limits): string | null {
  for (const name of ['n', 'r', 'w'] as const) {
    const v = body[name];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || (v as number) < 1)) return `${name} must be a whole number of at least 1`;
  }
  for (const name of ['pw', 'pr'] as const) {
    const v = body[name];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || (v as number) < 0)) return `${name} must be a whole number of at least 0`;
  }
  if (body.sloppy !== undefined && body.sloppy !== null && typeof body.sloppy !== 'boolean') return 'sloppy must be true or false';
  const t = body.timeoutMs;
  if (t !== undefined && t !== null && (!Number.isInteger(t) || (t as number) < 1 || (t as number) > limits.requestTimeoutMsMax)) {
    return `timeoutMs must be a whole number from 1 to ${limits.requestTimeoutMsMax}`;
  }
  return null;
}

export function checkVersionVector(x: unknown): x is VersionVector {
  if (!Array.isArray(x)) return false;
  let prev = '';
  for (const e of x) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !isCount(e[1])) return false;
    if (e[0] <= prev) return false; // sorted and unique, as join() makes them
    prev = e[0];
  }
  return true;
}

export function checkDvvSet(x: unknown): x is DvvSet {
  if (!Array.isArray(x)) return false;
  let prev = '';
  for (const e of x) {
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'string' || !isCount(e[1]) || !Array.isArray(e[2])) return false;
    if (e[0] <= prev || e[2].length > e[1]) return false;
    for (const v of e[2]) if (v !== null && !isBytes(v)) return false;
    prev = e[0];
  }
  return true;
}

/** A client context is the MessagePack of a version vector; anything else is refused. */
export function decodeContext(bytes: Uint8Array | undefined): Checked<VersionVector> {
  if (bytes === undefined || bytes.length === 0) return ok([]);
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch {
    return bad('context is not one that ringkv issued (not MessagePack)');
  }
  return checkVersionVector(raw) ? ok(raw) : bad('context is not one that ringkv issued');
}

/** Checks a client request body for its kind. */
export function checkClientBody(kind: string, body: unknown, limits: Limits): Checked<Record<string, unknown>> {
  if (!isObject(body)) return bad('request body must be a map');
  if (kind === 'api.status' || kind === 'api.hints') return ok(body);
  const key = checkKey(body.key, limits);
  if (!key.ok) return key;
  const opt = checkOptions(body, limits);
  if (opt) return bad(opt);
  if (body.context !== undefined && body.context !== null && !isBytes(body.context)) return bad('context must be bytes');
  if (kind === 'api.put') {
    if (!isBytes(body.value)) return bad('value must be bytes');
    if (body.value.length > limits.valueBytesMax) {
      return bad(`value is ${body.value.length} bytes; the limit is ${limits.valueBytesMax}`, 'TOO_LARGE');
    }
  }
  return ok(body);
}

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
      if (kind === 'replica.put') return checkDvvSet(body.state) && (body.hint === undefined || isNodeId(body.hint));
      return true;
    case 'replica.coordinate.ok':
    case 'replica.get.ok':
      return body.state === null || checkDvvSet(body.state);
    case 'replica.put.ok':
      return true;
    case 'replica.error':
      return typeof body.code === 'string' && typeof body.message === 'string';
    default:
      return false;
  }
}

/** Members a gossip digest may name: more is not a cluster ringkv runs, so it is refused. */
export const gossipMembersMax = 1024;

/** Checks a gossip digest body: `{ heartbeats: { nodeId: [incarnation, counter] } }`. */
export function checkGossipBody(body: unknown): boolean {
  if (!isObject(body) || !isObject(body.heartbeats)) return false;
  const entries = Object.entries(body.heartbeats);
  if (entries.length > gossipMembersMax) return false;
  for (const [id, hb] of entries) {
    if (id.length === 0 || id.length > 64) return false;
    if (!Array.isArray(hb) || hb.length !== 2 || !isCount(hb[0]) || !isCount(hb[1])) return false;
  }
  return true;
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
  if (kind === 'handoff.batch.ok') return true;
  if (kind !== 'handoff.batch' || !Array.isArray(body.items) || body.items.length > handoffItemsMax) return false;
  return body.items.every(
    (item: unknown) => isObject(item) && isCount(item.p) && item.p < q && isBytes(item.key) && item.key.length > 0 && checkDvvSet(item.state),
  );
}
