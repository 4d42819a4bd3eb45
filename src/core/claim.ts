/**
 * Claim: who owns which partition after the members change (Dynamo §4.9, Riak's claim). Given the
 * committed ring and the new member set it returns the next ring such that
 *
 * - owned counts differ by at most one (each member owns floor(Q/k) or ceil(Q/k) partitions);
 * - as few partitions move as possible: only the partitions of members that left and the excess of
 *   owners above their share change hands, so a joining node takes about Q/(k+1) partitions, each
 *   from an over-full owner, and a leaving node's partitions are spread over the others;
 * - where it can, no owner appears twice within n consecutive partitions (wrap-around included), so
 *   every preference list is the n owners met in n steps and replica load stays even. A final pass
 *   swaps owners of pairs of partitions only while that removes such a repeat; each swap moves two
 *   partitions. Some sizes allow no such ring (Q=64 on 3 nodes: any 3-spaced ring needs Q % 3 = 0);
 *   the preference list walk still finds n distinct nodes, by skipping repeats.
 *
 * Pure and deterministic: the same ring and members give the same answer on every node.
 */
import { type Ring, isValidPartitionCount } from './ring.js';

export interface ClaimResult {
  ring: Ring;
  /** Partitions whose owner changed. */
  moves: number[];
  /** Moves the shares alone required (before spacing swaps): the least any balanced claim makes. */
  needed: number;
  /** Pairs of partitions whose owners were swapped to remove spacing repeats (each moves at most 2). */
  swaps: number;
}

export interface ClaimOptions {
  /** Swap owners to remove spacing repeats (default true). */
  spacing?: boolean;
}

/** The spacing repeats of a ring: pairs of partitions less than n apart with the same owner. */
export function spacingViolations(ring: Ring, n: number): number {
  let count = 0;
  const q = ring.q;
  const span = Math.min(n, q);
  for (let p = 0; p < q; p++) {
    for (let d = 1; d < span; d++) if (ring.owners[p] === ring.owners[(p + d) % q]) count++;
  }
  return count;
}

/** Repeats partition p's owner `owner` would take part in: its own partitions within n-1 steps. */
function conflictsAt(owners: (string | null)[], q: number, p: number, owner: string, n: number): number {
  let count = 0;
  const span = Math.min(n, q);
  for (let d = 1; d < span; d++) {
    if (owners[(p + d) % q] === owner) count++;
    if (owners[(p - d + q) % q] === owner) count++;
  }
  return count;
}

/** Steps to the nearest other partition of `owner` (q when it owns none): used to spread a node's partitions. */
function nearest(owners: (string | null)[], q: number, p: number, owner: string): number {
  for (let d = 1; d < q; d++) if (owners[(p + d) % q] === owner || owners[(p - d + q) % q] === owner) return d;
  return q;
}

/**
 * The next ring for `members`. `ring` is the committed one; with no ring (the first claim) every
 * partition counts as unowned.
 */
export function claim(ring: Ring, members: readonly string[], n: number, opts: ClaimOptions = {}): ClaimResult {
  const q = ring.q;
  if (!isValidPartitionCount(q)) throw new Error(`partition count ${q} is not a valid power of two`);
  const sorted = [...new Set(members)].sort();
  if (sorted.length === 0) throw new Error('a ring needs at least one member');
  const k = sorted.length;
  const isMember = new Set(sorted);
  const owners: (string | null)[] = ring.owners.map((o) => (isMember.has(o) ? o : null));
  const counts = new Map<string, number>(sorted.map((m) => [m, 0]));
  for (const o of owners) if (o !== null) counts.set(o, counts.get(o)! + 1);

  // Shares: floor(Q/k) each, and one more for the Q % k members that hold the most already (ties
  // by id), so the fewest partitions have to move.
  const base = Math.floor(q / k);
  const target = new Map<string, number>(sorted.map((m) => [m, base]));
  const byHolding = [...sorted].sort((a, b) => counts.get(b)! - counts.get(a)! || (a < b ? -1 : 1));
  for (const m of byHolding.slice(0, q % k)) target.set(m, base + 1);

  // Greedy: an under-full member takes, one at a time, an unowned partition or one of an over-full
  // owner's; each take is a move that any claim meeting these shares has to make.
  for (;;) {
    const takers = sorted.filter((m) => counts.get(m)! < target.get(m)!);
    if (takers.length === 0) break;
    let best: { taker: string; p: number; score: number[] } | null = null;
    for (const taker of takers) {
      for (let p = 0; p < q; p++) {
        const from = owners[p];
        if (from !== null && counts.get(from)! <= target.get(from)!) continue;
        const score = [
          conflictsAt(owners, q, p, taker, n),
          // Prefer taking a partition that is a repeat for its current owner: it fixes one.
          from === null ? 0 : -conflictsAt(owners, q, p, from, n),
          from === null ? 0 : 1,
          -nearest(owners, q, p, taker),
          // The neediest taker first, then by id, then the lowest partition: deterministic.
          -(target.get(taker)! - counts.get(taker)!),
        ];
        if (best === null || lexLess(score, best.score)) best = { taker, p, score };
      }
    }
    if (best === null) throw new Error('claim: no partition to take (shares do not add up to Q)');
    const from = owners[best.p];
    if (from !== null && from !== undefined) counts.set(from, counts.get(from)! - 1);
    owners[best.p] = best.taker;
    counts.set(best.taker, counts.get(best.taker)! + 1);
  }

  const next = owners as string[];
  let needed = 0;
  for (let p = 0; p < q; p++) if (ring.owners[p] !== next[p]) needed++;
  const swaps = k > 1 && opts.spacing !== false ? repairSpacing(next, q, n) : 0;
  const moves: number[] = [];
  for (let p = 0; p < q; p++) if (ring.owners[p] !== next[p]) moves.push(p);
  return { ring: { q, owners: next }, moves, needed, swaps };
}

/** Swaps owners of two partitions while a swap lowers the ring's repeats (counts stay the same). */
function repairSpacing(owners: string[], q: number, n: number): number {
  const swapsMax = q;
  let swaps = 0;
  for (; swaps < swapsMax; swaps++) {
    let best: { a: number; b: number; gain: number } | null = null;
    for (let a = 0; a < q; a++) {
      const ca = conflictsAt(owners, q, a, owners[a]!, n);
      if (ca === 0) continue;
      for (let b = 0; b < q; b++) {
        if (owners[b] === owners[a]) continue;
        const before = ca + conflictsAt(owners, q, b, owners[b]!, n);
        const oa = owners[a]!;
        const ob = owners[b]!;
        owners[a] = ob;
        owners[b] = oa;
        const after = conflictsAt(owners, q, a, ob, n) + conflictsAt(owners, q, b, oa, n);
        owners[a] = oa;
        owners[b] = ob;
        const gain = before - after;
        if (gain > 0 && (best === null || gain > best.gain)) best = { a, b, gain };
      }
    }
    if (best === null) return swaps;
    const t = owners[best.a]!;
    owners[best.a] = owners[best.b]!;
    owners[best.b] = t;
  }
  return swaps;
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}
