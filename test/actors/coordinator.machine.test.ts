/**
 * The node's long-lived coordinator actor, run as xstate runs it, its perform action caught. What it
 * adds to the core (test/actors/coordinator.core.test.ts covers one request's protocol): each client
 * request of a batch is routed alone (coordinate, forward, or an error answer) and answered exactly
 * once; coordinated requests get ids unique on the node; at most coordinatorsMax are in flight;
 * answers for requests not in flight are counted late; one bad item never fails its neighbours; a
 * put's other replicas are sent the new state in the turn its dot is made, and W counts the local
 * commit.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import { type CoordinatorOutput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { ClientReadEvent, ClientWriteEvent } from '../../actors/node.events.js';
import type { RouteView } from '../../actors/node-routes.js';
import { type DvvSet, update } from '../../src/core/dvv.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';

const text = new TextEncoder();
const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 16);
const view: RouteView = { nodeId: 'n1', ring, down: {}, quorumDefault: { n: 3, r: 2, w: 2 }, limits: defaultLimits };

/** A key whose preference list holds n1 (coordinated here) or not (forwarded). */
function keyWhere(owned: boolean): Uint8Array {
  for (let i = 0; ; i++) {
    const key = text.encode(`k${i}`);
    if (preferenceList(ring, partitionOf(key, ring.q), 3).includes('n1') === owned) return key;
  }
}
const owned = keyWhere(true);
const foreign = keyWhere(false);

function put(reqId: string, key = owned, options: ClientWriteEvent['options'] = {}): ClientWriteEvent {
  return { type: 'api.put', from: 'client-a', reqId, replyTo: `_INBOX.${reqId}`, key, options, forwarded: false, bytes: new Uint8Array(), value: text.encode('v'), context: [] };
}
function get(reqId: string, key = owned): ClientReadEvent {
  return { type: 'api.get', from: 'client-a', reqId, replyTo: `_INBOX.${reqId}`, key, options: {}, forwarded: false, bytes: new Uint8Array() };
}

function start(coordinatorsMax = 100) {
  const outs: CoordinatorOutput[][] = [];
  const actor = createActor(
    coordinatorMachine.provide({ actions: { perform: (_, params: CoordinatorOutput[]) => void outs.push(params) } }),
    { input: { nodeId: 'n1', coordinatorsMax, requestTimeoutMs: 1000, readRepairWaitMs: 20, fallbackWaitMs: 300 } },
  );
  actor.start();
  const batch = (items: CoordinatorItem[], now = 0, traced = false): CoordinatorOutput[] => {
    actor.send({ type: 'coordinator.batch', items, now, view, traced });
    return outs[outs.length - 1]!;
  };
  return { actor, batch, inFlight: () => actor.getSnapshot().context.requests.size };
}

const answers = (out: CoordinatorOutput[]) =>
  out.flatMap((o) => (o.type === 'answerClient' ? [{ reqId: o.params.reqId, kind: o.params.kind, code: (o.params.body as { code?: string }).code }] : []));
const sends = (out: CoordinatorOutput[]) =>
  out.flatMap((o) => (o.type === 'send' ? [o.params] : o.type === 'sendAll' ? o.params : []));

