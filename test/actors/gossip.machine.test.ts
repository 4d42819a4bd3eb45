/**
 * The gossip machine through xstate's pure transition functions: the announce at start, one digest
 * per round to a seeded peer, push-pull answers, and the failure detector's verdicts as member.down
 * / member.up sent to the node.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { GossipEvent } from '../../actors/gossip.events.js';
import { type GossipInput, commitWaitRounds, gossipMachine, phiDefaults } from '../../actors/gossip.machine.js';
import { commitPlan, initialState, ringOf, stageLeave } from '../../src/core/cluster-state.js';

type Snapshot = SnapshotFrom<typeof gossipMachine>;
interface Effect {
  type: string;
  params?: unknown;
}

const input: GossipInput = { nodeId: 'n1', cluster: initialState(['n1', 'n2', 'n3'], 8), n: 3, incarnation: 100, seed: 7, phiThreshold: 8, phi: phiDefaults };

function effects(actions: readonly { type: string; params?: unknown }[]): Effect[] {
  return actions.map((a) => ({ type: a.type, params: a.params }));
}

function step(s: Snapshot, event: GossipEvent): [Snapshot, Effect[]] {
  const [next, actions] = transition(gossipMachine, s, event);
  return [next, effects(actions)];
}

/** The member.up / member.down events sent to the parent. */
function verdicts(fx: Effect[]): string[] {
  return fx
    .filter((e) => e.type === 'tellNode')
    .map((e) => e.params as { type: string; nodeId: string })
    .map((e) => `${e.type} ${e.nodeId}`);
}

const digest = (from: string, heartbeats: Record<string, [number, number]>, now: number): GossipEvent => ({
  type: 'gossip.digest',
  from,
  reqId: '1',
  body: { heartbeats },
  now,
});

describe('gossip machine', () => {
  it('announces its new life to every other member at start', () => {
    const [, actions] = initialTransition(gossipMachine, input);
    const sendAll = actions.find((a) => a.type === 'sendAll');
    expect((sendAll?.params as { to: string }[]).map((m) => m.to)).toEqual(['n2', 'n3']);
  });

  it('sends one digest per round, with its advanced heartbeat, to a peer', () => {
    let [s] = initialTransition(gossipMachine, input);
    let fx: Effect[];
    const peers = new Set<string>();
    for (let round = 1; round <= 20; round++) {
      [s, fx] = step(s, { type: 'gossip.tick', now: round * 1000 });
      const sends = fx.filter((e) => e.type === 'send').map((e) => e.params as { to: string; body: { heartbeats: Record<string, [number, number]> } });
      expect(sends).toHaveLength(1);
      expect(sends[0]!.body.heartbeats.n1).toEqual([100, round]);
      peers.add(sends[0]!.to);
    }
    expect([...peers].sort()).toEqual(['n2', 'n3']);
  });

  it('answers a digest with its own view (push-pull) and keeps the newer heartbeat per member', () => {
    let [s] = initialTransition(gossipMachine, input);
    let fx: Effect[];
    [s, fx] = step(s, digest('n2', { n2: [5, 3], n3: [9, 1], n1: [1, 999] }, 10));
    const answer = fx.find((e) => e.type === 'send')!.params as { to: string; kind: string; body: { heartbeats: Record<string, unknown> } };
    expect(answer.to).toBe('n2');
    expect(answer.kind).toBe('gossip.digest.ok');
    // Its own heartbeat is never taken from a peer.
    expect(answer.body.heartbeats).toEqual({ n1: [100, 0], n2: [5, 3], n3: [9, 1] });
    [s] = step(s, digest('n3', { n2: [5, 2], n3: [9, 4] }, 20));
    expect(s.context.heartbeats).toEqual({ n1: [100, 0], n2: [5, 3], n3: [9, 4] });
  });

  it('judges a silent member down, and takes it back up on a newer heartbeat', () => {
    let [s] = initialTransition(gossipMachine, input);
    let fx: Effect[];
    let t = 0;
    // n2 and n3 beat every second for a while.
    for (let i = 1; i <= 10; i++) {
      t = i * 1000;
      [s] = step(s, digest('n2', { n2: [1, i], n3: [1, i] }, t));
      [s, fx] = step(s, { type: 'gossip.tick', now: t });
      expect(verdicts(fx)).toEqual([]);
    }
    // n3 falls silent; n2 goes on.
    const seen: string[] = [];
    let downAt = 0;
    for (let i = 11; i <= 30; i++) {
      t = i * 1000;
      [s] = step(s, digest('n2', { n2: [1, i] }, t));
      [s, fx] = step(s, { type: 'gossip.tick', now: t });
      if (verdicts(fx).length && !downAt) downAt = t;
      seen.push(...verdicts(fx));
    }
    expect(seen).toEqual(['member.down n3']);
    // Judged down within a few seconds of its last heartbeat at t = 10 s (round 1 s, pause 1 s).
    expect(downAt - 10_000).toBeGreaterThanOrEqual(3000);
    expect(downAt - 10_000).toBeLessThanOrEqual(7000);

    // A restarted n3 (new incarnation, counter from 0) is newer than anything remembered.
    [s, fx] = step(s, digest('n3', { n3: [2, 0] }, t + 1));
    expect(verdicts(fx)).toEqual(['member.up n3']);
    expect(s.context.down).toEqual({});
  });

  it('judges a member it never heard from down too', () => {
    let [s] = initialTransition(gossipMachine, input);
    let fx: Effect[];
    const seen: string[] = [];
    for (let i = 1; i <= 15; i++) {
      [s] = step(s, digest('n2', { n2: [1, i] }, i * 1000));
      [s, fx] = step(s, { type: 'gossip.tick', now: i * 1000 });
      seen.push(...verdicts(fx));
    }
    expect(seen).toEqual(['member.down n3']);
  });
});

