/**
 * The coordinator machine through xstate's pure transition functions. The invariant under test: the
 * client is answered exactly once, on quorum, on the deadline, with a replica's error, or with
 * UNAVAILABLE before any replica is asked; each replica counts once however often it answers; a get
 * repairs exactly the replicas whose answer lacked part of the merge.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { CoordinatorEvent } from '../../actors/coordinator.events.js';
import { type CoordinatorInput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import { type DvvSet, join, sync, update } from '../../src/core/dvv.js';
import { decode, encode } from '../../src/protocol/codec.js';

type Snapshot = SnapshotFrom<typeof coordinatorMachine>;
interface Effect {
  type: string;
  params?: unknown;
}
interface Answer {
  replyTo: string;
  to: string;
  reqId: string;
  kind: string;
  body: Record<string, unknown>;
}
interface Send {
  to: string;
  kind: string;
  reqId: string;
  body: { p: number; key: Uint8Array; state?: DvvSet };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const key = bytes('cart:1');

/** `alive` is shorthand for targets that are all primaries. */
type Overrides = Partial<CoordinatorInput> & { alive?: string[] };

function inputOf({ alive, ...overrides }: Overrides = {}): CoordinatorInput {
  return {
    op: 'put',
    id: 'coordinator-4',
    nodeId: 'n1',
    client: { replyTo: '_INBOX.client.1', from: 'client-ab', reqId: '17', kind: overrides.op === 'get' ? 'api.get' : 'api.put' },
    partition: 5,
    key,
    preferenceList: ['n1', 'n2', 'n3'],
    targets: (alive ?? ['n1', 'n2', 'n3']).map((node) => ({ node })),
    localHints: [],
    quorum: { n: 3, r: 2, w: 2 },
    primariesNeeded: 0,
    sloppy: true,
    timeoutMs: 1000,
    readRepairWaitMs: 50,
    context: [],
    value: bytes('v1'),
    ...overrides,
  };
}

const plain = (actions: readonly { type: string; params?: unknown }[]): Effect[] => actions.map((a) => ({ type: a.type, params: a.params }));

function start(overrides: Overrides = {}): [Snapshot, Effect[]] {
  const [snapshot, actions] = initialTransition(coordinatorMachine, inputOf(overrides));
  return [snapshot, plain(actions)];
}

function step(snapshot: Snapshot, event: CoordinatorEvent): [Snapshot, Effect[]] {
  const [next, actions] = transition(coordinatorMachine, snapshot, event);
  return [next, plain(actions)];
}

/** Feed events in order; returns the last snapshot and every effect along the way. */
function run(snapshot: Snapshot, events: CoordinatorEvent[]): [Snapshot, Effect[]] {
  const all: Effect[] = [];
  let s = snapshot;
  for (const e of events) {
    const [next, effects] = step(s, e);
    s = next;
    all.push(...effects);
  }
  return [s, all];
}

const answers = (effects: Effect[]) => effects.filter((e) => e.type === 'answerClient').map((e) => e.params as Answer);
const sent = (effects: Effect[]): Send[] =>
  effects.flatMap((e) => (e.type === 'send' ? [e.params as Send] : e.type === 'sendAll' ? (e.params as Send[]) : []));

// States the replicas may hold: two concurrent writes (siblings), and an older and a newer version.
const stateA: DvvSet = update([], [], 'n1/e1', bytes('A'));
const stateB: DvvSet = update([], [], 'n2/e2', bytes('B'));
const stateA2: DvvSet = update(stateA, join(stateA), 'n1/e1', bytes('A2'));

const coordinateOk = (state: DvvSet): CoordinatorEvent => ({ type: 'replica.coordinate.ok', from: 'n1', reqId: 'coordinator-4', body: { state } });
const putOk = (from: string): CoordinatorEvent => ({ type: 'replica.put.ok', from, reqId: 'coordinator-4', body: {} });
const getOk = (from: string, state: DvvSet | null): CoordinatorEvent => ({ type: 'replica.get.ok', from, reqId: 'coordinator-4', body: { state } });
const deadline: CoordinatorEvent = { type: 'deadline', reqId: 'coordinator-4' };

