/**
 * The client's hedge delay (src/client/hedge-delay.ts): a clamped quantile of a sliding window of
 * recent latencies, and the budget that keeps hedges to a share of requests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HedgeBudget, HedgeDelay, quantileOf } from '../../src/client/hedge-delay.js';

describe('quantileOf', () => {
  it('is the nearest-rank quantile: a sample, with at least q of the samples at or below it', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (xs, q) => {
        const v = quantileOf(xs, q);
        expect(xs).toContain(v);
        const atOrBelow = xs.filter((x) => x <= v).length;
        const below = xs.filter((x) => x < v).length;
        expect(atOrBelow).toBeGreaterThanOrEqual(Math.ceil(q * xs.length));
        expect(below).toBeLessThan(Math.max(1, Math.ceil(q * xs.length)));
      }),
    );
  });

  it('knows simple cases', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantileOf(xs, 0.95)).toBe(95);
    expect(quantileOf(xs, 0.99)).toBe(99);
    expect(quantileOf(xs, 1)).toBe(100);
    expect(quantileOf([], 0.5)).toBeNaN();
  });
});

describe('HedgeDelay', () => {
  it('uses the initial delay until it has seen enough latencies', () => {
    const d = new HedgeDelay({ initialMs: 10, samplesMin: 16, floorMs: 1, capMs: 100 });
    for (let i = 0; i < 15; i++) d.record(50);
    expect(d.delayMs()).toBe(10);
    d.record(50);
    expect(d.delayMs()).toBe(50);
  });

  it('follows the quantile of the window, clamped between floor and cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 2000, noNaN: true }), { minLength: 64, maxLength: 600 }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: 20, max: 500, noNaN: true }),
        (latencies, floorMs, capMs) => {
          const d = new HedgeDelay({ quantile: 0.95, floorMs, capMs, windowSize: 128, samplesMin: 16, recomputeEvery: 1 });
          latencies.forEach((l) => d.record(l));
          const window = latencies.slice(-128);
          const expected = Math.min(capMs, Math.max(floorMs, quantileOf(window, 0.95)));
          expect(d.delayMs()).toBe(expected);
          expect(d.delayMs()).toBeGreaterThanOrEqual(floorMs);
          expect(d.delayMs()).toBeLessThanOrEqual(capMs);
        },
      ),
    );
  });

  it('slides: old latencies leave the window, so the delay adapts when the cluster speeds up or slows down', () => {
    const d = new HedgeDelay({ quantile: 0.95, floorMs: 1, capMs: 1000, windowSize: 100, samplesMin: 10, recomputeEvery: 10 });
    for (let i = 0; i < 100; i++) d.record(200);
    expect(d.delayMs()).toBe(200);
    for (let i = 0; i < 100; i++) d.record(3);
    expect(d.delayMs()).toBe(3);
    for (let i = 0; i < 100; i++) d.record(2000);
    expect(d.delayMs()).toBe(1000);
  });

  it('ignores figures that are no latency (negative, NaN, infinite)', () => {
    const d = new HedgeDelay({ samplesMin: 1, recomputeEvery: 1, floorMs: 0, capMs: 100 });
    d.record(5);
    d.record(-1);
    d.record(Number.NaN);
    d.record(Number.POSITIVE_INFINITY);
    expect(d.samples()).toBe(1);
    expect(d.delayMs()).toBe(5);
  });

  it('refuses nonsense settings', () => {
    expect(() => new HedgeDelay({ quantile: 0 })).toThrow();
    expect(() => new HedgeDelay({ floorMs: 10, capMs: 5 })).toThrow();
    expect(() => new HedgeDelay({ windowSize: 0 })).toThrow();
  });
});

describe('HedgeBudget', () => {
  it('lets about ratio of requests hedge once its burst is spent', () => {
    const b = new HedgeBudget({ ratio: 0.1, burst: 5 });
    let hedges = 0;
    for (let i = 0; i < 1000; i++) {
      b.earn();
      if (b.take()) hedges++;
    }
    // 5 from the burst, then one per ten requests.
    expect(hedges).toBeGreaterThanOrEqual(100);
    expect(hedges).toBeLessThanOrEqual(106);
  });

  it('never lets more than the burst hedge at once', () => {
    const b = new HedgeBudget({ ratio: 0.5, burst: 3 });
    for (let i = 0; i < 100; i++) b.earn();
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
  });
});
