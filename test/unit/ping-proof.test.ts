import { describe, expect, it } from 'vitest';
import { checkPingProof, isPingNonce, newPingNonce, pingProof } from '../../src/protocol/ping-proof.js';
import { testSealKey } from '../support/cluster-secret.js';

describe("a member's proof in a $SRV.PING answer", () => {
  const key = testSealKey('c');
  it('holds for the node and nonce it was made for, under the secret, and nothing else', () => {
    const nonce = newPingNonce();
    expect(isPingNonce(nonce)).toBe(true);
    expect(isPingNonce('')).toBe(false);
    const proof = pingProof(key, 'n1', nonce);
    expect(checkPingProof(key, 'n1', nonce, proof)).toBe(true);
    expect(checkPingProof(key, 'n2', nonce, proof)).toBe(false);
    expect(checkPingProof(key, 'n1', newPingNonce(), proof)).toBe(false);
    expect(checkPingProof({ ...testSealKey('c'), clusterId: key.clusterId }, 'n1', nonce, proof)).toBe(false);
    expect(checkPingProof(key, 'n1', nonce, 'ab'.repeat(32))).toBe(false);
    expect(checkPingProof(key, 'n1', nonce, 42)).toBe(false);
  });
});
