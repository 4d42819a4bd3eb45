/**
 * The coordinator core (actors/coordinator.core.ts) driven directly: startRequest and step, effects
 * as data. The invariant: the client is
 * answered exactly once, on quorum, on the deadline, with a replica's error, or with UNAVAILABLE
 * before any replica is asked; each replica counts once however often it answers; a get repairs
 * exactly the replicas whose answer lacked part of the merge. Besides: every transition step makes
 * is one the declared state table (the diagram's source) lists.
 */
import { describe, expect, it } from 'vitest';
import {
  type CoordinatorEffect,
  type CoordinatorRequest,
  type CoreEvent,
  coordinatorStates,
  startRequest,
  step as coreStep,
} from '../../actors/coordinator.core.js';
import type { CoordinatorInput } from '../../actors/coordinator.machine.js';
import { type DvvSet, join, sync, update } from '../../src/core/dvv.js';
import { decode, encode } from '../../src/protocol/codec.js';

type Effect = CoordinatorEffect;
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
/** The request as the tests look at it: its state name as `value`, `status` done or active. */
interface Snapshot {
  request: CoordinatorRequest;
  value: string;
  status: 'active' | 'done';
  context: CoordinatorRequest['context'];
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const key = bytes('cart:1');
/** The time the tests stamp on every event: the core reads no clock. */
const NOW = 10_000;

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
    spares: [],
    fallbackWaitMs: 300,
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

function snap(request: CoordinatorRequest): Snapshot {
  return { request, value: request.state, status: request.state === 'done' ? 'done' : 'active', context: request.context };
}

/** Checks the transition against the declared table: the diagram must show every move the core makes. */
function declared(from: CoordinatorRequest, event: CoreEvent, to: CoordinatorRequest): void {
  if (from === to) return;
  // The event's targets, and where those go at once without an event (their `always`).
  const direct = coordinatorStates[from.state].on[event.type] ?? [];
  const allowed = [...direct, ...direct.flatMap((s) => coordinatorStates[s].always ?? [])];
  expect(allowed).toContain(to.state);
}

function start(overrides: Overrides = {}): [Snapshot, Effect[]] {
  const { request, effects } = startRequest(inputOf(overrides), NOW);
  expect([...(coordinatorStates.checking.always ?? [])]).toContain(request.state);
  return [snap(request), effects];
}

function step(snapshot: Snapshot, event: CoreEvent): [Snapshot, Effect[]] {
  const { request, effects } = coreStep(snapshot.request, event, NOW);
  declared(snapshot.request, event, request);
  return [snap(request), effects];
}

/** Feed events in order; returns the last snapshot and every effect along the way. */
function run(snapshot: Snapshot, events: CoreEvent[]): [Snapshot, Effect[]] {
  const all: Effect[] = [];
  let s = snapshot;
  for (const e of events) {
    const [next, effects] = step(s, e);
    s = next;
    all.push(...effects);
  }
  return [s, all];
}

const timer = (effects: Effect[], name: string) => effects.find((e) => e.type === 'setTimer' && e.name === name);

const answers = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'answerClient' ? [e.params as Answer] : []));
const sent = (effects: Effect[]): Send[] =>
  effects.flatMap((e) => (e.type === 'send' ? [e.params as Send] : e.type === 'sendAll' ? (e.params as Send[]) : []));

// States the replicas may hold: two concurrent writes (siblings), and an older and a newer version.
const stateA: DvvSet = update([], [], 'n1/e1', bytes('A'));
const stateB: DvvSet = update([], [], 'n2/e2', bytes('B'));
const stateA2: DvvSet = update(stateA, join(stateA), 'n1/e1', bytes('A2'));

const coordinateOk = (state: DvvSet): CoreEvent => ({ type: 'replica.coordinate.ok', from: 'n1', reqId: 'coordinator-4', body: { state } });
const putOk = (from: string): CoreEvent => ({ type: 'replica.put.ok', from, reqId: 'coordinator-4', body: {} });
const getOk = (from: string, state: DvvSet | null): CoreEvent => ({ type: 'replica.get.ok', from, reqId: 'coordinator-4', body: { state } });
const deadline: CoreEvent = { type: 'deadline', reqId: 'coordinator-4' };

