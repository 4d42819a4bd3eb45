/**
 * Clock: the only source of time for a node. Machines never read time themselves; xstate delays run
 * on this clock (it is handed to `createActor(machine, { clock })`), and the runtime reads `now()`
 * for deadlines it reports. Production uses the system clock; the simulator a virtual one.
 *
 * Contract: `setTimeout` callbacks run later, never synchronously; timers with equal deadlines run in
 * the order they were set; `clearTimeout` of a fired or unknown handle is a no-op.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
