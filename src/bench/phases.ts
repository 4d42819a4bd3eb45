/**
 * What a fault does to the operations of a bench run, measured from the client's side: the run's
 * measured window is cut into three phases, before the fault, during it (from the kill or pause to
 * the restart or resume) and after it, and every operation is counted in the phase in which it
 * ran: an operation that was in flight at any moment of the fault counts in "during" (one that was
 * sent just before a kill and hung until its deadline, seconds after the restart, is a failure of
 * the fault, not of the quiet time before or after it); the others count before or after.
 *
 * Per phase and operation: successes, failures, how many of the failures were timeouts (TIMEOUT,
 * which means "unknown"), the error codes, and p50/p99 of the successes. Over the whole window and
 * per operation: the longest gap with no successful operation, which is the figure that says
 * whether the store stayed writable (and readable) while a node was gone.
 *
 * Times are performance.now() milliseconds. Completions arrive in event-loop order, so their
 * timestamps only grow and the gaps can be kept as the operations end, without storing them.
 */
import { Histogram } from './histogram.js';
import { errorCode } from './target.js';
import type { OpName } from './workload.js';

export type PhaseName = 'before' | 'during' | 'after';
export const phaseNames: readonly PhaseName[] = ['before', 'during', 'after'];

/** Error codes kept per phase and operation; the rest are counted under OTHER. */
export const phaseErrorCodesMax = 16;
/** The longest window the per-second success counts cover (the bench's longest duration). */
export const successSecondsMax = 3600;

export interface PhaseOpResult {
  ok: number;
  failed: number;
  /** Of the failures: those that ran out of time (the outcome of a timed-out write is unknown). */
  timedOut: number;
  errorsByCode: Record<string, number>;
  /** Of the successes, in milliseconds. */
  latencyMs: { p50: number; p99: number; max: number };
}

export interface PhaseResult {
  /** Where the phase starts and ends, in ms from the start of the measured window. */
  fromMs: number;
  toMs: number;
  perOp: Partial<Record<OpName, PhaseOpResult>>;
}

export interface GapResult {
  /** The longest time with no successful operation of this kind, in ms. */
  longestMs: number;
  /** Where that gap starts and ends, in ms from the start of the measured window. */
  fromMs: number;
  toMs: number;
}

export interface PhaseReport {
  phases: Record<PhaseName, PhaseResult>;
  /** Per operation kind, over the whole measured window (its start and end count as edges). */
  gaps: Partial<Record<OpName, GapResult>>;
  /** Successes in each second of the measured window, per operation kind. */
  successesPerSecond: Partial<Record<OpName, number[]>>;
}

/** Whether an error code means the operation ran out of time (ringkv TIMEOUT, nats.js TimeoutError). */
export function isTimeoutCode(code: string): boolean {
  return /timeout/i.test(code);
}

interface Cell {
  ok: number;
  failed: number;
  timedOut: number;
  errors: Map<string, number>;
  latency: Histogram;
}

function newCell(): Cell {
  return { ok: 0, failed: 0, timedOut: 0, errors: new Map(), latency: new Histogram() };
}

interface Gap {
  lastOkAt: number;
  longest: number;
  from: number;
  to: number;
}

export class PhaseRecorder {
  private startAt: number | undefined;
  private faultAt: number | undefined;
  private recoverAt: number | undefined;
  private readonly cells = new Map<PhaseName, Map<OpName, Cell>>();
  private readonly gaps = new Map<OpName, Gap>();
  private readonly perSecond = new Map<OpName, number[]>();

  constructor(private readonly ops: readonly OpName[]) {
    for (const phase of phaseNames) this.cells.set(phase, new Map(ops.map((op) => [op, newCell()])));
    for (const op of ops) this.perSecond.set(op, []);
  }

  /** The measured window starts: gaps count from here. */
  start(at: number): void {
    this.startAt = at;
    for (const op of this.ops) this.gaps.set(op, { lastOkAt: at, longest: 0, from: at, to: at });
  }

  /** The fault was applied (the kill or stop signal sent). */
  faultApplied(at: number): void {
    this.faultAt ??= at;
  }

  /** The fault was lifted (the node restarted or resumed). */
  recovered(at: number): void {
    if (this.faultAt !== undefined) this.recoverAt ??= at;
  }