describe('coordinator machine: put', () => {
  it('schedules its deadline with an explicit id and asks only its local replica to make the dot', () => {
    const [s, effects] = start();
    expect(s.status).toBe('active');
    expect(effects.find((e) => e.type === 'xstate.raise')?.params).toMatchObject({ id: 'deadline', delay: 1000, event: { type: 'deadline' } });
    expect(sent(effects)).toEqual([
      { to: 'n1', kind: 'replica.coordinate', reqId: 'coordinator-4', body: { p: 5, key, context: [], value: bytes('v1'), hints: [] } },
    ]);
    expect(answers(effects)).toEqual([]);
  });

  it('replicates the committed state to the other live replicas and answers once on W acks', () => {
    const [s0] = start();
    const [s1, e1] = step(s0, coordinateOk(stateA));
    expect(sent(e1)).toEqual([
      { to: 'n2', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } },
      { to: 'n3', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } },
    ]);
    expect(answers(e1)).toEqual([]); // the local ack alone is 1 of W=2

    const [s2, e2] = step(s1, putOk('n2'));
    expect(answers(e2)).toEqual([
      { replyTo: '_INBOX.client.1', to: 'client-ab', reqId: '17', kind: 'api.put.ok', body: { context: encode(join(stateA)) } },
    ]);
    expect(decode(answers(e2)[0]!.body.context as Uint8Array)).toEqual([['n1/e1', 1]]);
    expect(s2.value).toBe('idle');

    // A late ack, a duplicate and then the deadline: nothing more reaches the client.
    const [s3, later] = run(s2, [putOk('n3'), putOk('n2'), deadline]);
    expect(later).toEqual([]);
    expect(s3.value).toBe('idle');
  });

  it('counts duplicate acks from one replica once', () => {
    const [s0] = start({ quorum: { n: 3, r: 2, w: 3 } });
    const [s1, dupes] = run(s0, [coordinateOk(stateA), putOk('n2'), putOk('n2'), putOk('n2')]);
    expect(answers(dupes)).toEqual([]);
    expect(s1.status).toBe('active');
    expect(s1.context.acked).toEqual(['n1', 'n2']);

    const [s2, e2] = step(s1, putOk('n3'));
    expect(answers(e2)).toHaveLength(1);
    expect(answers(e2)[0]!.kind).toBe('api.put.ok');
    expect(s2.value).toBe('idle');
    expect(step(s2, putOk('n3'))[1]).toEqual([]);
  });

  it('with W=1 answers as soon as the local replica committed, and still replicates', () => {
    const [s0] = start({ quorum: { n: 3, r: 1, w: 1 } });
    const [s1, e1] = step(s0, coordinateOk(stateA));
    expect(answers(e1)).toHaveLength(1);
    expect(sent(e1).map((m) => m.to)).toEqual(['n2', 'n3']);
    expect(s1.value).toBe('idle');
  });

  it('answers TIMEOUT once when the deadline comes before the local commit, and then is final', () => {
    const [s0] = start();
    const [s1, e1] = step(s0, deadline);
    expect(answers(e1)).toHaveLength(1);
    expect(answers(e1)[0]).toMatchObject({ kind: 'error', to: 'client-ab', reqId: '17', body: { code: 'TIMEOUT' } });
    expect(s1.value).toBe('idle');
    expect(run(s1, [coordinateOk(stateA), putOk('n2'), putOk('n3'), deadline])[1]).toEqual([]);
  });

  it('answers TIMEOUT once when the deadline comes between the local commit and W acks', () => {
    const [s0] = start();
    const [s1, e1] = run(s0, [coordinateOk(stateA), deadline]);
    expect(answers(e1)).toHaveLength(1);
    expect(answers(e1)[0]!.body).toMatchObject({ code: 'TIMEOUT' });
    expect(String(answers(e1)[0]!.body.message)).toContain('only 1 of the 2');
    expect(s1.value).toBe('idle');
    expect(run(s1, [putOk('n2'), putOk('n3')])[1]).toEqual([]);
  });

  it('passes the local replica error on to the client once', () => {
    const [s0] = start();
    const [s1, e1] = step(s0, {
      type: 'replica.error',
      from: 'n1',
      reqId: 'coordinator-4',
      body: { code: 'TOO_MANY_SIBLINGS', message: 'merge first' },
    });
    expect(answers(e1)).toEqual([
      { replyTo: '_INBOX.client.1', to: 'client-ab', reqId: '17', kind: 'error', body: { code: 'TOO_MANY_SIBLINGS', message: 'merge first' } },
    ]);
    expect(s1.value).toBe('idle');
    expect(step(s1, deadline)[1]).toEqual([]);
  });

  it('answers UNAVAILABLE {needed, alive} in the initial transition when fewer than W are alive, asking no replica', () => {
    const [s, effects] = start({ alive: ['n1'] });
    expect(s.value).toBe('idle');
    expect(sent(effects)).toEqual([]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', to: 'client-ab', reqId: '17', body: { code: 'UNAVAILABLE', needed: 2, alive: 1 } });
    expect(run(s, [coordinateOk(stateA), deadline])[1]).toEqual([]);
  });
});

