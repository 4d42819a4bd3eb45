/**
 * SimClock: one virtual clock for a whole simulated cluster (DESIGN.md §4). Nothing here reads real
 * time or uses a real timer: time moves only when the run loop takes the next timer off the queue.
 *
 * Contract (src/ports/clock.ts): callbacks never run synchronously inside setTimeout; timers with
 * equal deadlines run in the order they were set (a sequence number breaks ties); clearTimeout of a
 * fired or unknown handle is a no-op.
 *
 * Between two timers the run loop drains the microtask queue: createNode delivers to its own replica
 * with queueMicrotask, and store commits resolve promises, so one timer can start a chain of promise
 * callbacks. JavaScript has no way to ask whether the microtask queue is empty, so the loop awaits
 * resolved promises until `idleTurns` turns in a row pass with no sign of activity (a timer set or
 * cleared, or a `touch()` from the network, a store or a client). Microtask order is deterministic,
 * so even a chain longer than that only runs later, never differently from one run to the next.
 *
 * `view()` hands a node its own Clock on the shared timeline; crashing the node disposes the view,
 * which cancels every timer the node had set and ignores any it sets afterwards.
 */
import type { Clock } from '../../ports/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export interface SimClockOptions {
  /** Microtask turns without activity after which the queue is taken as drained. */
  idleTurns?: number;
  /** Microtask turns after one timer beyond which the loop gives up draining (a runaway chain). */
  drainTurnsMax?: number;
}

export const idleTurnsDefault = 24;
export const drainTurnsMaxDefault = 100_000;

export class SimClockError extends Error {}

export class SimClock implements Clock {
  private time = 0;
  private seq = 0;
  private heap: Timer[] = [];
  private live = 0;
  private activity = 0;
  private running = false;
  private readonly idleTurns: number;
  private readonly drainTurnsMax: number;
  /** Timers fired so far. */
  fired = 0;

  constructor(opts: SimClockOptions = {}) {
    this.idleTurns = opts.idleTurns ?? idleTurnsDefault;
    this.drainTurnsMax = opts.drainTurnsMax ?? drainTurnsMaxDefault;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: Timer = { at: this.time + delay, seq: ++this.seq, fn: fn as () => void, cancelled: false };
    this.push(timer);
    this.live++;
    this.activity++;
    return timer;
  }

  clearTimeout(handle: unknown): void {
    const timer = handle as Timer | undefined;
    if (!timer || typeof timer !== 'object' || !('cancelled' in timer) || timer.cancelled) return;
    timer.cancelled = true;
    this.live--;
    this.activity++;
  }

  /** Note that something happened, so the microtask drain keeps going. */
  touch(): void {
    this.activity++;
  }

  /** Timers set and neither fired nor cleared. */
  pending(): number {
    return this.live;
  }

  /** The deadline of the next timer, or undefined when there is none. */
  nextAt(): number | undefined {
    this.dropCancelledHead();
    return this.heap[0]?.at;
  }

  /** A Clock for one node on this timeline, whose timers can all be cancelled at once. */
  view(): SimClockView {
    return new SimClockView(this);
  }

  /** Await resolved promises until the microtask queue looks drained. */
  async drain(): Promise<void> {
    let idle = 0;
    let turns = 0;
    while (idle < this.idleTurns) {
      const before = this.activity;
      await Promise.resolve();
      idle = this.activity === before ? idle + 1 : 0;
      if (++turns > this.drainTurnsMax) throw new SimClockError(`microtasks still running after ${this.drainTurnsMax} turns at t=${this.time}`);
    }
  }

  /** Fire the next timer (moving time to its deadline), then drain microtasks. False when none is left. */
  async step(): Promise<boolean> {
    this.enter();
    try {
      return await this.stepInner();
    } finally {
      this.running = false;
    }
  }

  /** Run every timer due at or before `t`, then set the time to `t`. */
  async runUntil(t: number): Promise<void> {
    this.enter();
    try {
      await this.drain();
      for (;;) {
        const at = this.nextAt();
        if (at === undefined || at > t) break;
        await this.stepInner();
      }
      if (t > this.time) this.time = t;
    } finally {
      this.running = false;
    }
  }

  /**
   * Run until no timer is left, or until the clock reaches now + limitMs (when given). True when the
   * queue emptied.
   */
  async runUntilIdle(limitMs?: number): Promise<boolean> {
    const end = limitMs === undefined ? Infinity : this.time + limitMs;
    this.enter();
    try {
      await this.drain();
      for (;;) {
        const at = this.nextAt();
        if (at === undefined) return true;
        if (at > end) {
          this.time = end;
          return false;
        }
        await this.stepInner();
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Run timers until `promise` settles and return its value (or throw its error). Throws when the
   * queue empties first (nothing left could settle it) or the clock passes now + limitMs.
   */
  async runUntilSettled<T>(promise: Promise<T>, limitMs = Infinity): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
      this.activity++;
    });
    // The caller awaits `watched` below; until then a rejection must not count as unhandled.
    watched.catch(() => undefined);
    const end = this.time + limitMs;
    this.enter();
    try {
      await this.drain();
      while (!settled) {
        const at = this.nextAt();
        if (at === undefined) throw new SimClockError(`deadlock at t=${this.time}: no timer left and the awaited work has not finished`);
        if (at > end) throw new SimClockError(`the awaited work did not finish within ${limitMs} simulated ms (t=${this.time})`);
        await this.stepInner();
      }
    } finally {
      this.running = false;
    }
    return watched;
  }

  private enter(): void {
    if (this.running) throw new SimClockError('the run loop is already running (a run method was called from inside a timer)');
    this.running = true;
  }

  private async stepInner(): Promise<boolean> {
    const timer = this.pop();
    if (!timer) return false;
    this.live--;
    this.time = timer.at;
    this.fired++;
    timer.fn();
    await this.drain();
    return true;
  }

  private dropCancelledHead(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.popRaw();
  }

  private pop(): Timer | undefined {
    this.dropCancelledHead();
    const t = this.popRaw();
    // Marked so that a later clearTimeout of a fired handle is a no-op.
    if (t) t.cancelled = true;
    return t;
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private popRaw(): Timer | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * One node's Clock on the shared timeline. `dispose()` (the node crashed) cancels its timers and
 * turns later setTimeout calls into no-ops: a dead node's actors must not act any more.
 */
export class SimClockView implements Clock {
  private readonly timers = new Set<unknown>();
  private disposed = false;

  constructor(private readonly clock: SimClock) {}

  now(): number {
    return this.clock.now();
  }

  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown {
    if (this.disposed) return undefined;
    const handle: unknown = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    if (!this.timers.delete(handle)) return;
    this.clock.clearTimeout(handle);
  }

  dispose(): void {
    this.disposed = true;
    for (const handle of this.timers) this.clock.clearTimeout(handle);
    this.timers.clear();
  }
}