  /** The phase of an operation that ran from t0 to t1 (called when it ends, at t1). */
  phaseOf(t0: number, t1: number): PhaseName {
    if (this.faultAt === undefined || t1 < this.faultAt) return 'before';
    if (this.recoverAt === undefined || t0 < this.recoverAt) return 'during';
    return 'after';
  }

  /** One measured operation ended at t1 (it started at t0); `err` set when it failed. */
  record(op: OpName, t0: number, t1: number, err?: unknown): void {
    if (this.startAt === undefined) return;
    const cell = this.cells.get(this.phaseOf(t0, t1))?.get(op);
    if (!cell) return;
    if (err === undefined) {
      cell.ok++;
      cell.latency.record(Math.max(0, t1 - t0) * 1e6);
      const gap = this.gaps.get(op)!;
      this.noteSuccess(gap, t1);
      const second = Math.floor((t1 - this.startAt) / 1000);
      if (second >= 0 && second < successSecondsMax) {
        const counts = this.perSecond.get(op)!;
        while (counts.length <= second) counts.push(0);
        counts[second]!++;
      }
    } else {
      let code = errorCode(err);
      cell.failed++;
      if (isTimeoutCode(code)) cell.timedOut++;
      if (!cell.errors.has(code) && cell.errors.size >= phaseErrorCodesMax) code = 'OTHER';
      cell.errors.set(code, (cell.errors.get(code) ?? 0) + 1);
    }
  }

  private noteSuccess(gap: Gap, at: number): void {
    if (at - gap.lastOkAt > gap.longest) {
      gap.longest = at - gap.lastOkAt;
      gap.from = gap.lastOkAt;
      gap.to = at;
    }
    if (at > gap.lastOkAt) gap.lastOkAt = at;
  }

  /** The report, with the window ending at `endAt` (a gap still open then counts up to it). */
  report(endAt: number): PhaseReport {
    const start = this.startAt ?? endAt;
    const rel = (t: number) => Math.round((t - start) * 10) / 10;
    const faultAt = this.faultAt ?? endAt;
    const recoverAt = this.recoverAt ?? endAt;
    const bounds: Record<PhaseName, [number, number]> = {
      before: [start, Math.min(faultAt, endAt)],
      during: [Math.min(faultAt, endAt), Math.min(recoverAt, endAt)],
      after: [Math.min(recoverAt, endAt), endAt],
    };
    const phases = {} as Record<PhaseName, PhaseResult>;
    for (const phase of phaseNames) {
      const perOp: Partial<Record<OpName, PhaseOpResult>> = {};
      for (const [op, cell] of this.cells.get(phase)!) perOp[op] = summarise(cell);
      phases[phase] = { fromMs: rel(bounds[phase][0]), toMs: rel(bounds[phase][1]), perOp };
    }
    const gaps: Partial<Record<OpName, GapResult>> = {};
    const successesPerSecond: Partial<Record<OpName, number[]>> = {};
    for (const op of this.ops) {
      const g = { ...(this.gaps.get(op) ?? { lastOkAt: start, longest: 0, from: start, to: start }) };
      // The time from the last success to the window's end is a gap too (a store that stopped
      // answering for good has one that long).
      this.noteSuccess(g, Math.max(endAt, g.lastOkAt));
      gaps[op] = { longestMs: Math.round(g.longest * 10) / 10, fromMs: rel(g.from), toMs: rel(g.to) };
      // Whole seconds of the window, rounded: a 5 s window that ends a millisecond late has 5, not a
      // sixth bucket holding that millisecond's few successes.
      const seconds = Math.max(0, Math.min(successSecondsMax, Math.round((endAt - start) / 1000)));
      const counts = [...this.perSecond.get(op)!].slice(0, seconds);
      while (counts.length < seconds) counts.push(0);
      successesPerSecond[op] = counts;
    }
    return { phases, gaps, successesPerSecond };
  }
}

function summarise(cell: Cell): PhaseOpResult {
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    ok: cell.ok,
    failed: cell.failed,
    timedOut: cell.timedOut,
    errorsByCode: Object.fromEntries(cell.errors),
    latencyMs: cell.ok > 0 ? { p50: ms(cell.latency.percentile(50)), p99: ms(cell.latency.percentile(99)), max: ms(cell.latency.summary().max) } : { p50: 0, p99: 0, max: 0 },
  };
}
