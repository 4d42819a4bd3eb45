// The seeds and shape of the sweep that CI runs (test/sim/sweep.test.ts), shared with the test that
// shows the sweep catches deliberately broken mechanisms (test/sim/mutations.test.ts).
import type { SimOptions } from '../../src/sim/runner.js';

export const ciSweepSeeds = Array.from({ length: 40 }, (_, i) => i + 1);

/**
 * One run of the CI sweep: 3 to 5 nodes, 60 cart adds by 3 clients on 3 keys, swarm faults.
 */
export function ciSweepRun(seed: number): SimOptions {
  return { seed, nodes: 3 + (seed % 3), ops: 60, faults: 'swarm' };
}
