/**
 * The ring (src/core/ring.ts): keys map to one partition in [0, Q), partitions refine as Q doubles,
 * the initial claim is balanced, and preference lists hold distinct nodes, start at the owner and
 * extend one another.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  claimInitial,
  isValidPartitionCount,
  ownershipCounts,
  partitionCountMax,
  partitionOf,
  preferenceList,
  ringNodes,
  type Ring,
} from '../../src/core/ring.js';

const log2QMax = Math.log2(partitionCountMax);

/** Q = 2^k for k in 0..16. */
const anyQ = fc.integer({ min: 0, max: log2QMax }).map((k) => 2 ** k);
/** Q in {8, 16, ..., 1024}. */
const moderateQ = fc.integer({ min: 3, max: 10 }).map((k) => 2 ** k);
const key = fc.uint8Array({ maxLength: 48 });
const nodeIds = (min: number, max: number) =>
  fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/), { minLength: min, maxLength: max });

/** A ring over 1..16 distinct nodes, with Q in {8..1024}. */
const ring: fc.Arbitrary<Ring> = fc.tuple(nodeIds(1, 16), moderateQ).map(([nodes, q]) => claimInitial(nodes, q));

describe('partitionOf', () => {
  it('maps every key to exactly one integer partition in [0, Q)', () => {
    fc.assert(
      fc.property(key, anyQ, (k, q) => {
        const p = partitionOf(k, q);
        expect(Number.isInteger(p)).toBe(true);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(q);
        expect(partitionOf(new Uint8Array(k), q)).toBe(p);
      }),
      { numRuns: 500 },
    );
  });

  it('is stable across powers of two: the partition at Q is the partition at 2Q halved', () => {
    fc.assert(
      fc.property(key, fc.integer({ min: 0, max: log2QMax - 1 }), (k, log2q) => {
        const q = 2 ** log2q;
        expect(partitionOf(k, 2 * q) >> 1).toBe(partitionOf(k, q));
      }),
      { numRuns: 500 },
    );
  });

  it('puts every key in partition 0 when Q = 1', () => {
    fc.assert(
      fc.property(key, (k) => {
        expect(partitionOf(k, 1)).toBe(0);
      }),
    );
  });
});

describe('isValidPartitionCount and claimInitial', () => {
  it('accepts exactly the powers of two from 1 to partitionCountMax', () => {
    for (let k = 0; k <= log2QMax; k++) expect(isValidPartitionCount(2 ** k)).toBe(true);
    for (const bad of [0, -1, -8, 3, 6, 12, 100, 1.5, 2 ** (log2QMax + 1), NaN, Infinity]) expect(isValidPartitionCount(bad)).toBe(false);
  });

  it('throws for an invalid Q', () => {
    const invalidQ = fc.oneof(
      fc.integer({ min: -1_000_000, max: 1_000_000 }).filter((q) => q < 1 || (q & (q - 1)) !== 0),
      fc.double({ noNaN: false }).filter((q) => !Number.isInteger(q)),
      fc.integer({ min: log2QMax + 1, max: 40 }).map((k) => 2 ** k),
    );
    fc.assert(
      fc.property(nodeIds(1, 5), invalidQ, (nodes, q) => {
        expect(() => claimInitial(nodes, q)).toThrow();
      }),
    );
  });

  it('throws for a ring with no nodes', () => {
    expect(() => claimInitial([], 8)).toThrow();
  });

  it('gives every partition an owner, and owned counts differ by at most 1 for 1..16 nodes and Q in 8..1024', () => {
    fc.assert(
      fc.property(nodeIds(1, 16), moderateQ, (nodes, q) => {
        const r = claimInitial(nodes, q);
        expect(r.q).toBe(q);
        expect(r.owners).toHaveLength(q);
        expect(r.owners.every((owner) => nodes.includes(owner))).toBe(true);
        const counts = ownershipCounts(r);
        const owning = Math.min(nodes.length, q);
        expect(counts.size).toBe(owning);
        const values = [...counts.values()];
        expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
        expect(values.reduce((a, b) => a + b, 0)).toBe(q);
        // Round-robin over the sorted nodes: when Q is smaller, the first Q of them own a partition.
        expect(ringNodes(r)).toEqual([...nodes].sort().slice(0, owning));
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order or repetition of the node list', () => {
    fc.assert(
      fc.property(nodeIds(1, 16), moderateQ, fc.infiniteStream(fc.nat()), (nodes, q, picks) => {
        const shuffled = [...nodes];
        const it = picks[Symbol.iterator]();
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = it.next().value! % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        expect(claimInitial([...shuffled, ...nodes], q)).toEqual(claimInitial(nodes, q));
      }),
    );
  });
});

describe('preferenceList', () => {
  it('holds min(n, nodeCount) distinct nodes of the ring for every partition', () => {
    fc.assert(
      fc.property(ring, fc.integer({ min: 1, max: 20 }), (r, n) => {
        const nodes = new Set(r.owners);
        const expectedLength = Math.min(n, nodes.size);
        for (let p = 0; p < r.q; p++) {
          const list = preferenceList(r, p, n);
          const ok = list.length === expectedLength && new Set(list).size === list.length && list.every((node) => nodes.has(node));
          if (!ok) expect({ p, list }).toEqual({ p, list: `${expectedLength} distinct nodes of the ring` });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('starts with the owner of the partition', () => {
    fc.assert(
      fc.property(ring, fc.integer({ min: 1, max: 20 }), (r, n) => {
        const firsts = Array.from({ length: r.q }, (_, p) => preferenceList(r, p, n)[0]);
        expect(firsts).toEqual(r.owners);
      }),
      { numRuns: 200 },
    );
  });

  it('is a prefix of every longer list for the same partition', () => {
    fc.assert(
      fc.property(ring, fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), fc.nat(), (r, a, b, pSeed) => {
        const p = pSeed % r.q;
        const [short, long] = a <= b ? [a, b] : [b, a];
        const shortList = preferenceList(r, p, short);
        const longList = preferenceList(r, p, long);
        expect(longList.slice(0, shortList.length)).toEqual(shortList);
      }),
      { numRuns: 500 },
    );
  });

  it('also holds distinct nodes, owner first, on rings that are not round-robin', () => {
    const arbitraryRing = fc
      .tuple(nodeIds(1, 8), moderateQ)
      .chain(([nodes, q]) => fc.array(fc.constantFrom(...nodes), { minLength: q, maxLength: q }).map((owners) => ({ q, owners })));
    fc.assert(
      fc.property(arbitraryRing, fc.integer({ min: 1, max: 10 }), (r, n) => {
        const expectedLength = Math.min(n, ringNodes(r).length);
        for (let p = 0; p < r.q; p++) {
          const list = preferenceList(r, p, n);
          const ok = list.length === expectedLength && new Set(list).size === list.length && list[0] === r.owners[p];
          if (!ok) expect({ p, list }).toEqual({ p, list: `${expectedLength} distinct nodes, ${r.owners[p]} first` });
        }
      }),
      { numRuns: 100 },
    );
  });

  it('walks clockwise and wraps around (example)', () => {
    const r = claimInitial(['c', 'a', 'b'], 8);
    expect(r.owners).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b']);
    expect(preferenceList(r, 0, 3)).toEqual(['a', 'b', 'c']);
    expect(preferenceList(r, 7, 3)).toEqual(['b', 'a', 'c']);
    expect(preferenceList(r, 6, 2)).toEqual(['a', 'b']);
    expect(preferenceList(r, 2, 5)).toEqual(['c', 'a', 'b']);
  });
});