describe('coordinator actor', () => {
  it('gives every coordinated request of a batch its own id, and routes each alone', () => {
    const { batch, inFlight } = start();
    const out = batch([put('1'), put('2'), get('3'), put('4', foreign), put('5', owned, { n: 2, w: 3 })]);
    const coordinate = sends(out).filter((s) => s.kind === 'replica.coordinate');
    expect(coordinate.map((s) => s.reqId)).toEqual(['coordinator-1', 'coordinator-2']);
    expect(coordinate.every((s) => s.to === 'n1')).toBe(true);
    // The get asks its replicas under its own id.
    expect(new Set(sends(out).filter((s) => s.kind === 'replica.get').map((s) => s.reqId))).toEqual(new Set(['coordinator-3']));
    // The foreign key goes to its first target, once; the bad quorum is answered at once.
    const forwards = out.filter((o) => o.type === 'forward');
    expect(forwards).toHaveLength(1);
    expect(forwards[0]).toMatchObject({ req: { reqId: '4' } });
    expect(answers(out)).toEqual([{ reqId: '5', kind: 'error', code: 'BAD_REQUEST' }]);
    expect(inFlight()).toBe(3);
    // Ids stay unique across batches.
    const next = batch([put('6')]);
    expect(sends(next).map((s) => s.reqId)).toEqual(['coordinator-4']);
  });

  it('answers OVERLOADED beyond coordinatorsMax in flight, and takes requests again once some are done', () => {
    const { batch, inFlight } = start(2);
    const out = batch([put('1'), put('2'), put('3')]);
    expect(answers(out)).toEqual([{ reqId: '3', kind: 'error', code: 'OVERLOADED' }]);
    expect(inFlight()).toBe(2);
    batch([{ type: 'deadline', reqId: 'coordinator-1' }], 1000);
    expect(inFlight()).toBe(1);
    expect(answers(batch([put('4')], 1000))).toEqual([]);
    expect(inFlight()).toBe(2);
  });

  it('sends a put to the other replicas in the turn its dot is made, and answers once W replicas committed', () => {
    const { batch, inFlight } = start();
    batch([put('1')]);
    const state: DvvSet = update([], [], 'n1.e1', text.encode('v'));
    const made = batch([{ type: 'replica.coordinate.made', from: 'n1', reqId: 'coordinator-1', body: { state } }]);
    const puts = sends(made).filter((s) => s.kind === 'replica.put');
    expect(puts.map((s) => s.to).sort()).toEqual(preferenceList(ring, partitionOf(owned, ring.q), 3).filter((n) => n !== 'n1').sort());
    expect(answers(made)).toEqual([]);
    // A peer's ack alone is one of W = 2: no answer until the local commit is acked too.
    expect(answers(batch([{ type: 'replica.put.ok', from: puts[0]!.to, reqId: 'coordinator-1', body: {} }]))).toEqual([]);
    const done = batch([{ type: 'replica.coordinate.ok', from: 'n1', reqId: 'coordinator-1', body: { state } }]);
    expect(answers(done)).toEqual([{ reqId: '1', kind: 'api.put.ok', code: undefined }]);
    // Over at W: the last replica's ack is late.
    expect(inFlight()).toBe(0);
    expect(batch([{ type: 'replica.put.ok', from: puts[1]!.to, reqId: 'coordinator-1', body: {} }])).toEqual([{ type: 'late', count: 1 }]);
  });

  it('takes a made dot or the local commit only from its own replica', () => {
    const { batch } = start();
    batch([put('1')]);
    const state: DvvSet = update([], [], 'n2.e1', text.encode('forged'));
    const forged = batch([
      { type: 'replica.coordinate.made', from: 'n2', reqId: 'coordinator-1', body: { state } },
      { type: 'replica.coordinate.ok', from: 'n2', reqId: 'coordinator-1', body: { state } },
    ]);
    expect(sends(forged)).toEqual([]);
    expect(answers(forged)).toEqual([]);
  });

  it('counts answers for requests not in flight as late, and they change nothing', () => {
    const { batch, inFlight } = start();
    batch([put('1')]);
    const out = batch([
      { type: 'replica.put.ok', from: 'n2', reqId: 'coordinator-99', body: {} },
      { type: 'replica.get.ok', from: 'n3', reqId: 'no-such', body: { state: null } },
      { type: 'deadline', reqId: 'coordinator-98' },
    ]);
    expect(out).toEqual([{ type: 'late', count: 2 }]);
    expect(inFlight()).toBe(1);
  });

  it('keeps serving when one item of a batch is bad: its neighbours are answered as if alone', () => {
    const { actor, batch } = start();
    const broken = { ...put('2'), options: { n: -1 } } as ClientWriteEvent;
    const out = batch([put('1'), broken, { type: 'replica.error', from: 'n9', reqId: 'coordinator-77', body: { code: 'X', message: 'x' } }, get('3')]);
    expect(answers(out)).toEqual([{ reqId: '2', kind: 'error', code: 'BAD_REQUEST' }]);
    expect(sends(out).map((s) => s.reqId)).toContain('coordinator-1');
    expect(sends(out).map((s) => s.reqId)).toContain('coordinator-2');
    expect(actor.getSnapshot().status).toBe('active');
    // An item that makes the code throw (no check before it foresaw it) is answered INTERNAL alone.
    const keyless = { ...put('4'), key: undefined } as unknown as ClientWriteEvent;
    const after = batch([keyless, put('5')]);
    expect(answers(after)).toMatchObject([{ reqId: '4', kind: 'error', code: 'INTERNAL' }]);
    expect(after.filter((o) => o.type === 'failed')).toMatchObject([{ item: 'api.put', reqId: '4' }]);
    expect(sends(after).map((s) => s.kind)).toEqual(['replica.coordinate']);
    expect(actor.getSnapshot().status).toBe('active');
  });

  it('answers a read from R replicas, then repairs the stale one after the short wait', () => {
    const { batch, inFlight } = start();
    const key = owned;
    const [, n2, n3] = preferenceList(ring, partitionOf(key, ring.q), 3).sort((a, b) => (a === 'n1' ? -1 : b === 'n1' ? 1 : 0));
    batch([get('1', key)]);
    const state: DvvSet = update([], [], 'n1.e1', text.encode('v'));
    const answered = batch([
      { type: 'replica.get.ok', from: 'n1', reqId: 'coordinator-1', body: { state } },
      { type: 'replica.get.ok', from: n2!, reqId: 'coordinator-1', body: { state: null } },
    ], 5);
    expect(answers(answered)).toEqual([{ reqId: '1', kind: 'api.get.ok', code: undefined }]);
    expect(answered.some((o) => o.type === 'setTimer' && o.name === 'repairWait' && o.at === 25)).toBe(true);
    const repaired = batch([{ type: 'repairWaitOver', reqId: 'coordinator-1' }], 25);
    const repairs = sends(repaired).filter((s) => s.kind === 'replica.put');
    // n2 lacked the value; n3 never answered, so it is not known to lack it.
    expect(repairs.map((s) => s.to)).toEqual([n2]);
    expect(n3).toBeDefined();
    expect(inFlight()).toBe(0);
  });

  it('says with traced what routing and each step did, and nothing of it untraced', () => {
    const { batch } = start();
    const quiet = batch([put('1'), put('2', foreign)]);
    expect(quiet.some((o) => o.type === 'trace' || o.type === 'routed')).toBe(false);
    const out = batch([put('3'), put('4', foreign)], 0, true);
    expect(out.filter((o) => o.type === 'routed')).toMatchObject([
      { route: 'coordinate', id: 'coordinator-2', req: { reqId: '3' } },
      { route: 'forward', req: { reqId: '4' } },
    ]);
    expect(out.filter((o) => o.type === 'trace')).toMatchObject([{ id: 'coordinator-2', from: 'new', to: 'coordinating', event: { type: 'start' } }]);
  });
});
