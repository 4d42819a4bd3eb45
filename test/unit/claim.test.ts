/**
 * Claim properties across random sequences of joins and leaves of 1..16 nodes (issue 4):
 *
 * - balance: owned counts differ by at most one;
 * - every preference list holds N distinct nodes whenever the ring has at least N nodes, and once the
 *   ring has more than N nodes a join leaves at most a few owners repeating within N consecutive
 *   partitions (wrap-around included) when it starts from a ring without such repeats (leaves are
 *   measured and printed, not held to it);
 * - movement: before its spacing swaps a claim moves exactly the partitions the shares require (the
 *   leavers' partitions plus each owner's excess above its share, computed here independently), and
 *   each swap moves at most two more. So a join of one node to k-1 moves at most ceil(Q/k) + 2·swaps;
 *   joining a ring that was spaced, moves stay within ceil(Q/k) + Q/16. The worst cases seen are printed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claim, spacingViolations } from '../../src/core/claim.js';
import { claimInitial, ownershipCounts, preferenceList, type Ring } from '../../src/core/ring.js';

const N = 3;
/** Repeats a claim may leave where a spaced ring was possible: its swap pass only takes improving single swaps. */
const spacingSlack = 4;
const pool = Array.from({ length: 16 }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);

/** The fewest moves any claim giving `members` floor/ceil shares must make from `ring`. */
function neededMoves(ring: Ring, members: string[]): number {
  const k = members.length;
  const base = Math.floor(ring.q / k);
  const extra = ring.q % k;
  const counts = ownershipCounts(ring);
  const orphaned = ring.owners.filter((o) => !members.includes(o)).length;
  // Members keep at most ceil for `extra` of them and floor for the rest: the best keeps the most.
  const held = members.map((m) => counts.get(m) ?? 0).sort((a, b) => b - a);
  let excess = 0;
  held.forEach((c, i) => (excess += Math.max(0, c - (i < extra ? base + 1 : base))));
  return orphaned + excess;
}

function checkRing(ring: Ring, members: string[]): void {
  const counts = [...members].map((m) => ownershipCounts(ring).get(m) ?? 0);
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  expect(new Set(ring.owners).size).toBe(Math.min(members.length, ring.q));
  for (let p = 0; p < ring.q; p++) {
    const prefs = preferenceList(ring, p, N);
    expect(new Set(prefs).size).toBe(Math.min(N, members.length));
  }
}

const steps = fc.array(fc.tuple(fc.boolean(), fc.nat(15)), { minLength: 1, maxLength: 40 });

describe('claim', () => {
  for (const q of [16, 64, 256]) {
    it(`keeps balance, N distinct and minimal movement across random joins and leaves (Q=${q})`, () => {
      let worstSwaps = 0;
      let worstLeft = 0;
      let worstLeaveLeft = 0;
      let worstJoinExtra = 0;
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 16 }), steps, (start, ops) => {
          let members = pool.slice(0, start);
          let ring = claimInitial(members, q);
          for (const [join, pick] of ops) {
            const outside = pool.filter((m) => !members.includes(m));
            if (join && outside.length > 0) members = [...members, outside[pick % outside.length]!].sort();
            else if (!join && members.length > 1) members = members.filter((_, i) => i !== pick % members.length);
            else continue;
            const spacedBefore = spacingViolations(ring, N) === 0;
            const result = claim(ring, members, N);
            checkRing(result.ring, members);
            expect(result.needed).toBe(neededMoves(ring, members));
            expect(result.moves.length).toBeLessThanOrEqual(result.needed + 2 * result.swaps);
            if (join) expect(result.needed).toBeLessThanOrEqual(Math.ceil(q / members.length));
            // Spacing: with more than N nodes, a join to a ring that was spaced keeps it (nearly)
            // spaced (checked where Q is at least 4·k, so every node has room). A leave is not held
            // to it: the leaver's partitions land next to each other's owners and the single-swap
            // repair can stop in a local minimum (seen: 12 repeats at Q=16 going from 5 nodes to 4).
            // Repeats cost replica balance only: preference lists still hold N distinct nodes (above).
            if (spacedBefore && members.length > N && q >= 4 * members.length) {
              const left = spacingViolations(result.ring, N);
              if (join) {
                worstLeft = Math.max(worstLeft, left);
                expect(left).toBeLessThanOrEqual(spacingSlack);
              } else worstLeaveLeft = Math.max(worstLeaveLeft, left);
            }
            worstSwaps = Math.max(worstSwaps, result.swaps);
            // A join to a spaced ring: ceil(Q/k) moves plus a little for spacing (bound: Q/16).
            if (join && spacedBefore) expect(result.moves.length).toBeLessThanOrEqual(Math.ceil(q / members.length) + q / 16);
            if (join && spacedBefore) worstJoinExtra = Math.max(worstJoinExtra, result.moves.length - Math.ceil(q / members.length));
            const plain = claim(ring, members, N, { spacing: false });
            expect(plain.moves.length).toBe(plain.needed);
            ring = result.ring;
          }
        }),
        { numRuns: q > 64 ? 15 : 60 },
      );
      process.stdout.write(`claim Q=${q}: most spacing swaps in one claim ${worstSwaps}, most repeats left by a join ${worstLeft}, by a leave ${worstLeaveLeft}, most moves beyond ceil(Q/k) on a join to a spaced ring ${worstJoinExtra}\n`);
    }, 120_000);
  }

  it('a join of one node to k-1 takes about Q/k partitions, all from over-full owners', () => {
    const q = 64;
    let ring = claimInitial(['n01'], q);
    for (let k = 2; k <= 16; k++) {
      const members = pool.slice(0, k);
      const before = ownershipCounts(ring);
      const { ring: next, moves } = claim(ring, members, N, { spacing: false });
      const taken = next.owners.filter((o) => o === members[k - 1]).length;
      expect(taken === Math.floor(q / k) || taken === Math.ceil(q / k)).toBe(true);
      expect(moves.length).toBe(taken);
      for (const p of moves) expect(before.get(ring.owners[p]!)!).toBeGreaterThan(Math.floor(q / k));
      ring = next;
    }
  });

  it('is deterministic', () => {
    const ring = claimInitial(pool.slice(0, 5), 64);
    expect(claim(ring, pool.slice(0, 7), N)).toEqual(claim(ring, pool.slice(0, 7), N));
  });
});
