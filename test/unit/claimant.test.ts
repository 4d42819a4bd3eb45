/**
 * The claimant (src/core/claimant.ts): one member every node holding the same state names, which
 * moves when it leaves or is staged for removal; and convergence as the members' reported states.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimantOf, stateFingerprint, unconvergedMembers } from '../../src/core/claimant.js';
import { commitPlan, initialState, joinerState, mergeStates, stageJoin, stageLeave } from '../../src/core/cluster-state.js';

describe('claimant', () => {
  const four = initialState(['n3', 'n1', 'n4', 'n2'], 8);

  it('is the lowest-id valid member of the ring that is not staged for removal', () => {
    expect(claimantOf(four)).toBe('n1');
    const remove = stageLeave(four, 'n1', 'remove', 'n2', 3);
    if (!remove.ok) throw new Error(remove.message);
    expect(claimantOf(remove.state)).toBe('n2');
    // A staged leave keeps the claimant until it is committed: it commits its own leave.
    const leave = stageLeave(four, 'n1', 'leave', 'n1', 3);
    if (!leave.ok) throw new Error(leave.message);
    expect(claimantOf(leave.state)).toBe('n1');
    const left = commitPlan(leave.state, 'n1', 3);
    if (!left.ok) throw new Error(left.message);
    expect(claimantOf(left.state)).toBe('n2');
    // A joining node, and a node that knows no ring, name none of themselves.
    expect(claimantOf(joinerState('n0', 8))).toBeUndefined();
    const known = mergeStates(four, joinerState('n0', 8));
    const staged = stageJoin(known, 'n0', 'n1');
    if (!staged.ok) throw new Error(staged.message);
    expect(claimantOf(staged.state)).toBe('n1');
  });

  it('every node that has merged the same writes names the same claimant, whatever the order', () => {
    const writes = [
      stageLeave(four, 'n1', 'remove', 'n3', 3),
      stageLeave(four, 'n2', 'leave', 'n2', 3),
      stageJoin(mergeStates(four, joinerState('n0', 8)), 'n0', 'n1'),
    ].map((r) => (r.ok ? r.state : four));
    fc.assert(
      fc.property(fc.shuffledSubarray(writes, { minLength: 3, maxLength: 3 }), (order) => {
        const merged = order.reduce(mergeStates, four);
        expect(claimantOf(merged)).toBe(claimantOf(writes.reduce(mergeStates, four)));
        expect(stateFingerprint(merged)).toBe(stateFingerprint(writes.reduce(mergeStates, four)));
      }),
    );
  });

  it('a state has converged when every live member not judged down reported the same one', () => {
    const mine = stateFingerprint(four);
    expect(unconvergedMembers(four, 'n1', {}, {})).toEqual(['n2', 'n3', 'n4']);
    expect(unconvergedMembers(four, 'n1', { n2: mine, n3: mine }, { n4: true })).toEqual([]);
    const other = stageLeave(four, 'n4', 'leave', 'n1', 3);
    if (!other.ok) throw new Error(other.message);
    expect(unconvergedMembers(four, 'n1', { n2: mine, n3: stateFingerprint(other.state), n4: mine }, {})).toEqual(['n3']);
  });
});
