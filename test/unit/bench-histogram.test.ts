import { describe, expect, it } from 'vitest';
import { Histogram } from '../../src/bench/histogram.js';
import { createRandom } from '../../src/bench/random.js';

/** Nearest-rank percentile of a sorted array, the definition the histogram follows. */
function exactPercentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

const percentiles = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100];

describe('Histogram', () => {
  it('gives percentiles within its precision (1/256) of the exact ones, over nine decades', () => {
    const r = createRandom(1);
    for (const size of [1, 10, 1000, 100_000]) {
      const h = new Histogram();
      const values: number[] = [];
      for (let i = 0; i < size; i++) {
        // Log-uniform from 1 to 1e9, whole numbers.
        const v = Math.floor(Math.pow(10, r.nextDouble() * 9));
        values.push(v);
        h.record(v);
      }
      values.sort((a, b) => a - b);
      for (const p of percentiles) {
        const exact = exactPercentile(values, p);
        expect(Math.abs(h.percentile(p) - exact), `size ${size}, p${p}: ${h.percentile(p)} vs ${exact}`).toBeLessThanOrEqual(exact / 256 + 0.5);
      }
      expect(h.count).toBe(size);
      expect(h.min).toBe(values[0]);
      expect(h.max).toBe(values[values.length - 1]);
      expect(h.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / size, 6);
    }
  });

  it('is exact below 2^linearBits', () => {
    const h = new Histogram();
    const values = Array.from({ length: 255 }, (_, i) => i + 1);
    for (const v of values) h.record(v);
    for (const p of percentiles) expect(h.percentile(p)).toBe(exactPercentile(values, p));
  });

  it('has contiguous buckets that cover every value once', () => {
    const h = new Histogram(4, 2 ** 20);
    let expectedLow = 0;
    for (let i = 0; i <= h.indexOf(2 ** 20); i++) {
      const [low, high] = h.bucketRange(i);
      expect(low).toBe(expectedLow);
      expect(high).toBeGreaterThanOrEqual(low);
      expect(h.indexOf(low)).toBe(i);
      expect(h.indexOf(high)).toBe(i);
      expectedLow = high + 1;
    }
  });

  it('merges into the same result as recording everything in one', () => {
    const r = createRandom(2);
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 0; i < 10_000; i++) {
      const v = Math.floor(r.nextDouble() * 1e7);
      (i % 3 === 0 ? a : b).record(v);
      all.record(v);
    }
    a.merge(b);
    expect(a.summary()).toEqual(all.summary());
  });

  it('reports zeros when empty, clamps huge values, and refuses negative ones', () => {
    const h = new Histogram();
    expect(h.summary()).toEqual({ count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0 });
    h.record(2 ** 60);
    expect(h.max).toBe(h.valueMax);
    expect(() => h.record(-1)).toThrow(RangeError);
    expect(() => h.percentile(101)).toThrow(RangeError);
  });

  it('counts fractions by their whole part and accepts counts', () => {
    const h = new Histogram();
    h.record(10.9, 3);
    expect(h.count).toBe(3);
    expect(h.percentile(50)).toBe(10);
  });
});
