/**
 * The replica machine through xstate's pure transition functions: every effect comes back as data
 * (the outputs of its one `perform` action), so we can check that a turn's writes cost one
 * transition, that no ok is sent before the store reports the commit (Dynamo §4.5: an ack means
 * durable), and that a turn beyond writesInFlightMax is refused at once.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { DvvSet } from '../../src/core/dvv.js';
import type { ReplicaEvent } from '../../actors/replica.events.js';
import { type CommitWrite, type ReplicaInput, type ReplicaOutput, type ReplicaWriteItem, replicaMachine } from '../../actors/replica.machine.js';

type Snapshot = SnapshotFrom<typeof replicaMachine>;

const input: ReplicaInput = { siblingsMax: 10, writesInFlightMax: 2 };
const key = new TextEncoder().encode('cart:1');
const remoteState: DvvSet = [['n2/e2', 1, [new TextEncoder().encode('v')]]];

function start(overrides: Partial<ReplicaInput> = {}): Snapshot {
  const [snapshot, actions] = initialTransition(replicaMachine, { ...input, ...overrides });
  expect(actions).toEqual([]);
  return snapshot;
}

/** One event: the next snapshot and what perform was given (one perform per event, or none). */
function step(snapshot: Snapshot, event: ReplicaEvent): [Snapshot, ReplicaOutput[]] {
  const [next, actions] = transition(replicaMachine, snapshot, event);
  expect(actions.map((a) => a.type)).toEqual(['perform']);
  return [next, actions[0]!.params as ReplicaOutput[]];
}

const put = (from: string, reqId: string): ReplicaWriteItem => ({ type: 'replica.put', from, reqId, body: { p: 7, key, state: remoteState } });
const coordinate = (reqId: string): ReplicaWriteItem => ({
  type: 'replica.coordinate',
  from: 'n1',
  reqId,
  body: { p: 7, key, context: [], value: new TextEncoder().encode('new') },
});
const batch = (...items: ReplicaWriteItem[]): ReplicaEvent => ({ type: 'replica.batch', items });

const sends = (outputs: ReplicaOutput[]) => outputs.flatMap((o) => (o.type === 'send' ? [o.params] : []));
const commits = (outputs: ReplicaOutput[]) => outputs.flatMap((o) => (o.type === 'commit' ? o.writes : []));

describe('replica machine', () => {
  it('starts serving with no writes in flight', () => {
    const s = start();
    expect(s.value).toBe('serving');
    expect(s.context.writesInFlight).toBe(0);
  });

  it("takes a turn's writes in one transition and sends nothing until the store reports their commit", () => {
    const [s1, outputs] = step(start({ writesInFlightMax: 8 }), batch(put('n2', 'coordinator-3'), coordinate('coordinator-1')));
    expect(outputs).toHaveLength(1);
    const writes = commits(outputs);
    expect(writes[0]).toEqual({ from: 'n2', reqId: 'coordinator-3', p: 7, key, answer: 'replica.put.ok', hints: [], write: { kind: 'sync', state: remoteState } });
    expect(writes[1]).toMatchObject({ from: 'n1', reqId: 'coordinator-1', answer: 'replica.coordinate.ok', write: { kind: 'coordinate', siblingsMax: 10 } });
    expect(sends(outputs)).toEqual([]);
    expect(s1.context.writesInFlight).toBe(2);

    const committed: DvvSet = [['n1/e1', 1, [new TextEncoder().encode('new')]]];
    const [s2, answers] = step(s1, {
      type: 'replica.committed',
      results: [
        { write: writes[0]!, outcome: { ok: true, state: remoteState, siblings: 1 } },
        { write: writes[1]!, outcome: { ok: true, state: committed, siblings: 1 } },
      ],
    });
    expect(answers).toEqual([
      { type: 'send', params: { to: 'n1', kind: 'replica.coordinate.ok', reqId: 'coordinator-1', body: { state: committed } } },
      { type: 'send', params: { to: 'n2', kind: 'replica.put.ok', reqId: 'coordinator-3', body: {} } },
    ]);
    expect(s2.context.writesInFlight).toBe(0);
  });

  it("acknowledges a group commit's replica.put writes with one replica.put.acks per coordinator node", () => {
    const [s1, outputs] = step(start({ writesInFlightMax: 8 }), batch(put('n2', 'a'), put('n3', 'b'), put('n2', 'c'), put('n2', 'd')));
    const writes = commits(outputs);
    const ok = { ok: true as const, state: remoteState, siblings: 1 };
    const [, answers] = step(s1, {
      type: 'replica.committed',
      results: [{ write: writes[0]!, outcome: ok }, { write: writes[1]!, outcome: ok }, { write: writes[2]!, failed: 'disk full' }, { write: writes[3]!, outcome: ok }],
    });
    expect(sends(answers)).toEqual([
      expect.objectContaining({ to: 'n2', kind: 'replica.error', reqId: 'c' }),
      { to: 'n2', kind: 'replica.put.acks', reqId: '', body: { reqIds: ['a', 'd'] } },
      { to: 'n3', kind: 'replica.put.ok', reqId: 'b', body: {} },
    ]);
  });

  it('a write the store refused (TOO_MANY_SIBLINGS) is answered with replica.error carrying that code', () => {
    const [s1, outputs] = step(start(), batch(coordinate('coordinator-1')));
    const [, answers] = step(s1, {
      type: 'replica.committed',
      results: [{ write: commits(outputs)[0]!, outcome: { ok: false, code: 'TOO_MANY_SIBLINGS', message: 'too many', siblings: 11 } }],
    });
    expect(sends(answers)).toEqual([{ to: 'n1', kind: 'replica.error', reqId: 'coordinator-1', body: { code: 'TOO_MANY_SIBLINGS', message: 'too many' } }]);
  });

  it('a failed commit answers replica.error INTERNAL, never an ok, and frees the slot', () => {
    const [s1, outputs] = step(start(), batch(put('n2', 'coordinator-3')));
    const [s2, answers] = step(s1, { type: 'replica.committed', results: [{ write: commits(outputs)[0]!, failed: 'disk full' }] });
    expect(sends(answers)).toHaveLength(1);
    expect(sends(answers)[0]).toMatchObject({ to: 'n2', kind: 'replica.error', reqId: 'coordinator-3', body: { code: 'INTERNAL' } });
    expect((sends(answers)[0]!.body as { message: string }).message).toContain('disk full');
    expect(s2.context.writesInFlight).toBe(0);
  });

  it('beyond writesInFlightMax it answers OVERLOADED at once, item by item, and commits the rest', () => {
    const [s1, outputs] = step(start({ writesInFlightMax: 2 }), batch(put('n2', 'a'), coordinate('b'), put('n3', 'c'), coordinate('d')));
    expect(commits(outputs).map((w) => w.reqId)).toEqual(['a', 'b']);
    expect(sends(outputs).map((p) => [p.to, p.reqId, (p.body as { code: string }).code])).toEqual([
      ['n3', 'c', 'OVERLOADED'],
      ['n1', 'd', 'OVERLOADED'],
    ]);
    expect(s1.context.writesInFlight).toBe(2);

    // Once a commit completes there is room again.
    const first: CommitWrite = commits(outputs)[0]!;
    const [s2] = step(s1, { type: 'replica.committed', results: [{ write: first, outcome: { ok: true, state: remoteState, siblings: 1 } }] });
    const [, again] = step(s2, batch(put('n3', 'e')));
    expect(commits(again)).toHaveLength(1);
    expect(sends(again)).toEqual([]);
  });
});