describe('coordinator machine: get', () => {
  const get = (overrides: Overrides = {}) => start({ op: 'get', ...overrides });

  it('asks every live replica and answers once on R answers, with every sibling and one context', () => {
    const [s0, e0] = get();
    expect(sent(e0)).toEqual(['n1', 'n2', 'n3'].map((to) => ({ to, kind: 'replica.get', reqId: 'coordinator-4', body: { p: 5, key } })));
    expect(answers(e0)).toEqual([]);

    const [s1, e1] = step(s0, getOk('n1', stateA));
    expect(answers(e1)).toEqual([]);
    const [s2, e2] = step(s1, getOk('n2', stateB));
    expect(answers(e2)).toHaveLength(1);
    const answer = answers(e2)[0]!;
    expect(answer.kind).toBe('api.get.ok');
    expect(answer.body.found).toBe(true);
    expect((answer.body.values as Uint8Array[]).map(text).sort()).toEqual(['A', 'B']);
    expect(decode(answer.body.context as Uint8Array)).toEqual([
      ['n1/e1', 1],
      ['n2/e2', 1],
    ]);
    // The client has its answer: no repair yet, we wait briefly for the third replica.
    expect(sent(e2)).toEqual([]);
    expect(e2.find((e) => e.type === 'xstate.raise')?.params).toMatchObject({ id: 'repairWait', delay: 50 });
    expect(s2.status).toBe('active');

    // The third replica already had the merge: only the two that answered with one sibling are repaired.
    const merged = sync(stateA, stateB);
    const [s3, e3] = step(s2, getOk('n3', merged));
    expect(answers(e3)).toEqual([]);
    expect(sent(e3)).toEqual(
      ['n1', 'n2'].map((to) => ({ to, kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: merged } })),
    );
    expect(s3.value).toBe('idle');
    expect(run(s3, [deadline, { type: 'repairWaitOver', reqId: 'coordinator-4' }, getOk('n3', merged)])[1]).toEqual([]);
  });

  it('repairs only the replica that answered with nothing', () => {
    const [s0] = get();
    const [s1, effects] = run(s0, [getOk('n1', stateA), getOk('n2', stateA), getOk('n3', null)]);
    expect(answers(effects)).toHaveLength(1);
    expect(sent(effects).filter((m) => m.kind === 'replica.put')).toEqual([
      { to: 'n3', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } },
    ]);
    expect(s1.value).toBe('idle');
  });

  it('after the repair wait, repairs the stale replica that answered and not the one that never did', () => {
    const [s0] = get();
    const [s1, e1] = run(s0, [getOk('n1', stateA2), getOk('n2', stateA)]);
    expect(answers(e1)).toHaveLength(1);
    expect((answers(e1)[0]!.body.values as Uint8Array[]).map(text)).toEqual(['A2']);
    const [s2, e2] = step(s1, { type: 'repairWaitOver', reqId: 'coordinator-4' });
    expect(answers(e2)).toEqual([]);
    expect(sent(e2)).toEqual([{ to: 'n2', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA2 } }]);
    expect(s2.value).toBe('idle');
  });

  it('sends no repair when every answer was already the merge', () => {
    const [, effects] = run(get()[0], [getOk('n1', stateA), getOk('n2', stateA), getOk('n3', stateA)]);
    expect(answers(effects)).toHaveLength(1);
    expect(sent(effects)).toEqual([]);
  });

  it('answers found: false for a key no replica has, and repairs nothing', () => {
    const [s1, effects] = run(get()[0], [getOk('n1', null), getOk('n2', null), getOk('n3', null)]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]!.body).toMatchObject({ found: false, values: [] });
    expect(sent(effects)).toEqual([]);
    expect(s1.value).toBe('idle');
  });

  it('counts duplicate answers from one replica once', () => {
    const [s1, effects] = run(get()[0], [getOk('n1', stateA), getOk('n1', stateA), getOk('n1', stateA)]);
    expect(answers(effects)).toEqual([]);
    expect(s1.status).toBe('active');
  });

  it('answers TIMEOUT once when the deadline comes before R answers', () => {
    const [s1, effects] = run(get()[0], [getOk('n1', stateA), deadline]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', body: { code: 'TIMEOUT' } });
    expect(s1.value).toBe('idle');
    expect(run(s1, [getOk('n2', stateA), getOk('n3', stateA), deadline])[1]).toEqual([]);
  });

  it('does not answer twice when the deadline arrives after the quorum', () => {
    const [s1, e1] = run(get()[0], [getOk('n1', stateA), getOk('n2', null)]);
    expect(answers(e1)).toHaveLength(1);
    const [s2, e2] = step(s1, deadline);
    expect(answers(e2)).toEqual([]);
    expect(sent(e2)).toEqual([{ to: 'n2', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } }]);
    expect(s2.value).toBe('idle');
  });

  it('answers UNAVAILABLE {needed, alive} in the initial transition when fewer than R are alive', () => {
    const [s, effects] = get({ alive: ['n1', 'n2'], quorum: { n: 3, r: 3, w: 2 } });
    expect(s.value).toBe('idle');
    expect(sent(effects)).toEqual([]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', body: { code: 'UNAVAILABLE', needed: 3, alive: 2 } });
  });
});

