/**
 * When to hedge (issue 10; "The Tail at Scale", Dean and Barroso 2013): a request that has no
 * answer from its first node after a delay near the high tail of recent latency is sent to the
 * next node of the key's preference list as well, and the first good answer wins.
 *
 * HedgeDelay keeps a sliding window of the latest answer latencies of one kind of request and
 * derives the delay from a quantile of it (p95 for reads, p99 for writes: a hedged write can leave
 * an extra sibling, so writes hedge less eagerly), clamped between a floor (below it hedging only
 * burns CPU on loopback jitter) and a cap (above it a paused node would cost a request more than the
 * cap, which is what hedging is there to prevent). Until the window holds a few samples it uses the
 * initial delay. The quantile is recomputed every few samples, not per request: sorting the window
 * costs tens of microseconds.
 *
 * HedgeBudget keeps hedges to a share of requests, so that a cluster that is slow because it is
 * saturated is not made slower by a storm of duplicate requests: each request earns a fraction of a
 * token, each hedge sent before the cap spends one. Without a token a request hedges only at the cap.
 */

export interface HedgeDelayOptions {
  /** The quantile of recent latencies the delay follows (0.95: about one request in 20 hedges). */
  quantile: number;
  floorMs: number;
  capMs: number;
  /** The delay until samplesMin latencies have been seen. */
  initialMs: number;
  /** Latencies kept: the window slides over the newest ones. */
  windowSize: number;
  samplesMin: number;
  /** The quantile is recomputed after this many new samples. */
  recomputeEvery: number;
}

export const hedgeDelayDefaults: HedgeDelayOptions = {
  quantile: 0.95,
  floorMs: 2,
  capMs: 250,
  initialMs: 10,
  windowSize: 512,
  samplesMin: 16,
  recomputeEvery: 32,
};

/** The nearest-rank quantile q (0 < q ≤ 1) of some numbers; NaN when there are none. */
export function quantileOf(samples: ArrayLike<number>, q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export class HedgeDelay {
  readonly options: HedgeDelayOptions;
  private readonly window: Float64Array;
  private count = 0;
  private next = 0;
  private sinceRecompute = 0;
  private current: number;

  constructor(options: Partial<HedgeDelayOptions> = {}) {
    this.options = { ...hedgeDelayDefaults, ...options };
    const o = this.options;
    if (!(o.quantile > 0 && o.quantile <= 1)) throw new Error(`hedge quantile must be in (0, 1], got ${o.quantile}`);
    if (!(o.floorMs >= 0 && o.capMs >= o.floorMs)) throw new Error(`hedge delay needs 0 ≤ floor ≤ cap, got ${o.floorMs} and ${o.capMs}`);
    if (!(Number.isInteger(o.windowSize) && o.windowSize >= 1)) throw new Error(`hedge window must hold at least one sample, got ${o.windowSize}`);
    this.window = new Float64Array(o.windowSize);
    this.current = this.clamp(o.initialMs);
  }

  /** One answer's latency in ms. Negative or non-finite figures (a clock step) are ignored. */
  record(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) return;
    this.window[this.next] = latencyMs;
    this.next = (this.next + 1) % this.window.length;
    if (this.count < this.window.length) this.count++;
    if (++this.sinceRecompute >= this.options.recomputeEvery || this.count === this.options.samplesMin) this.recompute();
  }

  /** How long to wait for an answer before hedging. */
  delayMs(): number {
    return this.current;
  }

  /** Latencies in the window now. */
  samples(): number {
    return this.count;
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    if (this.count < this.options.samplesMin) return;
    this.current = this.clamp(quantileOf(this.window.subarray(0, this.count), this.options.quantile));
  }

  private clamp(ms: number): number {
    return Math.min(this.options.capMs, Math.max(this.options.floorMs, ms));
  }
}

export interface HedgeBudgetOptions {
  /** Tokens a request earns: the share of requests that may hedge before the cap. */
  ratio: number;
  /** Tokens kept at most: how large a burst of hedges may be. */
  burst: number;
}

export const hedgeBudgetDefaults: HedgeBudgetOptions = { ratio: 0.1, burst: 20 };

export class HedgeBudget {
  readonly options: HedgeBudgetOptions;
  private tokens: number;

  constructor(options: Partial<HedgeBudgetOptions> = {}) {
    this.options = { ...hedgeBudgetDefaults, ...options };
    this.tokens = this.options.burst;
  }

  /** A request started. */
  earn(): void {
    this.tokens = Math.min(this.options.burst, this.tokens + this.options.ratio);
  }

  /** True (and one token spent) when a hedge may go now. */
  take(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
