/**
 * Phi-accrual failure detection (Hayashibara et al., "The φ Accrual Failure Detector", 2004), in
 * the form Akka and Cassandra use: phi is how surprised we are that no heartbeat has arrived for
 * `elapsed` ms, given the intervals seen so far, on a log10 scale (phi 8 ≈ one false suspicion in
 * 10^8). Intervals are modelled as a normal distribution whose mean is padded by an acceptable pause
 * and whose deviation never falls below a floor, so a steady sender is not convicted by one late
 * packet.
 *
 * Pure: arrival times come in as numbers (the runtime stamps them from the Clock port).
 */
export interface ArrivalWindow {
  /** Recent inter-arrival intervals in ms, oldest first, at most `intervalsMax`. */
  intervals: number[];
  /** When the last heartbeat arrived, or null before the first. */
  last: number | null;
}

export interface PhiOptions {
  /** Intervals remembered per member. */
  intervalsMax: number;
  /** Expected interval before any was measured (the gossip round). */
  firstIntervalMs: number;
  /** Padding added to the mean: pauses this long are normal (GC, a busy event loop). */
  acceptablePauseMs: number;
  /** The deviation never counts as smaller than this. */
  minStdDeviationMs: number;
}

export const emptyWindow: ArrivalWindow = { intervals: [], last: null };

export function recordArrival(w: ArrivalWindow, now: number, opts: PhiOptions): ArrivalWindow {
  if (w.last === null) return { intervals: [], last: now };
  const interval = Math.max(0, now - w.last);
  const intervals = w.intervals.length >= opts.intervalsMax ? [...w.intervals.slice(1), interval] : [...w.intervals, interval];
  return { intervals, last: now };
}

export function phi(w: ArrivalWindow, now: number, opts: PhiOptions): number {
  if (w.last === null) return 0;
  const elapsed = Math.max(0, now - w.last);
  const n = w.intervals.length;
  const mean = n === 0 ? opts.firstIntervalMs : w.intervals.reduce((a, b) => a + b, 0) / n;
  const variance = n === 0 ? 0 : w.intervals.reduce((a, b) => a + (b - mean) * (b - mean), 0) / n;
  const std = Math.max(Math.sqrt(variance), opts.minStdDeviationMs);
  const y = (elapsed - (mean + opts.acceptablePauseMs)) / std;
  // Logistic approximation of the normal CDF's tail (Bowling et al.), as in Akka.
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const p = elapsed > mean + opts.acceptablePauseMs ? e / (1 + e) : 1 - 1 / (1 + e);
  return -Math.log10(Math.max(p, 1e-300));
}
