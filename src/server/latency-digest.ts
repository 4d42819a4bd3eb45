/**
 * A latency histogram fine enough to read real percentiles from, and cheap enough to keep per
 * operation on every node: log-linear buckets, subBuckets per doubling from latencyFloorMs up, so
 * that every bucket is at most 2^(1/subBuckets) wide (about 9 % with 8). A quantile is interpolated
 * inside its bucket, so it is off by a few per cent at most, where Prometheus buckets (0.5, 1, 2.5,
 * 5 ms ...) can only say "at most 2.5 ms".
 *
 * Counts are cumulative and sparse ([bucket, count] pairs), so that a watcher can subtract two
 * readings to get the histogram of what happened between them, and histograms of several nodes
 * add up to the cluster's: percentiles must be computed from merged counts, never averaged.
 */

/** The lowest latency told apart; anything faster counts in bucket 0. */
export const latencyFloorMs = 0.01;
/** Buckets per doubling. */
export const subBuckets = 8;
/** Doublings covered above the floor: 0.01 ms * 2^24 is about 168 s, past every deadline. */
export const doublingsMax = 24;
export const bucketsMax = subBuckets * doublingsMax;

/** [bucket index, count] pairs, sorted by index, counts above zero. */
export type SparseCounts = [number, number][];

export function bucketOf(ms: number): number {
  if (!(ms > latencyFloorMs)) return 0;
  const i = Math.floor(Math.log2(ms / latencyFloorMs) * subBuckets);
  return Math.min(bucketsMax - 1, i);
}

/** The bucket's lower bound in ms (its upper bound is the next bucket's lower bound). */
export function bucketLowerMs(i: number): number {
  return i <= 0 ? 0 : latencyFloorMs * 2 ** (i / subBuckets);
}

export class LatencyDigest {
  private readonly counts = new Float64Array(bucketsMax);
  count = 0;

  record(ms: number): void {
    this.counts[bucketOf(ms)]!++;
    this.count++;
  }

  sparse(): SparseCounts {
    const out: SparseCounts = [];
    for (let i = 0; i < bucketsMax; i++) if (this.counts[i]! > 0) out.push([i, this.counts[i]!]);
    return out;
  }
}

/** Sums sparse histograms (several nodes' readings). */
export function mergeCounts(parts: readonly SparseCounts[]): SparseCounts {
  const sum = new Map<number, number>();
  for (const part of parts) for (const [i, c] of part) sum.set(i, (sum.get(i) ?? 0) + c);
  return [...sum].filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]);
}

/** later - earlier: what was recorded between two readings of one cumulative histogram. */
export function subtractCounts(later: SparseCounts, earlier: SparseCounts | undefined): SparseCounts {
  if (!earlier) return later;
  const before = new Map(earlier);
  const out: SparseCounts = [];
  for (const [i, c] of later) {
    const d = c - (before.get(i) ?? 0);
    if (d > 0) out.push([i, d]);
  }
  return out;
}

export function totalOf(counts: SparseCounts): number {
  return counts.reduce((a, [, c]) => a + c, 0);
}

/**
 * The q-quantile (0 < q <= 1) in ms, interpolated linearly inside the bucket it falls in (in log
 * space, as the buckets are); undefined for an empty histogram.
 */
export function quantileMs(counts: SparseCounts, q: number): number | undefined {
  const total = totalOf(counts);
  if (total <= 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (const [i, c] of counts) {
    if (seen + c >= rank) {
      const within = c > 0 ? Math.min(1, Math.max(0, (rank - seen) / c)) : 0;
      if (i === 0) return latencyFloorMs * within;
      return latencyFloorMs * 2 ** ((i + within) / subBuckets);
    }
    seen += c;
  }
  return bucketLowerMs(counts[counts.length - 1]![0] + 1);
}
