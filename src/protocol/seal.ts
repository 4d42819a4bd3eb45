/**
 * The seal: how a member proves that an internal NATS message comes from a member of this cluster
 * (issue 17, item 2). Every message a node publishes to another node's subject (one envelope, or one
 * `batch` of many: one seal per NATS message, never one per envelope) travels as
 *
 *   0xc1  version(1)  idLength(1)  clusterId  sentAtMs(8, float64 BE)  mac(32)  payload
 *
 * where mac = HMAC-SHA256(cluster secret, subject 0x00 header payload) and header is every byte
 * before the mac. 0xc1 is the one byte MessagePack never uses, so no envelope can be mistaken for a
 * sealed message or the other way round.
 *
 * Why an HMAC under one cluster secret and not a signature per node (ed25519 nkeys): an HMAC over a
 * batch costs about 1-3 µs, an ed25519 signature plus verification in JavaScript tens of µs per
 * message, on the hot path of every write. Members trust each other anyway (any member can already
 * write any key, commit a ring, hand over any partition), so a per-node signature would only say
 * which member sent a message, which nothing acts on. What the seal must stop is a non-member.
 *
 * What is bound: the subject (a sealed message cannot be replayed onto another node or another role:
 * the subject names both), the cluster id (nor onto another cluster that happens to share the secret
 * or the name), and the time it was sealed. A captured message can only be replayed onto the same
 * subject of the same cluster, and only within `sealWindowMs` of its sealing. That replay is
 * harmless by construction: every internal message is a merge (DVV sync of a replica state, hints,
 * transfers, anti-entropy: idempotent, a replayed state is already covered) or a register that only
 * moves forward (the gossiped cluster state: a replayed older ring version loses to the newer one),
 * or a request whose answer goes to the requester, not to the replayer. The one effect left is load.
 *
 * Pure functions of bytes, the key and the time: the simulator seals with them too.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { costs } from './cost-counters.js';

/** The first byte of a sealed message: MessagePack's never-used byte. */
export const sealMarker = 0xc1;
export const sealVersion = 1;
export const macBytes = 32;
/** The shortest cluster secret accepted: 256 bits, the HMAC-SHA256 block's worth of entropy and more. */
export const clusterSecretBytesMin = 32;
/**
 * How far a seal's time may be from the receiver's clock, either way. Bounds replay in time; wide
 * enough for the clock skew of machines without NTP trouble. A node whose clock is off by more
 * than this cannot talk to the cluster, and the receivers say so (reason `stale`).
 */
export const sealWindowMs = 5 * 60_000;
const clusterIdBytesMax = 64;

export interface SealKey {
  /** This cluster's id (cluster-id.ts): bound into every seal. */
  clusterId: string;
  /** The cluster secret, at least clusterSecretBytesMin bytes. */
  secret: Uint8Array;
}

export type SealFailure = 'unsigned' | 'malformed' | 'other-cluster' | 'bad-mac' | 'stale';
export const sealFailures: readonly SealFailure[] = ['unsigned', 'malformed', 'other-cluster', 'bad-mac', 'stale'];

export type Opened =
  | { ok: true; payload: Uint8Array; sentAtMs: number }
  | { ok: false; reason: SealFailure; clusterId?: string; payload?: Uint8Array };

const utf8 = new TextEncoder();
/** Each key's cluster id as bytes, encoded once: sealing runs for every message a node sends. */
const idBytesOf = new WeakMap<SealKey, Uint8Array>();

export function isSealed(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === sealMarker;
}

function mac(secret: Uint8Array, subject: string, header: Uint8Array, payload: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(subject + '\u0000').update(header).update(payload).digest();
}

/** The sealed form of `payload` for publishing on `subject`. */
export function seal(key: SealKey, subject: string, payload: Uint8Array, nowMs: number): Uint8Array {
  costs.seals++;
  let id = idBytesOf.get(key);
  if (id === undefined) {
    id = utf8.encode(key.clusterId);
    idBytesOf.set(key, id);
  }
  if (id.length > clusterIdBytesMax) throw new Error(`cluster id longer than ${clusterIdBytesMax} bytes`);
  const headerBytes = 3 + id.length + 8;
  const out = Buffer.allocUnsafe(headerBytes + macBytes + payload.length);
  out[0] = sealMarker;
  out[1] = sealVersion;
  out[2] = id.length;
  out.set(id, 3);
  out.writeDoubleBE(nowMs, 3 + id.length);
  const header = out.subarray(0, headerBytes);
  mac(key.secret, subject, header, payload).copy(out, headerBytes);
  out.set(payload, headerBytes + macBytes);
  return out;
}

/**
 * Checks a message that arrived on `subject`. The payload is handed out only when the seal holds;
 * nothing of it should be decoded before. A failure says why (and, for `other-cluster`, which
 * cluster id the frame claims, to say that another cluster shares this NATS).
 */
export function openSealed(key: SealKey, subject: string, bytes: Uint8Array, nowMs: number): Opened {
  costs.opens++;
  if (!isSealed(bytes)) return { ok: false, reason: 'unsigned' };
  if (bytes.length < 3 || bytes[1] !== sealVersion) return { ok: false, reason: 'malformed' };
  const idLength = bytes[2]!;
  const headerBytes = 3 + idLength + 8;
  if (idLength > clusterIdBytesMax || bytes.length < headerBytes + macBytes) return { ok: false, reason: 'malformed' };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const clusterId = buf.toString('utf8', 3, 3 + idLength);
  if (clusterId !== key.clusterId) return { ok: false, reason: 'other-cluster', clusterId };
  const header = buf.subarray(0, headerBytes);
  const claimed = buf.subarray(headerBytes, headerBytes + macBytes);
  const payload = buf.subarray(headerBytes + macBytes);
  if (!timingSafeEqual(claimed, mac(key.secret, subject, header, payload))) return { ok: false, reason: 'bad-mac' };
  const sentAtMs = buf.readDoubleBE(3 + idLength);
  // Checked after the mac: the time is only worth reading once it is known to be a member's.
  if (!(Math.abs(nowMs - sentAtMs) <= sealWindowMs)) return { ok: false, reason: 'stale', payload };
  return { ok: true, payload, sentAtMs };
}

/**
 * The payload inside a sealed frame whatever its seal says, or undefined when the frame is too short:
 * only for saying in a log what a refused message claimed to be. Never route it.
 */
export function sealedPayloadUnchecked(bytes: Uint8Array): Uint8Array | undefined {
  if (!isSealed(bytes) || bytes.length < 3) return undefined;
  const start = 3 + bytes[2]! + 8 + macBytes;
  return bytes.length < start ? undefined : bytes.subarray(start);
}
