/**
 * When a leaving node may take its next step (src/core/departure.ts, issue 27): every member it does
 * not judge down, and a majority of the ring's owners judged down or not, must have acknowledged.
 */
import { describe, expect, it } from 'vitest';
import { commitPlan, initialState, markExiting, stageLeave } from '../../src/core/cluster-state.js';
import { type PeerReport, departureWaitsFor, reportOf } from '../../src/core/departure.js';

function leftState() {
  const staged = stageLeave(initialState(['n1', 'n2', 'n3', 'n4', 'n5'], 16), 'n1', 'leave', 'n2', 3);
  if (!staged.ok) throw new Error(staged.message);
  const committed = commitPlan(staged.state, 'n2', 3);
  if (!committed.ok) throw new Error(committed.message);
  return committed.state;
}

describe('departureWaitsFor', () => {
  const state = leftState();
  const old = initialState(['n1', 'n2', 'n3', 'n4', 'n5'], 16);
  const newReport = reportOf(state, 'n1');
  const oldReport = reportOf(old, 'n1');

  it('waits for every member until each reported the ring without the leaver', () => {
    expect(departureWaitsFor(state, 'n1', 'ring', {}, {})).toEqual(['n2', 'n3', 'n4', 'n5']);
    const reports: Record<string, PeerReport> = { n2: newReport, n3: newReport, n4: oldReport };
    expect(departureWaitsFor(state, 'n1', 'ring', reports, {})).toEqual(['n4', 'n5']);
    expect(departureWaitsFor(state, 'n1', 'ring', { ...reports, n4: newReport, n5: newReport }, {})).toEqual([]);
  });

  it('does not wait for a member judged down once a majority of the owners acknowledged', () => {
    const reports = { n2: newReport, n3: newReport, n4: newReport };
    expect(departureWaitsFor(state, 'n1', 'ring', reports, { n5: true })).toEqual([]);
  });

  it('waits even for members judged down while fewer than a majority of the owners acknowledged (a cut-off claimant, seed 521)', () => {
    const down = { n2: true, n3: true, n4: true, n5: true } as const;
    expect(departureWaitsFor(state, 'n1', 'ring', {}, down)).toEqual(['n2', 'n3', 'n4', 'n5']);
    expect(departureWaitsFor(state, 'n1', 'ring', { n2: newReport, n3: newReport }, down)).toEqual(['n4', 'n5']);
    expect(departureWaitsFor(state, 'n1', 'ring', { n2: newReport, n3: newReport, n4: newReport }, down)).toEqual([]);
  });

  it('the exiting step counts reports of the leaver as exiting', () => {
    const exiting = markExiting(state, 'n1');
    const marked = reportOf(exiting, 'n1');
    expect(marked.selfStatus).toBe('exiting');
    expect(departureWaitsFor(exiting, 'n1', 'exiting', { n2: newReport, n3: marked, n4: marked, n5: marked }, {})).toEqual(['n2']);
    expect(departureWaitsFor(exiting, 'n1', 'exiting', { n2: marked, n3: marked, n4: marked, n5: marked }, {})).toEqual([]);
  });
});
