/**
 * The envelope every message travels in (DESIGN.md §5): `{ v, kind, from, to, reqId, body }`.
 * `kind` names what the body is (`replica.put`, `api.get.ok`); `from` and `to` are node ids (a
 * client's `from` is its own name); `reqId` ties answers to the request that caused them.
 */
import { decode, encode } from './codec.js';

export const protocolVersion = 1;

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
  if (env.v !== protocolVersion) return `unsupported protocol version ${String(env.v)} (this node speaks ${protocolVersion})`;
  for (const field of ['kind', 'from', 'to', 'reqId'] as const) {
    if (typeof env[field] !== 'string') return `envelope field "${field}" must be a string`;
    if ((env[field] as string).length > 256) return `envelope field "${field}" is longer than 256 characters`;
  }
  return env as unknown as Envelope;
}