describe('coordinator machine: sloppy quorum', () => {
  // n3 is down; n4, a fallback, stands in for it and keeps the write with a hint.
  const sloppyTargets = { targets: [{ node: 'n1' }, { node: 'n2' }, { node: 'n4', hintFor: 'n3' }] };

  it('sends the fallback its hint, and counts its ack toward W', () => {
    let [s, effects] = start({ ...sloppyTargets, quorum: { n: 3, r: 2, w: 2 } });
    [s, effects] = step(s, coordinateOk(stateA));
    const puts = sent(effects);
    expect(puts.map((m) => [m.to, (m.body as { hint?: string }).hint])).toEqual([
      ['n2', undefined],
      ['n4', 'n3'],
    ]);
    [s, effects] = step(s, putOk('n4'));
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]!.kind).toBe('api.put.ok');
    expect(s.value).toBe('idle');
  });

  it('with sloppy: false a fallback does not count: UNAVAILABLE when too few primaries are up', () => {
    const [s, effects] = start({ ...sloppyTargets, quorum: { n: 3, r: 2, w: 3 }, sloppy: false });
    expect(s.value).toBe('idle');
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', body: { code: 'UNAVAILABLE', needed: 3, alive: 2 } });
  });

  it('with sloppy: false only primary acks make W', () => {
    let [s, effects] = start({ ...sloppyTargets, quorum: { n: 3, r: 2, w: 2 }, sloppy: false });
    [s] = step(s, coordinateOk(stateA));
    [s, effects] = step(s, putOk('n4'));
    expect(answers(effects)).toEqual([]);
    [s, effects] = step(s, putOk('n2'));
    expect(answers(effects)[0]!.kind).toBe('api.put.ok');
  });

  it('pw: the answer waits for that many primaries even when W is met', () => {
    let [s, effects] = start({ ...sloppyTargets, quorum: { n: 3, r: 2, w: 2 }, primariesNeeded: 2 });
    [s] = step(s, coordinateOk(stateA));
    [s, effects] = step(s, putOk('n4'));
    expect(answers(effects)).toEqual([]);
    [s, effects] = step(s, putOk('n2'));
    expect(answers(effects)[0]!.kind).toBe('api.put.ok');
  });

  it('the local write keeps the hints of orphaned primaries', () => {
    const [, effects] = start({ alive: ['n1', 'n2'], localHints: ['n3'] });
    expect(sent(effects)[0]).toMatchObject({ to: 'n1', kind: 'replica.coordinate', body: { hints: ['n3'] } });
  });

  it('a get counts a fallback toward R unless pr asks for primaries', () => {
    let [s, effects] = start({ op: 'get', ...sloppyTargets, quorum: { n: 3, r: 2, w: 2 }, primariesNeeded: 2 });
    [s, effects] = step(s, getOk('n4', stateA));
    [s, effects] = step(s, getOk('n1', stateA));
    expect(answers(effects)).toEqual([]);
    [s, effects] = step(s, getOk('n2', stateA));
    expect(answers(effects)[0]!.kind).toBe('api.get.ok');
  });
});

