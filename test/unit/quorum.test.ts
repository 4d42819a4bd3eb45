/**
 * Quorum parameters (src/core/quorum.ts): quorumProblem accepts exactly the triples with
 * 1 <= r, w <= n <= nMax, and explains every other one in a sentence.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hasQuorum, quorumDefault, quorumProblem } from '../../src/core/quorum.js';

const isWhole = (x: number): boolean => Number.isInteger(x);
const valid = (n: number, r: number, w: number, nMax: number): boolean =>
  [n, r, w].every(isWhole) && r >= 1 && w >= 1 && r <= n && w <= n && n <= nMax;

/** Mostly small integers around the boundaries, sometimes something that is not a whole number. */
const param = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -2, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0.5, 2.5, -0) },
  { weight: 1, arbitrary: fc.double() },
);

describe('quorumProblem', () => {
  it('accepts exactly the triples with 1 <= r,w <= n <= nMax', () => {
    fc.assert(
      fc.property(param, param, param, fc.integer({ min: 1, max: 10 }), (n, r, w, nMax) => {
        const problem = quorumProblem({ n, r, w }, nMax);
        if (valid(n, r, w, nMax)) expect(problem).toBeNull();
        else {
          expect(typeof problem).toBe('string');
          expect(problem!.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every valid triple for small nMax, exhaustively', () => {
    for (let nMax = 1; nMax <= 7; nMax++)
      for (let n = 0; n <= nMax + 1; n++)
        for (let r = 0; r <= n + 1; r++)
          for (let w = 0; w <= n + 1; w++) {
            expect(quorumProblem({ n, r, w }, nMax) === null).toBe(valid(n, r, w, nMax));
          }
  });

  it('accepts the default for any nMax >= 3 (example)', () => {
    expect(quorumProblem(quorumDefault, 3)).toBeNull();
    expect(quorumProblem(quorumDefault, 2)).toMatch(/n must be at most 2/);
    expect(quorumProblem({ n: 3, r: 4, w: 1 }, 5)).toMatch(/^r /);
    expect(quorumProblem({ n: 3, r: 1, w: 0 }, 5)).toMatch(/^w /);
  });
});

describe('hasQuorum', () => {
  it('is true exactly when answered >= needed', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.nat(20), (answered, needed) => {
        expect(hasQuorum(answered, needed)).toBe(answered >= needed);
      }),
    );
  });
});
