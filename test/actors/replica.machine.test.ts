/**
 * The replica machine through xstate's pure transition functions: every effect comes back as an
 * action object (type and params), so we can check that no ok is sent before the store reports the
 * commit (Dynamo §4.5: an ack means durable).
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { DvvSet } from '../../src/core/dvv.js';
import type { ReplicaEvent } from '../../actors/replica.events.js';
import { type ReplicaInput, replicaMachine } from '../../actors/replica.machine.js';

type Snapshot = SnapshotFrom<typeof replicaMachine>;
interface Effect {
  type: string;
  params?: unknown;
}

const input: ReplicaInput = { partition: 7, siblingsMax: 10, writesInFlightMax: 2 };
const key = new TextEncoder().encode('cart:1');
const remoteState: DvvSet = [['n2/e2', 1, [new TextEncoder().encode('v')]]];

function start(overrides: Partial<ReplicaInput> = {}): Snapshot {
  const [snapshot, actions] = initialTransition(replicaMachine, { ...input, ...overrides });
  expect(actions).toEqual([]);
  return snapshot;
}

function step(snapshot: Snapshot, event: ReplicaEvent): [Snapshot, Effect[]] {
  const [next, actions] = transition(replicaMachine, snapshot, event);
  return [next, actions.map((a) => ({ type: a.type, params: a.params }))];
}

const put = (from: string, reqId: string): ReplicaEvent => ({ type: 'replica.put', from, reqId, body: { p: 7, key, state: remoteState } });
const coordinate = (reqId: string): ReplicaEvent => ({
  type: 'replica.coordinate',
  from: 'n1',
  reqId,
  body: { p: 7, key, context: [], value: new TextEncoder().encode('new') },
});

const sends = (effects: Effect[]) => effects.filter((e) => e.type === 'send');
const commits = (effects: Effect[]) => effects.filter((e) => e.type === 'commitWrite');

describe('replica machine', () => {
  it('starts serving with no writes in flight', () => {
    const s = start();
    expect(s.value).toBe('serving');
    expect(s.context.writesInFlight).toBe(0);
  });

  it('replica.put commits first and sends nothing until the store reports the commit', () => {
    const [s1, effects] = step(start(), put('n2', 'coordinator-3'));
    expect(commits(effects)).toEqual([
      {
        type: 'commitWrite',
        params: { from: 'n2', reqId: 'coordinator-3', p: 7, key, answer: 'replica.put.ok', hints: [], write: { kind: 'sync', state: remoteState } },
      },
    ]);
    expect(sends(effects)).toEqual([]);
    expect(s1.context.writesInFlight).toBe(1);

    // Nothing unrelated makes it ack: a read is answered by the store, not by a send.
    const [s2, readEffects] = step(s1, { type: 'replica.get', from: 'n3', reqId: 'coordinator-9', body: { p: 7, key } });
    expect(readEffects).toEqual([{ type: 'readAndAnswer', params: { from: 'n3', reqId: 'coordinator-9', p: 7, key } }]);

    const [s3, ackEffects] = step(s2, {
      type: 'store.committed',
      from: 'n2',
      reqId: 'coordinator-3',
      answer: 'replica.put.ok',
      outcome: { ok: true, state: remoteState, siblings: 1 },
    });
    expect(ackEffects).toEqual([{ type: 'send', params: { to: 'n2', kind: 'replica.put.ok', reqId: 'coordinator-3', body: {} } }]);
    expect(s3.context.writesInFlight).toBe(0);
  });

  it('replica.coordinate makes a dot with its own clock id and answers the committed state only after the commit', () => {
    const [s1, effects] = step(start(), coordinate('coordinator-1'));
    expect(sends(effects)).toEqual([]);
    expect(commits(effects)).toHaveLength(1);
    const params = commits(effects)[0]!.params as { answer: string; write: { kind: string; siblingsMax: number } };
    expect(params.answer).toBe('replica.coordinate.ok');
    expect(params.write).toMatchObject({ kind: 'coordinate', siblingsMax: 10 });

    const committed: DvvSet = [['n1/e1', 1, [new TextEncoder().encode('new')]]];
    const [, ack] = step(s1, {
      type: 'store.committed',
      from: 'n1',
      reqId: 'coordinator-1',
      answer: 'replica.coordinate.ok',
      outcome: { ok: true, state: committed, siblings: 1 },
    });
    expect(ack).toEqual([{ type: 'send', params: { to: 'n1', kind: 'replica.coordinate.ok', reqId: 'coordinator-1', body: { state: committed } } }]);
  });

  it('a write the store refused (TOO_MANY_SIBLINGS) is answered with replica.error carrying that code', () => {
    const [s1] = step(start(), coordinate('coordinator-1'));
    const [, effects] = step(s1, {
      type: 'store.committed',
      from: 'n1',
      reqId: 'coordinator-1',
      answer: 'replica.coordinate.ok',
      outcome: { ok: false, code: 'TOO_MANY_SIBLINGS', message: 'too many', siblings: 11 },
    });
    expect(effects).toEqual([
      { type: 'send', params: { to: 'n1', kind: 'replica.error', reqId: 'coordinator-1', body: { code: 'TOO_MANY_SIBLINGS', message: 'too many' } } },
    ]);
  });

  it('store.failed answers replica.error INTERNAL, never an ok, and frees the slot', () => {
    const [s1] = step(start(), put('n2', 'coordinator-3'));
    const [s2, effects] = step(s1, { type: 'store.failed', from: 'n2', reqId: 'coordinator-3', message: 'disk full' });
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatchObject({ type: 'send', params: { to: 'n2', kind: 'replica.error', reqId: 'coordinator-3', body: { code: 'INTERNAL' } } });
    expect((effects[0]!.params as { body: { message: string } }).body.message).toContain('disk full');
    expect(s2.context.writesInFlight).toBe(0);
  });

  it('beyond writesInFlightMax it answers OVERLOADED at once and starts no commit', () => {
    let s = start({ writesInFlightMax: 2 });
    [s] = step(s, put('n2', 'a'));
    [s] = step(s, coordinate('b'));
    expect(s.context.writesInFlight).toBe(2);

    const [s3, effects] = step(s, put('n3', 'c'));
    expect(commits(effects)).toEqual([]);
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatchObject({ type: 'send', params: { to: 'n3', kind: 'replica.error', reqId: 'c', body: { code: 'OVERLOADED' } } });
    expect(s3.context.writesInFlight).toBe(2);

    const [, coordEffects] = step(s3, coordinate('d'));
    expect(commits(coordEffects)).toEqual([]);
    expect(coordEffects[0]).toMatchObject({ type: 'send', params: { kind: 'replica.error', body: { code: 'OVERLOADED' } } });

    // Once a commit completes there is room again.
    const [s4] = step(s3, { type: 'store.committed', from: 'n2', reqId: 'a', answer: 'replica.put.ok', outcome: { ok: true, state: remoteState, siblings: 1 } });
    const [, again] = step(s4, put('n3', 'e'));
    expect(commits(again)).toHaveLength(1);
    expect(sends(again)).toEqual([]);
  });
});