describe('coordinator machine: reuse (idle between requests)', () => {
  it('going idle cancels its timers and tells the node, with the request id it served', () => {
    const [s1, effects] = run(start({ op: 'get' })[0], [getOk('n1', stateA), getOk('n2', stateA)]);
    expect(s1.value).toBe('repairing');
    const [s2, e2] = step(s1, { type: 'repairWaitOver', reqId: 'coordinator-4' });
    expect(answers(effects)).toHaveLength(1);
    expect(s2).toMatchObject({ status: 'active', value: 'idle' });
    expect(e2.filter((e) => e.type === 'xstate.cancel').map((e) => e.params)).toEqual([{ sendId: 'deadline' }, { sendId: 'repairWait' }]);
    expect(e2.filter((e) => e.type === 'tellNode').map((e) => e.params)).toEqual([{ type: 'coordinator.done', id: 'coordinator-4' }]);
  });

  it('coordinator.start serves a new request with nothing of the previous one', () => {
    // A get that ended on its deadline with one answer recorded.
    const [s1] = run(start({ op: 'get' })[0], [getOk('n1', stateA), deadline]);
    expect(s1.value).toBe('idle');
    expect(s1.context.answers).toHaveProperty('n1');

    const next = inputOf({ id: 'coordinator-4.2', client: { replyTo: '_INBOX.client.2', from: 'client-cd', reqId: '18', kind: 'api.put' } });
    const [s2, e2] = step(s1, { type: 'coordinator.start', input: next });
    expect(s2.value).toBe('coordinating');
    expect(s2.context).toEqual({ ...next, acked: [], state: [], answers: {} });
    // A fresh deadline for the new request, and its first message under the new id.
    expect(e2.find((e) => e.type === 'xstate.raise')?.params).toMatchObject({ id: 'deadline', delay: 1000, event: { type: 'deadline', reqId: 'coordinator-4.2' } });
    expect(sent(e2)).toEqual([expect.objectContaining({ to: 'n1', kind: 'replica.coordinate', reqId: 'coordinator-4.2' })]);

    // The previous request's deadline, had it not been cancelled, is ignored.
    expect(step(s2, deadline)[1]).toEqual([]);
    expect(step(s2, deadline)[0].value).toBe('coordinating');
    // The new request answers its own client, once.
    const [s3, e3] = run(s2, [
      { type: 'replica.coordinate.ok', from: 'n1', reqId: 'coordinator-4.2', body: { state: stateB } },
      { type: 'replica.put.ok', from: 'n2', reqId: 'coordinator-4.2', body: {} },
    ]);
    expect(answers(e3)).toEqual([expect.objectContaining({ to: 'client-cd', reqId: '18', kind: 'api.put.ok' })]);
    expect(s3.value).toBe('idle');
    expect(e3.filter((e) => e.type === 'tellNode').map((e) => e.params)).toEqual([{ type: 'coordinator.done', id: 'coordinator-4.2' }]);
  });

  it('a timeout of the new request reports its own count, not the previous acks', () => {
    const [s1] = run(start()[0], [coordinateOk(stateA), putOk('n2')]);
    expect(s1.value).toBe('idle');
    const next = inputOf({ id: 'coordinator-4.3' });
    const [s2] = step(s1, { type: 'coordinator.start', input: next });
    const [, e3] = step(s2, { type: 'deadline', reqId: 'coordinator-4.3' });
    expect(answers(e3)[0]).toMatchObject({ kind: 'error', body: { code: 'TIMEOUT', message: expect.stringContaining('only 0 of the 2') } });
  });
});
