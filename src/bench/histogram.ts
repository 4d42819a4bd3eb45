/**
 * A latency histogram in the manner of HdrHistogram, small enough to read in one sitting: values
 * below 2^linearBits are counted exactly; above, each power-of-two range [2^e, 2^(e+1)) is split
 * into 2^(linearBits-1) equal sub-buckets, so a bucket is never wider than 1/2^(linearBits-1) of
 * the values in it. With the default 8 bits that is 1/128, and a percentile (reported as the middle
 * of its bucket, clamped to the recorded min and max) is within 1/256 of the exact one.
 *
 * Values are non-negative numbers in whatever unit the caller chooses (the bench records
 * nanoseconds); fractions are truncated. Memory is fixed: one counter per bucket up to valueMax.
 */

export const linearBitsDefault = 8;
/** Values above this are counted in the top bucket (2^40 ns is over 18 minutes). */
export const histogramValueMaxDefault = 2 ** 40;

export interface HistogramSummary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

export class Histogram {
  private readonly counts: Float64Array;
  private readonly linearCount: number;
  private readonly subCount: number;
  private readonly subBits: number;
  private total = 0;
  private sum = 0;
  private minValue = Infinity;
  private maxValue = -Infinity;

  constructor(
    readonly linearBits = linearBitsDefault,
    readonly valueMax = histogramValueMaxDefault,
  ) {
    if (!Number.isInteger(linearBits) || linearBits < 2 || linearBits > 20) throw new RangeError(`linearBits must be 2..20, not ${linearBits}`);
    if (!(valueMax >= 2 ** linearBits) || valueMax > Number.MAX_SAFE_INTEGER) throw new RangeError(`valueMax must be 2^linearBits..2^53, not ${valueMax}`);
    this.linearCount = 2 ** linearBits;
    this.subBits = linearBits - 1;
    this.subCount = 2 ** this.subBits;
    this.counts = new Float64Array(this.indexOf(valueMax) + 1);
  }

  /** Adds `count` occurrences of `value`. */
  record(value: number, count = 1): void {
    if (!(value >= 0)) throw new RangeError(`a histogram records non-negative values, not ${value}`);
    const v = Math.min(Math.floor(value), this.valueMax);
    this.counts[this.indexOf(v)]! += count;
    this.total += count;
    this.sum += v * count;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
  }

  get count(): number {
    return this.total;
  }

  get min(): number {
    return this.total === 0 ? 0 : this.minValue;
  }

  get max(): number {
    return this.total === 0 ? 0 : this.maxValue;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /**
   * The value at percentile p (0..100) by nearest rank: the smallest recorded value that at least
   * p% of the values do not exceed, to within the bucket precision. 0 when nothing was recorded.
   */
  percentile(p: number): number {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`a percentile is 0..100, not ${p}`);
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const [low, high] = this.bucketRange(i);
        return Math.min(this.maxValue, Math.max(this.minValue, (low + high) / 2));
      }
    }
    return this.maxValue;
  }

  /** Adds every value of another histogram of the same shape. */
  merge(other: Histogram): void {
    if (other.linearBits !== this.linearBits || other.counts.length !== this.counts.length) {
      throw new RangeError('only histograms of the same shape merge');
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    if (other.total > 0) {
      this.minValue = Math.min(this.minValue, other.minValue);
      this.maxValue = Math.max(this.maxValue, other.maxValue);
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.minValue = Infinity;
    this.maxValue = -Infinity;
  }

  summary(): HistogramSummary {
    return {
      count: this.total,
      min: this.min,
      max: this.max,
      mean: this.mean,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
    };
  }

  /** The bucket of a whole value v in [0, valueMax]. */
  indexOf(v: number): number {
    if (v < this.linearCount) return v;
    const e = exponentOf(v);
    const width = 2 ** (e - this.subBits);
    return this.linearCount + (e - this.linearBits) * this.subCount + Math.floor((v - 2 ** e) / width);
  }

  /** The values [low, high] that bucket i holds. */
  bucketRange(i: number): [number, number] {
    if (i < this.linearCount) return [i, i];
    const octave = Math.floor((i - this.linearCount) / this.subCount);
    const sub = (i - this.linearCount) % this.subCount;
    const e = octave + this.linearBits;
    const width = 2 ** (e - this.subBits);
    const low = 2 ** e + sub * width;
    return [low, low + width - 1];
  }
}

/** floor(log2(v)) for a whole v ≥ 1, exact (Math.log2 alone may round across a power of two). */
function exponentOf(v: number): number {
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v) e--;
  else if (2 ** (e + 1) <= v) e++;
  return e;
}
