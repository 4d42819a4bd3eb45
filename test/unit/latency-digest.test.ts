/**
 * The dashboard's latency histogram: quantiles read from it are within a bucket's width (about
 * 9 %) of the exact ones, merging is addition, and subtracting two cumulative readings gives what
 * happened between them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketOf, LatencyDigest, latencyFloorMs, mergeCounts, quantileMs, subBuckets, subtractCounts, totalOf } from '../../src/server/latency-digest.js';

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

const bucketRatio = 2 ** (1 / subBuckets);

describe('LatencyDigest', () => {
  it('reads p50 and p99 within one bucket of the exact values', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.05, max: 20_000, noNaN: true }), { minLength: 1, maxLength: 400 }), fc.constantFrom(0.5, 0.9, 0.99), (samples, q) => {
        const d = new LatencyDigest();
        for (const s of samples) d.record(s);
        const exact = exactQuantile(samples.slice().sort((a, b) => a - b), q);
        const read = quantileMs(d.sparse(), q)!;
        expect(read).toBeGreaterThanOrEqual(exact / bucketRatio - 1e-9);
        expect(read).toBeLessThanOrEqual(exact * bucketRatio + 1e-9);
      }),
    );
  });

  it('is not a bucket bound: a tight cluster of samples reads as its value', () => {
    const d = new LatencyDigest();
    for (let i = 0; i < 1000; i++) d.record(3.7);
    const p50 = quantileMs(d.sparse(), 0.5)!;
    expect(Math.abs(p50 - 3.7) / 3.7).toBeLessThan(bucketRatio - 1);
  });

  it('merges by addition and subtracts cumulative readings', () => {
    const a = new LatencyDigest();
    const b = new LatencyDigest();
    for (const ms of [0.2, 1, 1, 5]) a.record(ms);
    const before = a.sparse();
    for (const ms of [7, 7, 300]) a.record(ms);
    for (const ms of [0.001, 2]) b.record(ms);
    const between = subtractCounts(a.sparse(), before);
    expect(totalOf(between)).toBe(3);
    expect(quantileMs(between, 1)!).toBeGreaterThan(250);
    const merged = mergeCounts([a.sparse(), b.sparse()]);
    expect(totalOf(merged)).toBe(9);
    expect(merged.find(([i]) => i === bucketOf(0.001))![1]).toBe(1);
    expect(bucketOf(0.001)).toBe(0);
    expect(quantileMs(merged, 1 / 9)!).toBeLessThanOrEqual(latencyFloorMs);
    expect(quantileMs([], 0.5)).toBeUndefined();
  });
});
