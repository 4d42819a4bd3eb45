/**
 * Key choice for the YCSB workloads, as YCSB's core package makes it:
 *
 * - ZipfianGenerator: Gray et al., "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD
 *   1994), the algorithm of YCSB's ZipfianGenerator: item i (from 0) is drawn with probability
 *   proportional to 1/(i+1)^theta, so item 0 is the most popular. O(1) per draw after an O(n) zeta
 *   sum at construction.
 * - ScrambledZipfianGenerator: YCSB's default for `requestdistribution=zipfian`. It draws from a
 *   zipfian over 10^10 items with theta 0.99 (its zeta precomputed by YCSB as 26.46902820178302)
 *   and maps the item to a record with FNV-1a-64 modulo the record count, so that the popular
 *   records are spread over the key space instead of being the first ones.
 * - UniformGenerator: every record equally likely.
 *
 * All of them draw from a seeded Random, so a seed fixes the sequence.
 */
import type { Random } from './random.js';

export interface KeyChooser {
  /** A record number in [0, records). */
  next(): number;
}

/** YCSB's zipfian constant. */
export const zipfianConstant = 0.99;
/** YCSB's ScrambledZipfianGenerator draws from this many items, then hashes into the records. */
export const scrambledItemCount = 10_000_000_000;
/** zeta(scrambledItemCount + 1, 0.99), precomputed by YCSB (ScrambledZipfianGenerator.ZETAN). */
export const scrambledZetan = 26.46902820178302;
/** The most records a generator accepts: the scrambling modulo works on 32-bit halves. */
export const recordCountMax = 2 ** 31;

const two32 = 0x1_0000_0000;

/** zeta(n, theta) = sum over i = 1..n of 1 / i^theta. */
export function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

/** Gray et al.'s zipfian over [0, items): item 0 most popular. */
export class ZipfianGenerator implements KeyChooser {
  private readonly alpha: number;
  private readonly eta: number;
  private readonly half: number;

  constructor(
    private readonly random: Random,
    private readonly items: number,
    private readonly theta = zipfianConstant,
    private readonly zetan = zeta(items, theta),
  ) {
    if (!(items >= 1)) throw new RangeError(`a zipfian needs at least one item, not ${items}`);
    const zeta2theta = zeta(2, theta);
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - Math.pow(2 / items, 1 - theta)) / (1 - zeta2theta / zetan);
    this.half = 1 + Math.pow(0.5, theta);
  }

  next(): number {
    const u = this.random.nextDouble();
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < this.half) return Math.min(1, this.items - 1);
    const ret = Math.floor(this.items * Math.pow(this.eta * u - this.eta + 1, this.alpha));
    // Float rounding can reach `items` for u close to 1.
    return Math.min(ret, this.items - 1);
  }
}

/**
 * YCSB's Utils.fnvhash64 of a non-negative integer below 2^53: FNV-1a 64 over its 8 little-endian
 * bytes, then Java's Math.abs of the signed result. Returned as 32-bit halves.
 */
export function fnvhash64(value: number): { hi: number; lo: number } {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  let vLo = value >>> 0;
  let vHi = Math.floor(value / two32) >>> 0;
  for (let i = 0; i < 8; i++) {
    const octet = vLo & 0xff;
    vLo = ((vLo >>> 8) | ((vHi & 0xff) << 24)) >>> 0;
    vHi = vHi >>> 8;
    lo = (lo ^ octet) >>> 0;
    // h * (2^40 + 0x1b3) modulo 2^64, in halves small enough to stay exact in doubles.
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / two32);
    hi = (hi * 0x1b3 + carry + lo * 0x100) % two32;
    lo = loMul % two32;
  }
  if (hi >= 0x8000_0000) {
    // Java's Math.abs of a negative long: two's complement negation. Long.MIN_VALUE stays as it is
    // (and is then read as unsigned, which keeps the record number in range).
    lo = (two32 - lo) % two32;
    hi = (two32 - hi - (lo === 0 ? 0 : 1)) % two32;
  }
  return { hi, lo };
}

/** (hi * 2^32 + lo) mod n, exactly, for n ≤ 2^31. */
function mod64(hi: number, lo: number, n: number): number {
  let r = hi % n;
  r = (r * 0x10000) % n;
  r = (r * 0x10000) % n;
  return (r + lo) % n;
}

/** YCSB's ScrambledZipfianGenerator over [0, records). */
export class ScrambledZipfianGenerator implements KeyChooser {
  private readonly zipfian: ZipfianGenerator;

  constructor(
    random: Random,
    private readonly records: number,
  ) {
    checkRecords(records);
    // YCSB builds it as ZipfianGenerator(0, ITEM_COUNT): ITEM_COUNT + 1 items.
    this.zipfian = new ZipfianGenerator(random, scrambledItemCount + 1, zipfianConstant, scrambledZetan);
  }

  next(): number {
    return scrambledRecord(this.zipfian.next(), this.records);
  }
}

/** The record that the zipfian item `item` lands on among `records`. */
export function scrambledRecord(item: number, records: number): number {
  const { hi, lo } = fnvhash64(item);
  return mod64(hi, lo, records);
}

export class UniformGenerator implements KeyChooser {
  constructor(
    private readonly random: Random,
    private readonly records: number,
  ) {
    checkRecords(records);
  }

  next(): number {
    return this.random.nextInt(this.records);
  }
}

export type Distribution = 'zipfian' | 'uniform';

export function createKeyChooser(distribution: Distribution, random: Random, records: number): KeyChooser {
  return distribution === 'zipfian' ? new ScrambledZipfianGenerator(random, records) : new UniformGenerator(random, records);
}

function checkRecords(records: number): void {
  if (!Number.isSafeInteger(records) || records < 1 || records > recordCountMax) {
    throw new RangeError(`the record count must be a whole number from 1 to ${recordCountMax}, not ${records}`);
  }
}
