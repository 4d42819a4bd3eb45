/**
 * Cluster secrets for tests: a fresh random one per test cluster, and the seal key it gives, as
 * node-process makes it (src/server/cluster-secret.ts).
 */
import { sealKeyOf, newClusterSecretText } from '../../src/server/cluster-secret.js';
import type { SealKey } from '../../src/protocol/seal.js';

export function testSecret(): string {
  return newClusterSecretText();
}

export function testSealKey(cluster: string, secret = testSecret()): SealKey {
  return sealKeyOf(new TextEncoder().encode(secret), cluster);
}
