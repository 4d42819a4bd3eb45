/**
 * A member's proof in a service discovery answer (issue 28, item 4). A node about to serve asks
 * `$SRV.PING.ringkv` who answers for its cluster name (src/server/cluster-probe.ts); on an open NATS
 * anyone can answer that, and an impostor claiming another cluster id made a restarting member
 * refuse to start. The probe therefore sends a fresh random nonce as the PING's payload, and a member
 * answers with proof = HMAC-SHA256(cluster secret, "ringkv $SRV.PING" 0x00 clusterId 0x00 nodeId
 * 0x00 nonce): only a holder of the secret can make it, and only for this nonce, so a copied
 * answer proves nothing to the next probe.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SealKey } from './seal.js';

/** Bytes of a probe's nonce (hex on the wire). */
export const pingNonceBytes = 16;

export function newPingNonce(): string {
  return randomBytes(pingNonceBytes).toString('hex');
}

/** Whether a PING payload is a probe's nonce (anything else, `nats micro ping` included, gets no proof). */
export function isPingNonce(s: string): boolean {
  return s.length === pingNonceBytes * 2 && /^[0-9a-f]+$/.test(s);
}

export function pingProof(key: SealKey, nodeId: string, nonce: string): string {
  return createHmac('sha256', key.secret).update(`ringkv $SRV.PING\u0000${key.clusterId}\u0000${nodeId}\u0000${nonce}`).digest('hex');
}

/** Whether `proof` is a member's answer for this node id to this nonce. */
export function checkPingProof(key: SealKey, nodeId: string, nonce: string, proof: unknown): boolean {
  if (typeof proof !== 'string' || proof.length !== 64) return false;
  const want = Buffer.from(pingProof(key, nodeId, nonce), 'hex');
  const got = Buffer.from(proof, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}