describe('gossip machine: membership', () => {
  const cluster4 = initialState(['n1', 'n2', 'n3', 'n4'], 8);
  const base: GossipInput = { ...input, cluster: cluster4 };
  const tells = (fx: Effect[]) => fx.filter((e) => e.type === 'tellNode').map((e) => (e.params as { type: string }).type);

  it('takes a newer committed ring from a digest and tells the node (cluster.changed, ring.changed)', () => {
    let [s] = initialTransition(gossipMachine, base);
    const staged = stageLeave(cluster4, 'n4', 'leave', 'n2', 3);
    if (!staged.ok) throw new Error(staged.message);
    const committed = commitPlan(staged.state, 'n2', 3);
    if (!committed.ok) throw new Error(committed.message);
    let fx: Effect[];
    [s, fx] = step(s, { type: 'gossip.digest', from: 'n2', reqId: '1', body: { heartbeats: { n2: [1, 1] }, cluster: committed.state }, now: 10 });
    expect(tells(fx)).toEqual(['cluster.changed', 'ring.changed']);
    const ring = fx.find((e) => (e.params as { type: string }).type === 'ring.changed')!.params as { ring: { owners: string[] } };
    expect(ring.ring.owners).not.toContain('n4');
    // The answer carries the merged state; the same digest again changes nothing.
    const answer = fx.find((e) => e.type === 'send')!.params as { body: { cluster: unknown } };
    expect(answer.body.cluster).toEqual(committed.state);
    [s, fx] = step(s, { type: 'gossip.digest', from: 'n2', reqId: '2', body: { heartbeats: { n2: [1, 2] }, cluster: committed.state }, now: 20 });
    expect(tells(fx)).toEqual([]);
    // n4 is no longer judged or gossiped to once it has exited.
    expect(s.context.cluster.members.n4!.status).toBe('leaving');
  });

  it('applies admin requests: stage, commit (the ring changes and every member hears at once), refusals with codes', () => {
    let [s] = initialTransition(gossipMachine, base);
    let fx: Effect[];
    const req = (op: string, node?: string) => ({ type: 'api.cluster', from: 'c', reqId: op, replyTo: 'inbox', op, ...(node ? { node } : {}) }) as GossipEvent;
    [s, fx] = step(s, req('commit'));
    expect((fx.find((e) => e.type === 'answerClient')!.params as { body: { code: string } }).body.code).toBe('NO_CHANGES');
    [s, fx] = step(s, req('leave', 'n4'));
    expect(tells(fx)).toEqual(['cluster.changed']);
    expect((fx.find((e) => e.type === 'sendAll')!.params as { to: string }[]).map((d) => d.to)).toEqual(['n2', 'n3', 'n4']);
    // n1 is the claimant; it commits once every member has reported the state it holds.
    for (const peer of ['n2', 'n3', 'n4']) [s] = step(s, { type: 'gossip.digest.ok', from: peer, reqId: '1', body: { heartbeats: {}, cluster: s.context.cluster }, now: 1 });
    [s, fx] = step(s, req('commit'));
    expect(tells(fx)).toEqual(['cluster.changed', 'ring.changed']);
    const answer = fx.find((e) => e.type === 'answerClient')!.params as { kind: string; body: { ringVersion: number; plan: { moves: unknown[] } } };
    expect(answer.kind).toBe('api.cluster.ok');
    expect(answer.body.ringVersion).toBe(2);
    expect(answer.body.plan.moves.length).toBeGreaterThan(0);
  });

  it('a leaving node exits only when it is out of the ring and ownership transfer reported idle for that ring', () => {
    const staged = stageLeave(cluster4, 'n1', 'leave', 'n2', 3);
    if (!staged.ok) throw new Error(staged.message);
    let [s] = initialTransition(gossipMachine, { ...base, cluster: staged.state });
    let fx: Effect[];
    const oldRing = ringOf(staged.state);
    // An idle report while the node is still in the ring does not count.
    [s, fx] = step(s, { type: 'transfer.idle', ring: oldRing });
    expect(tells(fx)).toEqual([]);
    const committed = commitPlan(staged.state, 'n2', 3);
    if (!committed.ok) throw new Error(committed.message);
    [s, fx] = step(s, { type: 'gossip.digest.ok', from: 'n2', reqId: '1', body: { heartbeats: {}, cluster: committed.state }, now: 5 });
    expect(tells(fx)).toEqual(['cluster.changed', 'ring.changed']);
    // A report from a scan under the old ring that arrives after the commit does not count either:
    // the node has not handed over under the ring that leaves it out.
    [s, fx] = step(s, { type: 'transfer.idle', ring: oldRing });
    expect(tells(fx)).toEqual([]);
    // Handed over, but only n2 holds the ring without n1: it waits (issue 27, seed 521: a leaver
    // that went with the only copy of that ring left the others waiting for it for good).
    [s, fx] = step(s, { type: 'transfer.idle', ring: ringOf(committed.state) });
    expect(tells(fx)).toEqual([]);
    expect(s.context.cluster.members.n1!.status).toBe('leaving');
    // Each round it sends its state to the members that have not acknowledged the ring.
    [s, fx] = step(s, { type: 'gossip.tick', now: 10 });
    expect((fx.find((e) => e.type === 'sendAll')!.params as { to: string }[]).map((d) => d.to)).toEqual(['n3', 'n4']);
    [s, fx] = step(s, { type: 'gossip.digest.ok', from: 'n3', reqId: '2', body: { heartbeats: {}, cluster: committed.state }, now: 11 });
    expect(tells(fx)).toEqual([]);
    // Every member it does not judge down holds the ring: it marks itself exiting and tells everyone.
    [s, fx] = step(s, { type: 'gossip.digest.ok', from: 'n4', reqId: '2', body: { heartbeats: {}, cluster: committed.state }, now: 12 });
    expect(tells(fx)).toEqual(['cluster.changed']);
    expect(s.context.cluster.members.n1!.status).toBe('exiting');
    expect((fx.find((e) => e.type === 'sendAll')!.params as { to: string }[]).map((d) => d.to)).toEqual(['n2', 'n3', 'n4']);
    // It exits once they acknowledge that too.
    const marked = s.context.cluster;
    for (const from of ['n2', 'n3']) {
      [s, fx] = step(s, { type: 'gossip.digest.ok', from, reqId: '3', body: { heartbeats: {}, cluster: marked }, now: 13 });
      expect(tells(fx)).toEqual([]);
    }
    [s, fx] = step(s, { type: 'gossip.digest.ok', from: 'n4', reqId: '3', body: { heartbeats: {}, cluster: marked }, now: 14 });
    expect(tells(fx)).toEqual(['node.exit']);
    expect(s.context.exiting).toBe(true);
  });

  it('a force-removed node that still runs learns it and exits without handoff', () => {
    const staged = stageLeave(cluster4, 'n1', 'remove', 'n2', 3);
    if (!staged.ok) throw new Error(staged.message);
    const committed = commitPlan(staged.state, 'n2', 3);
    if (!committed.ok) throw new Error(committed.message);
    expect(committed.state.members.n1!.status).toBe('removed');
    let [s] = initialTransition(gossipMachine, base);
    let fx: Effect[];
    [s, fx] = step(s, { type: 'gossip.digest', from: 'n2', reqId: '1', body: { heartbeats: {}, cluster: committed.state }, now: 5 });
    expect(tells(fx)).toEqual(['cluster.changed', 'ring.changed', 'node.exit']);
    expect(s.context.exiting).toBe(true);
  });
});

