/**
 * The seal: how a member proves that an internal NATS message comes from a member of this cluster
 * (issue 17, item 2), and names it once (issue 28, item 1). Every message a node publishes to another
 * node's subject (one envelope, or one `batch` of many: one seal per NATS message, never one per
 * envelope) travels as
 *
 *   0xc1  version(1)  flags(1)  idLength(1)  clusterId  sentAtMs(8, float64 BE)  sender(8)  counter(8)  mac(32)  payload
 *
 * where mac = HMAC-SHA256(cluster secret, subject 0x00 replyTo 0x00 header payload), header is every
 * byte before the mac, and replyTo is the NATS reply subject when flags bit 0 (replyBound) is set,
 * else empty. 0xc1 is the one byte MessagePack never uses, so no envelope can be mistaken for a
 * sealed message or the other way round.
 *
 * Why an HMAC under one cluster secret and not a signature per node (ed25519 nkeys): an HMAC over a
 * batch costs about 1-3 µs, an ed25519 signature plus verification in JavaScript tens of µs per
 * message, on the hot path of every write. Members trust each other anyway (any member can already
 * write any key, commit a ring, hand over any partition), so a per-node signature would only say
 * which member sent a message, which nothing acts on. What the seal must stop is a non-member.
 *
 * What is bound: the subject (a sealed message cannot be moved onto another node or another role:
 * the subject names both), the reply subject where the sender binds it (a forwarded client request:
 * its answer cannot be redirected), the cluster id (nor onto another cluster that happens to share
 * the secret or the name), the time it was sealed, and the message's id: `sender` (8 random bytes
 * drawn once per seal key object, that is per process and per transport: a sender incarnation) and
 * `counter` (one more for every message that key seals). The id is what makes a copy useless: the
 * receiver remembers the ids it took for as long as the time check would take them
 * (src/core/replay-guard.ts) and drops a repeat before decoding it. A listener who copies a
 * member's message and publishes it again, byte for byte, on the same subject, achieves nothing but
 * a count in ringkv_messages_replayed_total.
 *
 * Pure functions of bytes, the key and the time: the simulator seals with them too.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { costs } from './cost-counters.js';

/** The first byte of a sealed message: MessagePack's never-used byte. */
export const sealMarker = 0xc1;
/** 2 since issue 28: flags, sender and counter (the message id). A node refuses version 1 frames ('malformed'). */
export const sealVersion = 2;
export const macBytes = 32;
/** The message id: sender incarnation (random) and counter, each 8 bytes. */
export const senderBytes = 8;
export const idBytes = senderBytes + 8;
/** flags bit 0: the NATS reply subject is under the mac. */
export const replyBoundFlag = 0x01;
/** The shortest cluster secret accepted: 256 bits, the HMAC-SHA256 block's worth of entropy and more. */
export const clusterSecretBytesMin = 32;
/**
 * How far a seal's time may be from the receiver's clock, either way. It bounds how long a receiver
 * must remember each id (replay-guard.ts) and so what a replay after a receiver's restart could reach
 * (nothing sealed before the start is taken: member-gate.ts), and it is the clock skew members
 * tolerate. 30 s: clocks kept by NTP (or chrony, or a container's host) agree within milliseconds,
 * a machine whose time service stopped drifts well under a second a day, and no internal message
 * has a use after 30 s in flight (request deadlines are shorter; gossip, hints, transfers and
 * anti-entropy repeat what is lost). It was 5 minutes before ids existed, when it was the only bound
 * on replay. A node whose clock is off by more than this cannot talk to the cluster, and the
 * receivers say so (reason `stale`).
 */
export const sealWindowMs = 30_000;
const clusterIdBytesMax = 64;

export interface SealKey {
  /** This cluster's id (cluster-id.ts): bound into every seal. */
  clusterId: string;
  /** The cluster secret, at least clusterSecretBytesMin bytes. */
  secret: Uint8Array;
  /**
   * The sender incarnation this key seals with (senderBytes bytes). Left out in production: drawn at
   * random at the key's first seal. The simulator gives one per node incarnation, so that a seed's
   * messages, and so its trace, are the same bytes at every run.
   */
  sender?: Uint8Array;
}

/**
 * Why a message was refused. The last four are the member gate's, for messages whose seal held:
 * an id taken before, a seal dated before the receiver started, a forward without its reply subject
 * under the seal, a new sender when the replay guard is full (src/core/replay-guard.ts).
 */
export type SealFailure = 'unsigned' | 'malformed' | 'other-cluster' | 'bad-mac' | 'stale' | 'replayed' | 'before-start' | 'reply-unbound' | 'replay-full';
export const sealFailures: readonly SealFailure[] = ['unsigned', 'malformed', 'other-cluster', 'bad-mac', 'stale', 'replayed', 'before-start', 'reply-unbound', 'replay-full'];

export type Opened =
  | {
      ok: true;
      payload: Uint8Array;
      sentAtMs: number;
      /** The sender incarnation, as an 8-character latin1 string (a map key for the replay guard). */
      sender: string;
      counter: number;
      /** True when the NATS reply subject was under the mac. */
      replyBound: boolean;
    }
  | { ok: false; reason: SealFailure; clusterId?: string; payload?: Uint8Array };

const utf8 = new TextEncoder();

