// The seeds and shape of the sweep that CI runs (test/sim/sweep.test.ts), shared with the test that
// shows the sweep catches deliberately broken mechanisms (test/sim/mutations.test.ts).
import type { SimOptions } from '../../src/sim/runner.js';

export const ciSweepSeeds = Array.from({ length: 40 }, (_, i) => i + 1);

/**
 * One run of the CI sweep: 3 to 5 nodes, 60 cart adds by 3 clients on 3 keys, swarm faults, the
 * membership changes included (join, leave, force-remove of a machine lost for good).
 *
 * `leave` was left out for a while: two commits made at once at different nodes gave two rings of
 * the same version, and one change was lost (`ringkv sim --seed 41 --nodes 4 --ops 100 --faults
 * drop,partition,crash,join,leave` before the fix). Every change now goes through one claimant
 * (src/core/claimant.ts). 2,000 seeds of this shape (1..2000, issue 18, about 67 CPU-minutes on a
 * loaded machine): four failed on the simulator's own force-remove check (a member lost after it had
 * left, fixed), and one, seed 521, failed on the code before the claimant too: the claimant, cut
 * off, committed its own leave, handed over and exited with the only copy of the new ring (fixed in
 * issue 27: a leaver goes only once the members it leaves behind acknowledged the ring and its
 * exiting mark, src/core/departure.ts). Every seed that ever failed stays in ciRegressionRuns.
 */
export function ciSweepRun(seed: number): SimOptions {
  return { seed, nodes: 3 + (seed % 3), ops: 60, faults: 'swarm' };
}

/**
 * Every run a sweep ever found failing, replayed by CI whatever the budget (test/sim/sweep.test.ts):
 * the shape it failed in, so a fix that only moves the failure to another seed does not pass.
 */
export const ciRegressionRuns: readonly SimOptions[] = [
  // The claimant left with the only copy of the ring without it (issue 27).
  { seed: 521, nodes: 5, ops: 60, faults: 'swarm' },
  // On Q = 16, the join of a 31st node was committed again and again, each ring leaving it out (issue 27).
  { seed: 1, nodes: 30, ops: 60, faults: ['drop', 'partition', 'crash', 'join', 'leave', 'force-remove'] },
];
