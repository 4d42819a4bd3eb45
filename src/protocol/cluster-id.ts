/**
 * A cluster's id: what tells two clusters apart that share a name on one NATS (issue 17, item 2).
 * It is bound into every seal (seal.ts), published in service discovery and in api.status answers
 * (so a client can pin it), and stored in each node's identity when the node first starts.
 *
 * It is derived from the cluster secret and the cluster's name, HMAC-SHA256(secret, "ringkv cluster
 * id" 0x00 name), first 16 bytes in hex, rather than drawn at random by "the first node": with
 * `--members a,b,c` several nodes form the cluster at once, each on its own, and they must agree on
 * the id before they have spoken; a node joining through seeds, and an admin tool holding the secret,
 * know it without asking anyone. It names the trust domain exactly: two clusters made with different
 * secrets always have different ids (so a stray cluster of the same name is told apart and refused),
 * and two "clusters" given the same secret are one trust domain whatever their id says, since each
 * could seal the other's traffic. It reveals nothing of the secret (HMAC output), and a secret that
 * changes under a node's data shows as a stored id that no longer matches (identity.ts).
 */
import { createHmac } from 'node:crypto';

export function clusterIdOf(secret: Uint8Array, clusterName: string): string {
  return createHmac('sha256', secret).update('ringkv cluster id').update(new Uint8Array([0])).update(clusterName).digest().subarray(0, 16).toString('hex');
}
