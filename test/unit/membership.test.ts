/**
 * Membership views converge whatever the order of merges: the heartbeat merge is commutative,
 * associative and idempotent, and every node ends with the newest heartbeat of every member.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Heartbeats, isNewer, mergeHeartbeats } from '../../src/core/membership.js';

const heartbeats = fc.dictionary(fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5'), fc.tuple(fc.nat(5), fc.nat(20)), { maxKeys: 5 });

describe('heartbeat merge', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(heartbeats, heartbeats, heartbeats, (a, b, c) => {
        expect(mergeHeartbeats(a, b)).toEqual(mergeHeartbeats(b, a));
        expect(mergeHeartbeats(mergeHeartbeats(a, b), c)).toEqual(mergeHeartbeats(a, mergeHeartbeats(b, c)));
        expect(mergeHeartbeats(a, a)).toEqual(a);
      }),
    );
  });

  it('converges from any order of pairwise exchanges to the newest heartbeat of every member', () => {
    fc.assert(
      fc.property(fc.array(heartbeats, { minLength: 2, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 60 }), (views, exchanges) => {
        const nodes: Heartbeats[] = views.map((v) => ({ ...v }));
        // Random push-pull exchanges, then a final ring of exchanges so every view has met every other.
        const pairs = [...exchanges.map(([i, j]) => [i % nodes.length, j % nodes.length] as const)];
        for (let round = 0; round < 2; round++) for (let i = 0; i < nodes.length; i++) pairs.push([i, (i + 1) % nodes.length]);
        for (const [i, j] of pairs) {
          const merged = mergeHeartbeats(nodes[i]!, nodes[j]!);
          nodes[i] = merged;
          nodes[j] = merged;
        }
        const expected = views.reduce((acc, v) => mergeHeartbeats(acc, v), {} as Heartbeats);
        for (const view of nodes) expect(view).toEqual(expected);
        for (const [id, hb] of Object.entries(expected)) for (const v of views) if (v[id]) expect(isNewer(v[id]!, hb)).toBe(false);
      }),
    );
  });
});
