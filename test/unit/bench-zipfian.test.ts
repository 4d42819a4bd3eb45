import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/bench/random.js';
import {
  fnvhash64,
  ScrambledZipfianGenerator,
  scrambledRecord,
  UniformGenerator,
  zeta,
  ZipfianGenerator,
  zipfianConstant,
} from '../../src/bench/zipfian.js';

/** YCSB's Utils.fnvhash64 with Java long semantics, written with BigInt as the reference. */
function fnvhash64Reference(value: number): bigint {
  const mask = (1n << 64n) - 1n;
  let hash = 0xcbf29ce484222325n;
  let v = BigInt(value);
  for (let i = 0; i < 8; i++) {
    const octet = v & 0xffn;
    v >>= 8n;
    hash = ((hash ^ octet) * 1099511628211n) & mask;
  }
  const signed = BigInt.asIntN(64, hash);
  return signed < 0n && signed !== -(1n << 63n) ? -signed : BigInt.asUintN(64, signed);
}

function draw(gen: { next(): number }, count: number): number[] {
  return Array.from({ length: count }, () => gen.next());
}

function histogram(values: number[], size: number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (const v of values) counts[v]!++;
  return counts;
}

describe('random', () => {
  it('is deterministic for a seed and a stream, and differs across them', () => {
    const a = createRandom(1);
    const b = createRandom(1);
    const seqA = Array.from({ length: 100 }, () => a.nextUint32());
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(seqA);
    const c = createRandom(2);
    expect(Array.from({ length: 100 }, () => c.nextUint32())).not.toEqual(seqA);
    const d = createRandom(1, 1);
    expect(Array.from({ length: 100 }, () => d.nextUint32())).not.toEqual(seqA);
  });

  it('draws doubles in [0, 1) with a mean near 1/2', () => {
    const r = createRandom(7);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r.nextDouble();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
    }
    expect(outside).toBe(0);
    expect(sum / 100_000).toBeCloseTo(0.5, 2);
  });
});

describe('fnvhash64', () => {
  it("matches YCSB's fnvhash64 (Java long arithmetic) over small, large and edge values", () => {
    const r = createRandom(3);
    const values = [0, 1, 2, 255, 256, 65_535, 2 ** 32 - 1, 2 ** 32, 10_000_000_000, 2 ** 53 - 1];
    for (let i = 0; i < 2000; i++) values.push(Math.floor(r.nextDouble() * 10_000_000_001));
    for (const v of values) {
      const { hi, lo } = fnvhash64(v);
      expect((BigInt(hi) << 32n) | BigInt(lo), `value ${v}`).toBe(fnvhash64Reference(v));
    }
  });
});

describe('ZipfianGenerator', () => {
  it('is deterministic for a seed', () => {
    const a = draw(new ZipfianGenerator(createRandom(42), 1000), 1000);
    const b = draw(new ZipfianGenerator(createRandom(42), 1000), 1000);
    const c = draw(new ZipfianGenerator(createRandom(43), 1000), 1000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('draws rank 0 most often, with the zipfian frequencies', () => {
    const items = 1000;
    const n = 200_000;
    const counts = histogram(draw(new ZipfianGenerator(createRandom(1), items), n), items);
    expect(Math.max(...counts)).toBe(counts[0]);
    // P(rank k) = 1 / ((k+1)^theta * zeta(items, theta)).
    const z = zeta(items, zipfianConstant);
    expect(counts[0]! / n).toBeCloseTo(1 / z, 2);
    expect(counts[0]! / counts[1]!).toBeGreaterThan(1.8);
    expect(counts[0]! / counts[1]!).toBeLessThan(2.2);
    expect(counts[1]!).toBeGreaterThan(counts[9]!);
    expect(counts[9]!).toBeGreaterThan(counts[99]!);
  });

  it('stays within [0, items)', () => {
    for (const items of [1, 2, 3, 10, 12_345]) {
      const outside = draw(new ZipfianGenerator(createRandom(items), items), 20_000).filter((v) => !(Number.isInteger(v) && v >= 0 && v < items));
      expect(outside).toEqual([]);
    }
  });
});

describe('ScrambledZipfianGenerator', () => {
  it('is deterministic for a seed and stays within [0, records)', () => {
    for (const records of [1, 7, 1000, 1_000_000, 2 ** 31]) {
      const a = draw(new ScrambledZipfianGenerator(createRandom(5), records), 5000);
      expect(draw(new ScrambledZipfianGenerator(createRandom(5), records), 5000)).toEqual(a);
      expect(a.filter((v) => !(Number.isInteger(v) && v >= 0 && v < records))).toEqual([]);
    }
  });

  it('makes the record that rank 0 hashes to the most popular, not record 0', () => {
    const records = 1000;
    const counts = histogram(draw(new ScrambledZipfianGenerator(createRandom(9), records), 200_000), records);
    const hottest = counts.indexOf(Math.max(...counts));
    expect(hottest).toBe(scrambledRecord(0, records));
    // Skewed: the hottest record gets far more than a uniform share.
    expect(counts[hottest]! / 200_000).toBeGreaterThan(20 / records);
  });

  it('refuses record counts it cannot scramble into', () => {
    expect(() => new ScrambledZipfianGenerator(createRandom(1), 0)).toThrow(RangeError);
    expect(() => new ScrambledZipfianGenerator(createRandom(1), 2 ** 31 + 1)).toThrow(RangeError);
  });
});

describe('UniformGenerator', () => {
  it('spreads draws evenly over [0, records)', () => {
    const records = 100;
    const counts = histogram(draw(new UniformGenerator(createRandom(11), records), 100_000), records);
    for (const c of counts) {
      expect(c).toBeGreaterThan(850);
      expect(c).toBeLessThan(1150);
    }
  });
});