describe('gossip machine: the claimant', () => {
  const cluster4 = initialState(['n1', 'n2', 'n3', 'n4'], 8);
  const req = (op: string, node?: string): GossipEvent => ({ type: 'api.cluster', from: 'c', reqId: op, replyTo: 'inbox', op, ...(node ? { node } : {}) }) as GossipEvent;
  const answers = (fx: Effect[]) => fx.filter((e) => e.type === 'answerClient').map((e) => e.params as { kind: string; body: { code?: string; message?: string; ringVersion?: number } });
  const report = (s: Snapshot, from: string, cluster = s.context.cluster): GossipEvent => ({ type: 'gossip.digest.ok', from, reqId: '1', body: { heartbeats: {}, cluster }, now: 1 });

  it('a node that is not the claimant forwards the request to it, with its view and the node it was asked about', () => {
    let [s] = initialTransition(gossipMachine, { ...input, nodeId: 'n3', cluster: cluster4 });
    let fx: Effect[];
    [s, fx] = step(s, req('leave'));
    expect(answers(fx)).toEqual([]);
    expect(s.context.cluster).toEqual(cluster4);
    const sent = fx.find((e) => e.type === 'send')!.params as { to: string; kind: string; body: { cluster: unknown; request: Record<string, unknown> } };
    expect(sent.to).toBe('n1');
    expect(sent.kind).toBe('gossip.claim');
    expect(sent.body.cluster).toEqual(cluster4);
    // A leave without a node is the leave of the node asked, not of the claimant.
    expect(sent.body.request).toEqual({ op: 'leave', node: 'n3', replyTo: 'inbox', client: 'c', reqId: 'leave' });
    // A plan is answered where it is asked.
    [s, fx] = step(s, req('plan'));
    expect(answers(fx)[0]!.body.code).toBe('NO_CHANGES');
  });

  it('the claimant applies a forwarded request and answers the client itself; a node that is not the claimant refuses one', () => {
    let [s] = initialTransition(gossipMachine, { ...input, cluster: cluster4 });
    let fx: Effect[];
    const claim = (from: string, request: Record<string, unknown>): GossipEvent => ({ type: 'gossip.claim', from, reqId: '9', body: { heartbeats: {}, cluster: cluster4, request }, now: 1 }) as GossipEvent;
    [s, fx] = step(s, claim('n3', { op: 'leave', node: 'n3', replyTo: 'inbox-7', client: 'c7', reqId: '7' }));
    const a = fx.find((e) => e.type === 'answerClient')!.params as { replyTo: string; to: string; reqId: string; kind: string; body: { nodeId: string; node: string } };
    expect(a).toMatchObject({ replyTo: 'inbox-7', to: 'c7', reqId: '7', kind: 'api.cluster.ok', body: { nodeId: 'n1', node: 'n3' } });
    expect(s.context.cluster.members.n3!.staged).toBe('leave');
    // n2 is not the claimant: a request forwarded to it (by a node with another view) is refused, never forwarded again.
    let [t] = initialTransition(gossipMachine, { ...input, nodeId: 'n2', cluster: cluster4 });
    [t, fx] = step(t, claim('n3', { op: 'commit', replyTo: 'inbox-8', client: 'c8', reqId: '8' }));
    expect(fx.some((e) => e.type === 'send' && (e.params as { kind: string }).kind === 'gossip.claim')).toBe(false);
    expect(answers(fx)[0]!.body.code).toBe('NOT_READY');
    expect(t.context.cluster).toEqual(cluster4);
  });

  it('the claimant commits only once every member it does not judge down reported its state; else NOT_READY after a few rounds', () => {
    let [s] = initialTransition(gossipMachine, { ...input, cluster: cluster4 });
    let fx: Effect[];
    [s] = step(s, req('leave', 'n4'));
    [s, fx] = step(s, req('commit'));
    // Held: n2, n3 and n4 have not reported the state with the staged leave; they are asked for it.
    expect(answers(fx)).toEqual([]);
    expect((fx.find((e) => e.type === 'sendAll')!.params as { to: string }[]).map((d) => d.to)).toEqual(['n2', 'n3', 'n4']);
    [s] = step(s, report(s, 'n2'));
    [s, fx] = step(s, report(s, 'n3', cluster4));
    expect(answers(fx)).toEqual([]);
    [s, fx] = step(s, report(s, 'n3'));
    expect(answers(fx)).toEqual([]);
    [s, fx] = step(s, report(s, 'n4'));
    expect(answers(fx).map((a) => [a.kind, a.body.ringVersion])).toEqual([['api.cluster.ok', 2]]);
    expect(s.context.cluster.ring.version).toBe(2);
    expect(s.context.pendingCommits).toEqual([]);

    // Another change, and a member that never answers: the commit is refused after commitWaitRounds.
    let [t] = initialTransition(gossipMachine, { ...input, cluster: cluster4 });
    [t] = step(t, req('leave', 'n4'));
    [t] = step(t, report(t, 'n2'));
    [t] = step(t, report(t, 'n4'));
    [t, fx] = step(t, req('commit'));
    const refused: string[] = [];
    for (let round = 1; round <= commitWaitRounds && refused.length === 0; round++) {
      [t, fx] = step(t, { type: 'gossip.tick', now: round * 10 });
      refused.push(...answers(fx).map((a) => `${a.body.code}: ${a.body.message}`));
    }
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^NOT_READY: .*n3 report another/);
    expect(t.context.cluster.ring.version).toBe(1);
  });

  it('a claimant judged down blocks changes with NOT_READY, except staging its own removal; then the next member is the claimant', () => {
    let [s] = initialTransition(gossipMachine, { ...input, nodeId: 'n2', cluster: cluster4 });
    let fx: Effect[];
    // n1 goes silent while the others keep gossiping: n2 judges it down.
    for (let i = 1; i <= 30 && !s.context.down.n1; i++) {
      [s] = step(s, { type: 'gossip.digest', from: 'n3', reqId: '1', body: { heartbeats: { n3: [1, i], n4: [1, i] } }, now: i * 1000 });
      [s] = step(s, { type: 'gossip.tick', now: i * 1000 });
    }
    expect(s.context.down.n1).toBe(true);
    [s, fx] = step(s, req('leave', 'n4'));
    expect(answers(fx)[0]!.body.code).toBe('NOT_READY');
    expect(answers(fx)[0]!.body.message).toMatch(/claimant n1 is judged down/);
    [s, fx] = step(s, req('force-remove', 'n1'));
    expect(answers(fx)[0]!.kind).toBe('api.cluster.ok');
    expect(s.context.cluster.members.n1!.staged).toBe('remove');
    // n2 is the claimant now: it commits the removal itself once n3 and n4 have its state.
    [s] = step(s, report(s, 'n3'));
    [s] = step(s, report(s, 'n4'));
    [s, fx] = step(s, req('commit'));
    expect(answers(fx)[0]!.kind).toBe('api.cluster.ok');
    expect(s.context.cluster.members.n1!.status).toBe('removed');
    expect(s.context.cluster.ring.owners).not.toContain('n1');
  });
});