describe('coordinator core: put', () => {
  it('schedules its deadline with an explicit id and asks only its local replica to make the dot', () => {
    const [s, effects] = start();
    expect(s.status).toBe('active');
    expect(timer(effects, 'deadline')).toEqual({ type: 'setTimer', name: 'deadline', at: NOW + 1000, event: { type: 'deadline', reqId: 'coordinator-4' } });
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
    expect(s2.value).toBe('done');

    // A late ack, a duplicate and then the deadline: nothing more reaches the client.
    const [s3, later] = run(s2, [putOk('n3'), putOk('n2'), deadline]);
    expect(later).toEqual([]);
    expect(s3.value).toBe('done');
  });

  it('sends the others the state its replica made before that commit is done, and counts the commit toward W', () => {
    const [s0] = start();
    const made: CoreEvent = { type: 'replica.coordinate.made', from: 'n1', reqId: 'coordinator-4', body: { state: stateA } };
    const [s1, e1] = step(s0, made);
    expect(sent(e1).map((m) => [m.to, m.kind])).toEqual([['n2', 'replica.put'], ['n3', 'replica.put']]);
    expect(s1.context.acked).toEqual([]);
    // Both peers acked, yet the local commit is not: no answer (W = 2 counts only committed copies).
    const [s2, e2] = run(s1, [putOk('n2')]);
    expect(answers(e2)).toEqual([]);
    const [s3, e3] = step(s2, coordinateOk(stateA));
    expect(answers(e3)).toHaveLength(1);
    expect(answers(e3)[0]!.kind).toBe('api.put.ok');
    expect(s3.value).toBe('done');
  });

  it('with W=1 and a made dot, answers only once the local commit is done', () => {
    const [s0] = start({ quorum: { n: 3, r: 1, w: 1 } });
    const [s1, e1] = run(s0, [{ type: 'replica.coordinate.made', from: 'n1', reqId: 'coordinator-4', body: { state: stateA } }, putOk('n2')]);
    // n2's ack alone is W = 1: the answer comes on it, the local commit may still fail.
    expect(answers(e1)).toHaveLength(1);
    expect(s1.value).toBe('done');
  });

  it('answers the error when the local commit of a dot already sent fails', () => {
    const [s0] = start();
    const [s1, e1] = run(s0, [
      { type: 'replica.coordinate.made', from: 'n1', reqId: 'coordinator-4', body: { state: stateA } },
      { type: 'replica.error', from: 'n2', reqId: 'coordinator-4', body: { code: 'OVERLOADED', message: 'busy' } },
    ]);
    expect(answers(e1)).toEqual([]);
    const [s2, e2] = step(s1, { type: 'replica.error', from: 'n1', reqId: 'coordinator-4', body: { code: 'STORE_FAILED', message: 'disk' } });
    expect(answers(e2)).toMatchObject([{ kind: 'error', body: { code: 'STORE_FAILED' } }]);
    expect(s2.value).toBe('done');
  });

  it('takes a made dot or a commit ack only from its own replica', () => {
    const [s0] = start();
    const forged = run(s0, [
      { type: 'replica.coordinate.made', from: 'n2', reqId: 'coordinator-4', body: { state: stateB } },
      { type: 'replica.coordinate.ok', from: 'n3', reqId: 'coordinator-4', body: { state: stateB } },
    ]);
    expect(forged[1]).toEqual([]);
    expect(forged[0].value).toBe('coordinating');
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
    expect(s2.value).toBe('done');
    expect(step(s2, putOk('n3'))[1]).toEqual([]);
  });

  it('with W=1 answers as soon as the local replica committed, and still replicates', () => {
    const [s0] = start({ quorum: { n: 3, r: 1, w: 1 } });
    const [s1, e1] = step(s0, coordinateOk(stateA));
    expect(answers(e1)).toHaveLength(1);
    expect(sent(e1).map((m) => m.to)).toEqual(['n2', 'n3']);
    expect(s1.value).toBe('done');
  });

  it('answers TIMEOUT once when the deadline comes before the local commit, and then is final', () => {
    const [s0] = start();
    const [s1, e1] = step(s0, deadline);
    expect(answers(e1)).toHaveLength(1);
    expect(answers(e1)[0]).toMatchObject({ kind: 'error', to: 'client-ab', reqId: '17', body: { code: 'TIMEOUT' } });
    expect(s1.value).toBe('done');
    expect(run(s1, [coordinateOk(stateA), putOk('n2'), putOk('n3'), deadline])[1]).toEqual([]);
  });

  it('answers TIMEOUT once when the deadline comes between the local commit and W acks', () => {
    const [s0] = start();
    const [s1, e1] = run(s0, [coordinateOk(stateA), deadline]);
    expect(answers(e1)).toHaveLength(1);
    expect(answers(e1)[0]!.body).toMatchObject({ code: 'TIMEOUT' });
    expect(String(answers(e1)[0]!.body.message)).toContain('only 1 of the 2');
    expect(s1.value).toBe('done');
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
    expect(s1.value).toBe('done');
    expect(step(s1, deadline)[1]).toEqual([]);
  });

  it('answers UNAVAILABLE {needed, alive} in the initial transition when fewer than W are alive, asking no replica', () => {
    const [s, effects] = start({ alive: ['n1'] });
    expect(s.value).toBe('done');
    expect(sent(effects)).toEqual([]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', to: 'client-ab', reqId: '17', body: { code: 'UNAVAILABLE', needed: 2, alive: 1 } });
    expect(run(s, [coordinateOk(stateA), deadline])[1]).toEqual([]);
  });
});

describe('coordinator core: get', () => {
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
    expect(timer(e2, 'repairWait')).toMatchObject({ at: NOW + 50, event: { type: 'repairWaitOver', reqId: 'coordinator-4' } });
    expect(s2.status).toBe('active');

    // The third replica already had the merge: only the two that answered with one sibling are repaired.
    const merged = sync(stateA, stateB);
    const [s3, e3] = step(s2, getOk('n3', merged));
    expect(answers(e3)).toEqual([]);
    expect(sent(e3)).toEqual(
      ['n1', 'n2'].map((to) => ({ to, kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: merged } })),
    );
    expect(s3.value).toBe('done');
    expect(run(s3, [deadline, { type: 'repairWaitOver', reqId: 'coordinator-4' }, getOk('n3', merged)])[1]).toEqual([]);
  });

  it('repairs only the replica that answered with nothing', () => {
    const [s0] = get();
    const [s1, effects] = run(s0, [getOk('n1', stateA), getOk('n2', stateA), getOk('n3', null)]);
    expect(answers(effects)).toHaveLength(1);
    expect(sent(effects).filter((m) => m.kind === 'replica.put')).toEqual([
      { to: 'n3', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } },
    ]);
    expect(s1.value).toBe('done');
  });

  it('after the repair wait, repairs the stale replica that answered and not the one that never did', () => {
    const [s0] = get();
    const [s1, e1] = run(s0, [getOk('n1', stateA2), getOk('n2', stateA)]);
    expect(answers(e1)).toHaveLength(1);
    expect((answers(e1)[0]!.body.values as Uint8Array[]).map(text)).toEqual(['A2']);
    const [s2, e2] = step(s1, { type: 'repairWaitOver', reqId: 'coordinator-4' });
    expect(answers(e2)).toEqual([]);
    expect(sent(e2)).toEqual([{ to: 'n2', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA2 } }]);
    expect(s2.value).toBe('done');
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
    expect(s1.value).toBe('done');
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
    expect(s1.value).toBe('done');
    expect(run(s1, [getOk('n2', stateA), getOk('n3', stateA), deadline])[1]).toEqual([]);
  });

  it('does not answer twice when the deadline arrives after the quorum', () => {
    const [s1, e1] = run(get()[0], [getOk('n1', stateA), getOk('n2', null)]);
    expect(answers(e1)).toHaveLength(1);
    const [s2, e2] = step(s1, deadline);
    expect(answers(e2)).toEqual([]);
    expect(sent(e2)).toEqual([{ to: 'n2', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA } }]);
    expect(s2.value).toBe('done');
  });

  it('answers UNAVAILABLE {needed, alive} in the initial transition when fewer than R are alive', () => {
    const [s, effects] = get({ alive: ['n1', 'n2'], quorum: { n: 3, r: 3, w: 2 } });
    expect(s.value).toBe('done');
    expect(sent(effects)).toEqual([]);
    expect(answers(effects)).toHaveLength(1);
    expect(answers(effects)[0]).toMatchObject({ kind: 'error', body: { code: 'UNAVAILABLE', needed: 3, alive: 2 } });
  });
});

