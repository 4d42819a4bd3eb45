/**
 * The envelope every message travels in (DESIGN.md §5): `{ v, kind, from, to, reqId, body }`.
 * `kind` names what the body is (`replica.put`, `api.get.ok`); `from` and `to` are node ids (a
 * client's `from` is its own name); `reqId` ties answers to the request that caused them.
 */
import { decode, encode } from './codec.js';
import { checkers, protocolVersion, refusalOf } from './schemas.js';

export { protocolVersion };

export interface Envelope<B = unknown> {
  v: number;
  kind: string;
  from: string;
  to: string;
  reqId: string;
  body: B;
}

export function encodeEnvelope(env: Envelope): Uint8Array {
  return encode(env);
}

/** Decodes and checks the envelope's own fields; the body is checked per kind by validation.ts. */
export function decodeEnvelope(bytes: Uint8Array): Envelope | string {
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch {
    return 'the message is not valid MessagePack';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'the message is not an envelope object';
  const env = raw as Record<string, unknown>;
  // The version first and alone: a message of another version may differ in anything else.
  if (env.v !== protocolVersion) return `unsupported protocol version ${String(env.v)} (this node speaks ${protocolVersion})`;
  if (!checkers.envelope.Check(env)) return refusalOf(checkers.envelope, env);
  return env as unknown as Envelope;
}

/**
 * An answer envelope whose body is `{ state }`, with the state given already encoded (the stored
 * bytes of a DVV set, src/ports/store.ts getEncoded), or undefined for null. The result is the same
 * bytes encodeEnvelope gives for the decoded state: the envelope is encoded with `state: null`,
 * which MessagePack writes as the single last byte 0xc0 (body is the last field, state the body's
 * only one), and that byte is replaced by the stored bytes. A replica's read answer so costs a copy
 * instead of a decode and an encode of the state.
 */
export function encodeStateAnswer(head: Omit<Envelope, 'body'>, state: Uint8Array | undefined): Uint8Array {
  const withNull = encode({ v: head.v, kind: head.kind, from: head.from, to: head.to, reqId: head.reqId, body: { state: null } });
  if (state === undefined) return withNull;
  const out = new Uint8Array(withNull.length - 1 + state.length);
  out.set(withNull.subarray(0, withNull.length - 1), 0);
  out.set(state, withNull.length - 1);
  return out;
}
