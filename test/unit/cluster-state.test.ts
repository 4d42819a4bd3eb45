/**
 * The gossiped cluster state converges whatever the order of merges: merge is commutative,
 * associative and idempotent, so nodes that have seen the same writes hold the same state. Admin
 * operations (stage, plan, commit, clear) follow Riak's staged workflow: only commit changes the
 * ring, and their refusals carry codes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ClusterState,
  type MemberEntry,
  clearPlan,
  commitPlan,
  initialState,
  joinerState,
  liveMembers,
  markExiting,
  memberStatuses,
  mergeStates,
  planOf,
  stageJoin,
  stageLeave,
  stagedOps,
} from '../../src/core/cluster-state.js';
import { encode } from '../../src/protocol/codec.js';

const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const entry: fc.Arbitrary<MemberEntry> = fc.record({
  status: fc.constantFrom(...memberStatuses),
  staged: fc.constantFrom(null, ...stagedOps),
  version: fc.nat(4),
  by: fc.constantFrom('', ...ids),
});
const state: fc.Arbitrary<ClusterState> = fc.record({
  members: fc.dictionary(fc.constantFrom(...ids), entry, { maxKeys: 5 }),
  ring: fc.record({
    version: fc.nat(4),
    by: fc.constantFrom('', ...ids),
    q: fc.constant(8),
    owners: fc.array(fc.constantFrom(...ids), { minLength: 8, maxLength: 8 }),
  }),
});

describe('cluster state merge', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(state, state, state, (a, b, c) => {
        expect(mergeStates(a, b)).toEqual(mergeStates(b, a));
        expect(mergeStates(mergeStates(a, b), c)).toEqual(mergeStates(a, mergeStates(b, c)));
        expect(mergeStates(a, a)).toEqual(mergeStates(a, {members: {}, ring: a.ring}));
      }),
      { numRuns: 500 },
    );
  });

  it('any order of merges gives the same state', () => {
    fc.assert(
      fc.property(fc.array(state, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), (states, keys) => {
        const order = states.map((s, i) => ({ s, k: keys[i]! })).sort((x, y) => x.k - y.k).map((x) => x.s);
        const forward = states.reduce(mergeStates);
        const shuffled = order.reduce(mergeStates);
        expect(shuffled).toEqual(forward);
      }),
      { numRuns: 300 },
    );
  });
});

describe('staged changes', () => {
  const n = 3;
  const base = initialState(['n1', 'n2', 'n3'], 64);

  it('a joiner learns the cluster from a seed, and only commit changes the ring', () => {
    let seed = mergeStates(base, joinerState('n4', 64));
    expect(seed.members.n4!.status).toBe('joining');
    expect(liveMembers(seed)).toEqual(['n1', 'n2', 'n3', 'n4']);
    const joiner = mergeStates(joinerState('n4', 64), seed);
    expect(joiner).toEqual(seed);
    const plan = planOf(seed, n);
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.plan.changes).toEqual([{ node: 'n4', op: 'join' }]);
    expect(plan.plan.moves.length).toBe(16);
    expect(plan.plan.after.find((s) => s.node === 'n4')!.partitions).toBe(16);
    expect(seed.ring.version).toBe(1);
    const committed = commitPlan(seed, 'n2', n);
    if (!committed.ok) throw new Error(committed.message);
    seed = committed.state;
    expect(seed.ring.version).toBe(2);
    expect(seed.ring.owners).toEqual(plan.plan.next.owners);
    expect(seed.members.n4!.status).toBe('valid');
    expect(planOf(seed, n)).toMatchObject({ ok: false, code: 'NO_CHANGES' });
    // The other nodes take the commit over their older state.
    expect(mergeStates(base, seed)).toEqual(mergeStates(seed, base));
    expect(mergeStates(base, seed).ring.version).toBe(2);
  });

  it('refuses with codes: unknown node, already a member, too few nodes, nothing staged', () => {
    expect(stageJoin(base, 'n9', 'n1')).toMatchObject({ ok: false, code: 'UNKNOWN_NODE' });
    expect(stageJoin(base, 'n1', 'n1')).toMatchObject({ ok: false, code: 'ALREADY_MEMBER' });
    expect(stageLeave(base, 'n1', 'leave', 'n1', n)).toMatchObject({ ok: false, code: 'TOO_FEW_NODES' });
    expect(stageLeave(base, 'n9', 'remove', 'n1', n)).toMatchObject({ ok: false, code: 'UNKNOWN_NODE' });
    expect(commitPlan(base, 'n1', n)).toMatchObject({ ok: false, code: 'NO_CHANGES' });
    expect(clearPlan(base, 'n1')).toMatchObject({ ok: false, code: 'NO_CHANGES' });
  });

  it('a leaving member whose commit lost to a concurrent one (still in the ring) can be staged to leave again', () => {
    const five = initialState(['n1', 'n2', 'n3', 'n4', 'n5'], 64);
    // n2 committed its own leave (ring v2 by n2); n3 committed a join at the same version and won the merge.
    const leaveAtN2 = commitPlan((stageLeave(five, 'n2', 'leave', 'n2', n) as { state: ClusterState }).state, 'n2', n);
    if (!leaveAtN2.ok) throw new Error(leaveAtN2.message);
    const other = { ...five, ring: { ...five.ring, version: leaveAtN2.state.ring.version, by: 'n3' } };
    const merged = mergeStates(leaveAtN2.state, other);
    expect(merged.members.n2!.status).toBe('leaving');
    expect(merged.ring.owners).toContain('n2');
    const again = stageLeave(merged, 'n2', 'leave', 'n1', n);
    if (!again.ok) throw new Error(again.message);
    const committed = commitPlan(again.state, 'n1', n);
    if (!committed.ok) throw new Error(committed.message);
    expect(committed.state.ring.owners).not.toContain('n2');
    expect(committed.state.members.n2!.status).toBe('leaving');
    // A leaving member already out of the ring cannot be staged again.
    expect(stageLeave(committed.state, 'n2', 'leave', 'n1', n)).toMatchObject({ ok: false, code: 'UNKNOWN_NODE' });
  });

  it('leave and clear; a leaver marks itself exiting after the commit', () => {
    const four = initialState(['n1', 'n2', 'n3', 'n4'], 64);
    const staged = stageLeave(four, 'n4', 'leave', 'n1', n);
    if (!staged.ok) throw new Error(staged.message);
    const cleared = clearPlan(staged.state, 'n2');
    if (!cleared.ok) throw new Error(cleared.message);
    expect(cleared.state.members.n4!.staged).toBeNull();
    expect(cleared.state.ring).toEqual(four.ring);
    const again = stageLeave(cleared.state, 'n4', 'leave', 'n1', n);
    if (!again.ok) throw new Error(again.message);
    const committed = commitPlan(again.state, 'n1', n);
    if (!committed.ok) throw new Error(committed.message);
    expect(committed.state.members.n4!.status).toBe('leaving');
    expect(committed.state.ring.owners).not.toContain('n4');
    expect(liveMembers(committed.state)).toContain('n4');
    const exited = markExiting(committed.state, 'n4');
    expect(liveMembers(exited)).not.toContain('n4');
    expect(mergeStates(committed.state, exited)).toEqual(exited);
  });

  it('is small enough to gossip whole at 16 nodes and Q=64', () => {
    let s = initialState(Array.from({ length: 16 }, (_, i) => `node-${i + 1}`), 64);
    s = mergeStates(s, joinerState('node-17', 64));
    const bytes = encode(s).length;
    process.stdout.write(`cluster state, 17 members, Q=64: ${bytes} bytes of MessagePack\n`);
    expect(bytes).toBeLessThan(2048);
  });

  it('two commits at once: the larger writer id wins everywhere, and a member the winner left out can join again', () => {
    const withJoiners = mergeStates(mergeStates(base, joinerState('n4', 64)), joinerState('n5', 64));
    // n1 saw only n4's join staged, n2 saw only n5's: each commits what it saw.
    const atN1 = stageJoin(mergeStates(base, joinerState('n4', 64)), 'n4', 'n1');
    const atN2 = stageJoin(mergeStates(base, joinerState('n5', 64)), 'n5', 'n2');
    if (!atN1.ok || !atN2.ok) throw new Error('stage failed');
    const c1 = commitPlan(atN1.state, 'n1', n);
    const c2 = commitPlan(atN2.state, 'n2', n);
    if (!c1.ok || !c2.ok) throw new Error('commit failed');
    const merged = mergeStates(mergeStates(withJoiners, c1.state), c2.state);
    expect(merged).toEqual(mergeStates(c2.state, mergeStates(c1.state, withJoiners)));
    expect(merged.ring.by).toBe('n2');
    expect(merged.ring.owners).not.toContain('n4');
    expect(merged.members.n4!.status).toBe('valid');
    // n4 is valid but owns nothing: staging its join again is allowed and commit takes it in.
    const again = stageJoin(merged, 'n4', 'n3');
    if (!again.ok) throw new Error(again.message);
    const fixed = commitPlan(again.state, 'n3', n);
    if (!fixed.ok) throw new Error(fixed.message);
    expect(fixed.state.ring.owners).toContain('n4');
    expect(fixed.state.ring.owners).toContain('n5');
  });
});

describe('more nodes than partitions', () => {
  it('refuses to stage or commit a join that would leave a node owning nothing (TOO_MANY_NODES)', () => {
    // Issue 27: on Q = 16 the join of a 17th node was committed, took it nowhere, and was committed
    // again and again.
    const members = Array.from({ length: 16 }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
    const state = { ...initialState(members, 16) };
    const withJoiner = { ...state, members: { ...state.members, n99: { status: 'joining' as const, staged: null, version: 1, by: 'n99' } } };
    const staged = stageJoin(withJoiner, 'n99', 'n01');
    expect(staged).toMatchObject({ ok: false, code: 'TOO_MANY_NODES' });
    // A join staged elsewhere (gossip brought it) is refused at commit too.
    const sneaked = { ...withJoiner, members: { ...withJoiner.members, n99: { status: 'joining' as const, staged: 'join' as const, version: 2, by: 'n01' } } };
    expect(commitPlan(sneaked, 'n01', 3)).toMatchObject({ ok: false, code: 'TOO_MANY_NODES' });
    // A leave in the same plan makes room.
    const leaving = stageLeave(sneaked, 'n16', 'leave', 'n01', 3);
    if (!leaving.ok) throw new Error(leaving.message);
    const committed = commitPlan(leaving.state, 'n01', 3);
    if (!committed.ok) throw new Error(committed.message);
    expect(committed.state.ring.owners).toContain('n99');
  });
});