/** What a seal key seals with: its cluster id as bytes (encoded once), its sender incarnation and counter. */
interface Sender {
  id: Uint8Array;
  sender: Buffer;
  counter: number;
}
/**
 * Per key object: sealing runs for every message a node sends. A new key object (a restarted
 * process, another transport) is a new sender with a new random incarnation, so its counter may
 * start at 0 again without ever giving an id twice.
 */
const senders = new WeakMap<SealKey, Sender>();

function senderOf(key: SealKey): Sender {
  let s = senders.get(key);
  if (s === undefined) {
    const id = utf8.encode(key.clusterId);
    if (id.length > clusterIdBytesMax) throw new Error(`cluster id longer than ${clusterIdBytesMax} bytes`);
    if (key.sender !== undefined && key.sender.length !== senderBytes) throw new Error(`a seal key's sender must be ${senderBytes} bytes`);
    s = { id, sender: key.sender !== undefined ? Buffer.from(key.sender) : randomBytes(senderBytes), counter: 0 };
    senders.set(key, s);
  }
  return s;
}

export function isSealed(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === sealMarker;
}

function mac(secret: Uint8Array, subject: string, replyTo: string, header: Uint8Array, payload: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(subject + '\u0000' + replyTo + '\u0000').update(header).update(payload).digest();
}

/**
 * The sealed form of `payload` for publishing on `subject`. With `replyTo`, the reply subject it will
 * be published with is sealed too: the receiver then checks the reply subject it got.
 */
export function seal(key: SealKey, subject: string, payload: Uint8Array, nowMs: number, replyTo?: string): Uint8Array {
  const s = senderOf(key);
  const id = s.id;
  const headerBytes = 4 + id.length + 8 + idBytes;
  costs.seals++;
  const out = Buffer.allocUnsafe(headerBytes + macBytes + payload.length);
  out[0] = sealMarker;
  out[1] = sealVersion;
  out[2] = replyTo === undefined ? 0 : replyBoundFlag;
  out[3] = id.length;
  out.set(id, 4);
  let at = 4 + id.length;
  out.writeDoubleBE(nowMs, at);
  at += 8;
  s.sender.copy(out, at);
  at += senderBytes;
  const counter = ++s.counter;
  out.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), at);
  out.writeUInt32BE(counter >>> 0, at + 4);
  const header = out.subarray(0, headerBytes);
  mac(key.secret, subject, replyTo ?? '', header, payload).copy(out, headerBytes);
  out.set(payload, headerBytes + macBytes);
  return out;
}

/**
 * Checks a message that arrived on `subject` (with `replyTo`, its NATS reply subject, if any). The
 * payload is handed out only when the seal holds; nothing of it should be decoded before. A failure
 * says why (and, for `other-cluster`, which cluster id the frame claims, to say that another cluster
 * shares this NATS). Whether the id was seen before is the receiver's to check (replay-guard.ts).
 */
export function openSealed(key: SealKey, subject: string, bytes: Uint8Array, nowMs: number, replyTo?: string): Opened {
  costs.opens++;
  if (!isSealed(bytes)) return { ok: false, reason: 'unsigned' };
  if (bytes.length < 4 || bytes[1] !== sealVersion) return { ok: false, reason: 'malformed' };
  const flags = bytes[2]!;
  const idLength = bytes[3]!;
  const headerBytes = 4 + idLength + 8 + idBytes;
  if ((flags & ~replyBoundFlag) !== 0 || idLength > clusterIdBytesMax || bytes.length < headerBytes + macBytes) return { ok: false, reason: 'malformed' };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const clusterId = buf.toString('utf8', 4, 4 + idLength);
  if (clusterId !== key.clusterId) return { ok: false, reason: 'other-cluster', clusterId };
  const header = buf.subarray(0, headerBytes);
  const claimed = buf.subarray(headerBytes, headerBytes + macBytes);
  const payload = buf.subarray(headerBytes + macBytes);
  const replyBound = (flags & replyBoundFlag) !== 0;
  if (!timingSafeEqual(claimed, mac(key.secret, subject, replyBound ? (replyTo ?? '') : '', header, payload))) return { ok: false, reason: 'bad-mac' };
  const at = 4 + idLength;
  const sentAtMs = buf.readDoubleBE(at);
  // Checked after the mac: the time is only worth reading once it is known to be a member's.
  if (!(Math.abs(nowMs - sentAtMs) <= sealWindowMs)) return { ok: false, reason: 'stale', payload };
  const sender = buf.toString('latin1', at + 8, at + 8 + senderBytes);
  const counter = buf.readUInt32BE(at + 8 + senderBytes) * 0x1_0000_0000 + buf.readUInt32BE(at + 12 + senderBytes);
  return { ok: true, payload, sentAtMs, sender, counter, replyBound };
}

/**
 * The payload inside a sealed frame whatever its seal says, or undefined when the frame is too short:
 * only for saying in a log what a refused message claimed to be. Never route it.
 */
export function sealedPayloadUnchecked(bytes: Uint8Array): Uint8Array | undefined {
  if (!isSealed(bytes) || bytes.length < 4) return undefined;
  const start = 4 + bytes[3]! + 8 + idBytes + macBytes;
  return bytes.length < start ? undefined : bytes.subarray(start);
}
