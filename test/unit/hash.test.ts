/**
 * The key hash (src/core/hash.ts): known FNV-1a 64 vectors, determinism, and an even spread of
 * random keys over Q = 64 partitions taken from the hash's top bits.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fmix64, fnv1a64, hash64, hash64Parts } from '../../src/core/hash.js';
import { partitionOf } from '../../src/core/ring.js';

const utf8 = new TextEncoder();
const hex = (h: bigint): string => h.toString(16).padStart(16, '0');

/** A small seeded PRNG (splitmix32) giving unsigned 32-bit integers. */
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A straightforward BigInt FNV-1a 64, to check the two-halves implementation against. */
function fnv1a64Reference(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & ((1n << 64n) - 1n);
  return h;
}

describe('fnv1a64', () => {
  it.each([
    ['', 'cbf29ce484222325'],
    ['a', 'af63dc4c8601ec8c'],
    ['foobar', '85944171f73967e8'],
  ])('matches the published vector for %j', (input, expected) => {
    expect(hex(fnv1a64(utf8.encode(input)))).toBe(expected);
  });

  it('agrees with a plain BigInt implementation on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(fnv1a64(bytes)).toBe(fnv1a64Reference(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('stays within 64 bits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const h = fnv1a64(bytes);
        expect(h >= 0n && h < 1n << 64n).toBe(true);
      }),
    );
  });
});

describe('hash64', () => {
  it('is fmix64 of fnv1a64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(hash64(bytes)).toBe(fmix64(fnv1a64(bytes)));
      }),
    );
  });

  it('is deterministic: equal bytes give equal hashes, whatever the buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        const copy = new Uint8Array(bytes);
        // The same bytes seen through an offset view of a larger buffer.
        const padded = new Uint8Array(bytes.length + 3);
        padded.set(bytes, 3);
        expect(hash64(copy)).toBe(hash64(bytes));
        expect(hash64(padded.subarray(3))).toBe(hash64(bytes));
        const h = hash64(bytes);
        expect(h >= 0n && h < 1n << 64n).toBe(true);
      }),
    );
  });

  it('spreads 64,000 random keys over Q = 64 partitions within 0.7x..1.3x of the fair share', () => {
    // fast-check picks the seed; the keys come from a plain PRNG, because fast-check's bias towards
    // small and repeated values would make a key set that is not random at all.
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const next = splitmix32(seed);
        const q = 64;
        const keyCount = 64_000;
        const counts = new Array<number>(q).fill(0);
        for (let i = 0; i < keyCount; i++) {
          const key = new Uint8Array(8 + (next() % 25));
          for (let b = 0; b < key.length; b++) key[b] = next() & 0xff;
          counts[Number(hash64(key) >> 58n)]!++;
        }
        const fair = keyCount / q;
        expect(Math.min(...counts)).toBeGreaterThanOrEqual(0.7 * fair);
        expect(Math.max(...counts)).toBeLessThanOrEqual(1.3 * fair);
      }),
      { numRuns: 5 },
    );
  });

  it('spreads sequential keys ("key-0" .. "key-63999") just as well', () => {
    const q = 64;
    const counts = new Array<number>(q).fill(0);
    for (let i = 0; i < 64_000; i++) counts[Number(hash64(utf8.encode(`key-${i}`)) >> 58n)]!++;
    for (const c of counts) {
      expect(c).toBeGreaterThanOrEqual(700);
      expect(c).toBeLessThanOrEqual(1300);
    }
  });
});

describe('hash64Parts and partitionOf without BigInt', () => {
  it('hash64Parts gives the same 64 bits as hash64 on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const h = hash64Parts(bytes);
        expect((BigInt(h.hi) << 32n) | BigInt(h.lo)).toBe(hash64(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('partitionOf keeps every key in the partition the BigInt formula gave it, for every Q', () => {
    // The formula partitionOf used before: the top log2(Q) bits of hash64. Existing data and
    // clients in other languages place keys by it, so it must not move.
    const reference = (key: Uint8Array, q: number): number => (q === 1 ? 0 : Number(hash64(key) >> (64n - BigInt(Math.log2(q)))));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 16 }), (key, bits) => {
        const q = 2 ** bits;
        expect(partitionOf(key, q)).toBe(reference(key, q));
      }),
      { numRuns: 2000 },
    );
    expect(partitionOf(utf8.encode('cart:1'), 64)).toBe(reference(utf8.encode('cart:1'), 64));
  });
});
