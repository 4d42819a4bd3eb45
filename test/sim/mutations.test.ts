// The sweep must catch a deliberately broken mechanism (issue 7, "done when"). Each bug is injected
// by a Store wrapper inside the simulator (src/sim/bugs.ts); production code is untouched. Without a
// bug the same seeds pass (test/sim/sweep.test.ts).
//
// The two other bugs of src/sim/bugs.ts, keepEpochAfterCrash and noOpAckBeforeCommit, are the real
// bugs the simulator found (now fixed). They need a rare interleaving, which long sweeps reached
// (seeds 1172 and 4018, with the code of the day) and no seed of this short sweep does, so
// test/sim/regressions.test.ts checks them with scripted scenarios instead.
import { describe, expect, it } from 'vitest';
import type { InjectedBugs } from '../../src/sim/bugs.js';
import { runSimulation, type SimReport } from '../../src/sim/runner.js';
import { ciSweepRun, ciSweepSeeds } from './ci-sweep.js';

/** Runs the CI sweep with the bug until a seed breaks an invariant; that run, or undefined. */
async function firstFailure(bugs: InjectedBugs): Promise<SimReport | undefined> {
  for (const seed of ciSweepSeeds) {
    const r = await runSimulation({ ...ciSweepRun(seed), bugs });
    if (!r.ok) return r;
  }
  return undefined;
}

describe('the CI sweep catches injected bugs', () => {
  it('acknowledging a write before it commits: a crash loses acknowledged items', { timeout: 240_000 }, async () => {
    const r = await firstFailure({ ackBeforeCommit: true });
    expect(r, 'no seed of the CI sweep caught ackBeforeCommit').toBeDefined();
    expect(r!.violations.map((v) => v.invariant)).toContain('acked-in-final-read');
    expect(r!.lost).toBeGreaterThan(0);
    // The failing seed replays: the same run, the same violations.
    const again = await runSimulation({ ...ciSweepRun(r!.seed), bugs: { ackBeforeCommit: true } });
    expect(again.traceHash).toBe(r!.traceHash);
    expect(again.violations).toEqual(r!.violations);
  });

  it('dropping siblings when merging another replica state: acknowledged items disappear', { timeout: 240_000 }, async () => {
    const r = await firstFailure({ dropSiblingsOnSync: true });
    expect(r, 'no seed of the CI sweep caught dropSiblingsOnSync').toBeDefined();
    expect(r!.violations.map((v) => v.invariant)).toContain('acked-in-final-read');
  });
});
