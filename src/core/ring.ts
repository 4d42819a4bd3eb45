/**
 * The ring: Q equal partitions of the 64-bit hash space (Dynamo §6.2, strategy 3), Q a power of two
 * fixed at cluster creation. Partition p covers hashes [p * 2^64/Q, (p+1) * 2^64/Q): the key's
 * partition is the top log2(Q) bits of its hash.
 *
 * Each partition has one owner. A key's preference list is found by walking clockwise from its
 * partition and taking each node the first time it owns a partition: the first N are its primaries,
 * the rest fallbacks in order. Because the walk skips repeats, every preference list holds N
 * distinct nodes whenever the ring has at least N nodes.
 */
import { hash64Parts } from './hash.js';
import { operatorDefaults } from './defaults.js';

export interface Ring {
  /** Number of partitions, a power of two. */
  q: number;
  /** owners[p] is the node that owns partition p. */
  owners: string[];
}

export const partitionCountDefault: number = operatorDefaults.partitions;
export const partitionCountMax = 1 << 16;

export function isValidPartitionCount(q: number): boolean {
  return Number.isInteger(q) && q >= 1 && q <= partitionCountMax && (q & (q - 1)) === 0;
}

export function partitionOf(key: Uint8Array, q: number): number {
  if (q === 1) return 0;
  // Q <= 2^16, so the partition is the top log2(Q) bits of the hash's high half (no BigInt).
  const bits = Math.log2(q);
  return hash64Parts(key).hi >>> (32 - bits);
}

/**
 * A balanced first assignment: the sorted nodes deal partitions round-robin, so owned counts differ
 * by at most one and neighbouring partitions have different owners.
 */
export function claimInitial(nodes: readonly string[], q: number): Ring {
  if (!isValidPartitionCount(q)) throw new Error(`partition count ${q} is not a power of two in 1..${partitionCountMax}`);
  const sorted = [...new Set(nodes)].sort();
  if (sorted.length === 0) throw new Error('a ring needs at least one node');
  const owners = Array.from({ length: q }, (_, p) => sorted[p % sorted.length]!);
  return { q, owners };
}

/**
 * The distinct nodes met walking clockwise from partition p, at most `length` of them. Pass the
 * replica count N for the primaries, or more to include fallbacks.
 */
export function preferenceList(ring: Ring, partition: number, length: number): string[] {
  const out: string[] = [];
  for (let step = 0; step < ring.q && out.length < length; step++) {
    const owner = ring.owners[(partition + step) % ring.q]!;
    if (!out.includes(owner)) out.push(owner);
  }
  return out;
}

/** The nodes of the ring, sorted. */
export function ringNodes(ring: Ring): string[] {
  return [...new Set(ring.owners)].sort();
}

/** The partitions a node holds a primary replica of, for replica count n. */
export function partitionsReplicatedBy(ring: Ring, nodeId: string, n: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < ring.q; p++) if (preferenceList(ring, p, n).includes(nodeId)) out.push(p);
  return out;
}

/** Partitions owned per node. */
export function ownershipCounts(ring: Ring): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of ring.owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}