describe('coordinator core: sloppy quorum', () => {
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
    expect(s.value).toBe('done');
  });

  it('with sloppy: false a fallback does not count: UNAVAILABLE when too few primaries are up', () => {
    const [s, effects] = start({ ...sloppyTargets, quorum: { n: 3, r: 2, w: 3 }, sloppy: false });
    expect(s.value).toBe('done');
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

describe('coordinator core: the end of a request', () => {
  it('a finished request says done once, with its id, and takes nothing after', () => {
    const [s1, effects] = run(start({ op: 'get' })[0], [getOk('n1', stateA), getOk('n2', stateA)]);
    expect(s1.value).toBe('repairing');
    expect(effects.filter((e) => e.type === 'done')).toEqual([]);
    const [s2, e2] = step(s1, { type: 'repairWaitOver', reqId: 'coordinator-4' });
    expect(answers(effects)).toHaveLength(1);
    expect(s2).toMatchObject({ status: 'done', value: 'done' });
    expect(e2.filter((e) => e.type === 'done')).toEqual([{ type: 'done', id: 'coordinator-4' }]);
    expect(run(s2, [deadline, getOk('n3', stateA), { type: 'repairWaitOver', reqId: 'coordinator-4' }])[1]).toEqual([]);
  });

  it('every way a request ends says done exactly once and answers the client exactly once', () => {
    const ends: [Overrides, CoreEvent[]][] = [
      [{ alive: ['n1'] }, []],
      [{}, [deadline]],
      [{}, [coordinateOk(stateA), putOk('n2')]],
      [{}, [{ type: 'replica.error', from: 'n1', reqId: 'coordinator-4', body: { code: 'X', message: 'y' } }]],
      [{ op: 'get' }, [getOk('n1', stateA), getOk('n2', stateA), getOk('n3', stateA)]],
      [{ op: 'get' }, [getOk('n1', stateA), deadline]],
    ];
    for (const [overrides, events] of ends) {
      const [s0, e0] = start(overrides);
      const [s1, e1] = run(s0, [...events, ...events, deadline]);
      expect(s1.value).toBe('done');
      expect([...e0, ...e1].filter((e) => e.type === 'done')).toEqual([{ type: 'done', id: 'coordinator-4' }]);
      expect(answers([...e0, ...e1])).toHaveLength(1);
    }
  });

  it('an event for another request id changes nothing (request ids keep requests apart)', () => {
    const [s0] = start();
    const [s1, e1] = step(s0, { type: 'replica.coordinate.ok', from: 'n1', reqId: 'coordinator-5', body: { state: stateA } });
    expect(e1).toEqual([]);
    expect(s1.request).toBe(s0.request);
    const [s2, e2] = step(s1, { type: 'deadline', reqId: 'coordinator-5' });
    expect(e2).toEqual([]);
    expect(s2.value).toBe('coordinating');
  });

  it("a timeout reports the request's own count of answers", () => {
    const [s1] = run(start()[0], [coordinateOk(stateA)]);
    const [, e2] = step(s1, deadline);
    expect(answers(e2)[0]).toMatchObject({ kind: 'error', body: { code: 'TIMEOUT', message: expect.stringContaining('only 1 of the 2') } });
    const [, e3] = step(start()[0], deadline);
    expect(answers(e3)[0]).toMatchObject({ kind: 'error', body: { code: 'TIMEOUT', message: expect.stringContaining('only 0 of the 2') } });
  });

  it('the declared table names only states that exist, and only done is final', () => {
    const names = Object.keys(coordinatorStates);
    for (const [name, decl] of Object.entries(coordinatorStates)) {
      for (const to of [...Object.values(decl.on).flat(), ...(decl.always ?? [])]) expect(names).toContain(to);
      expect(Boolean(decl.final)).toBe(name === 'done');
    }
  });
});

describe('coordinator core: spares stand in for silent targets (no waiting for the failure detector)', () => {
  const fallbackWait: CoreEvent = { type: 'fallbackWait', reqId: 'coordinator-4' };
  const made: CoreEvent = { type: 'replica.coordinate.made', from: 'n1', reqId: 'coordinator-4', body: { state: stateA } };

  it('a put whose remote targets stay silent asks the next spares, each with a hint for the target it replaces', () => {
    const [s0] = start({ spares: ['n4', 'n5'] });
    const [s1, e1] = step(s0, made);
    expect(timer(e1, 'fallbackWait')).toEqual({ type: 'setTimer', name: 'fallbackWait', at: NOW + 300, event: fallbackWait });
    const [s2, e2] = run(s1, [coordinateOk(stateA), fallbackWait]);
    expect(s2.value).toBe('replicating');
    expect(sent(e2)).toEqual([
      { to: 'n4', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA, hint: 'n2' } },
      { to: 'n5', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA, hint: 'n3' } },
    ]);
    // No spare is left: no further wait is armed.
    expect(timer(e2, 'fallbackWait')).toBeUndefined();
    const [s3, e3] = step(s2, putOk('n5'));
    expect(s3.status).toBe('done');
    expect(answers(e3).map((a) => a.kind)).toEqual(['api.put.ok']);
  });

  it('replaces only the silent ones, once each; a replaced target that answers late still counts', () => {
    const [s0] = start({ spares: ['n4', 'n5'], quorum: { n: 3, r: 2, w: 3 } });
    const [s1, e1] = run(s0, [made, putOk('n2'), fallbackWait]);
    expect(sent(e1).filter((m) => m.to === 'n4' || m.to === 'n5')).toEqual([{ to: 'n4', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA, hint: 'n3' } }]);
    // The next wait replaces n3 no more; n4, silent too, gets the last spare, standing in for n3 as well.
    const [s2, e2] = step(s1, fallbackWait);
    expect(sent(e2)).toEqual([{ to: 'n5', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA, hint: 'n3' } }]);
    const [s3, e3] = run(s2, [coordinateOk(stateA), putOk('n3')]);
    expect(s3.status).toBe('done');
    expect(answers(e3).map((a) => a.kind)).toEqual(['api.put.ok']);
  });

  it('never replaces the local replica, and a strict (sloppy: false) request never uses spares', () => {
    const [s0] = start({ spares: ['n4'], quorum: { n: 3, r: 2, w: 3 } });
    const [s1, e1] = run(s0, [made, putOk('n2'), putOk('n3'), fallbackWait]);
    // n2 and n3 answered, the local commit is pending: nobody is silent but this node's own disk.
    expect(sent(e1).filter((m) => m.to === 'n4')).toEqual([]);
    expect(s1.value).toBe('replicating');

    const [t0] = start({ spares: ['n4'], sloppy: false });
    const [, f1] = step(t0, made);
    expect(timer(f1, 'fallbackWait')).toBeUndefined();
  });

  it('a get whose targets stay silent asks a spare; its answer counts toward R and it is repaired with a hint', () => {
    const [s0, e0] = start({ op: 'get', spares: ['n4'] });
    expect(timer(e0, 'fallbackWait')).toMatchObject({ at: NOW + 300 });
    const [s1, e1] = run(s0, [getOk('n1', stateA), fallbackWait]);
    expect(sent(e1)).toEqual([{ to: 'n4', kind: 'replica.get', reqId: 'coordinator-4', body: { p: 5, key } }]);
    const [s2, e2] = step(s1, getOk('n4', null));
    expect(answers(e2)).toHaveLength(1);
    expect(answers(e2)[0]!.kind).toBe('api.get.ok');
    expect(s2.value).toBe('repairing');
    const [s3, e3] = step(s2, { type: 'repairWaitOver', reqId: 'coordinator-4' });
    expect(s3.status).toBe('done');
    expect(sent(e3)).toEqual([{ to: 'n4', kind: 'replica.put', reqId: 'coordinator-4', body: { p: 5, key, state: stateA, hint: 'n2' } }]);
  });
});
