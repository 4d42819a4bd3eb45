/**
 * The inspection tap on plain xstate actors (no NATS): it subscribes only while a session is open,
 * follows a request's events by reqId or correlation and a named actor whole, attributes
 * actions to the event being processed, keeps summaries free of bytes, batches, rate-limits and
 * samples. And summarizeTrace reads a request's path (fallbacks, hints, read repair, forwards) out
 * of records.
 */
import { assign, createActor, enqueueActions, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { summarizeTrace } from '../../src/runtime/inspect-client.js';
import { type InspectRecord, recordsPerBatchMax, recordsPerSecondMax } from '../../src/runtime/inspect-protocol.js';
import { InspectTap, stateText, summarize } from '../../src/runtime/inspect-tap.js';

/** A manual clock: timers fire only when the test says so. */
function manualClock() {
  let now = 1_000;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn: (...args: unknown[]) => void, ms: number) => {
      const id = next++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (h: unknown) => void timers.delete(h as number),
    advance(ms: number) {
      now += ms;
      for (const [id, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now && timers.has(id)) {
          timers.delete(id);
          t.fn();
        }
      }
    },
  };
}

const worker = setup({
  types: { input: {} as { client?: { reqId: string; from: string }; key?: Uint8Array }, context: {} as { n: number; key?: Uint8Array } },
  actions: { send: (_, _p: { to: string; kind: string }) => {} },
}).createMachine({
  id: 'worker',
  context: ({ input }) => ({ n: 0, ...(input.key ? { key: input.key } : {}) }),
  initial: 'waiting',
  states: {
    waiting: { on: { go: { target: 'working', actions: { type: 'send', params: { to: 'n2', kind: 'replica.put' } } } } },
    working: { on: { go: { target: 'finished', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
    finished: { type: 'final' },
  },
});

const root = setup({
  types: { events: {} as { type: string; to?: string; reqId?: string; from?: string; id?: string } },
  actors: { worker },
  actions: { note: (_, _p: { reqId: string | undefined }) => {} },
}).createMachine({
  id: 'node',
  initial: 'serving',
  context: {},
  states: {
    serving: {
      on: {
        start: {
          actions: enqueueActions(({ enqueue, event }) => {
            enqueue.spawnChild('worker', { id: event.id!, input: { client: { reqId: event.reqId!, from: 'c' }, key: new Uint8Array([1, 2, 3]) } });
          }),
        },
        go: { actions: [{ type: 'note', params: ({ event }) => ({ reqId: event.reqId }) }, enqueueActions(({ enqueue, event }) => enqueue.sendTo(event.to!, { type: 'go' }))] },
        ping: { actions: { type: 'note', params: ({ event }) => ({ reqId: event.reqId }) } },
        'xstate.done.actor.*': { actions: enqueueActions(({ enqueue, event }) => enqueue.stopChild((event as unknown as { actorId: string }).actorId)) },
      },
    },
  },
});

function setupTap() {
  const clock = manualClock();
  const actor = createActor(root, { id: 'n1' });
  const correlated: string[] = [];
  const tap = new InspectTap({ nodeId: 'n1', clock, correlate: (peer, _s, origin, reqId) => correlated.push(`${peer}:${origin}/${reqId}`) });
  tap.attach(actor);
  actor.start();
  const batches: InspectRecord[][] = [];
  const ends: unknown[] = [];
  const sink = { records: (m: { records: InspectRecord[] }) => batches.push(m.records), end: (m: unknown) => ends.push(m) };
  return { clock, actor, tap, batches, ends, sink, correlated, records: () => batches.flat() };
}

describe('InspectTap', () => {
  it('has no observer on the actor system until a session opens, and none after the last ends', () => {
    const { tap, sink } = setupTap();
    expect(tap.watching).toBe(false);
    tap.follow({ session: 'a', durationMs: 1000, sampleEvery: 1 }, sink);
    tap.follow({ session: 'b', durationMs: 1000, sampleEvery: 1 }, sink);
    expect(tap.watching).toBe(true);
    tap.stop('a');
    expect(tap.watching).toBe(true);
    tap.stop('b');
    expect(tap.watching).toBe(false);
  });

  it("follows a request's events by reqId and by correlation, and only those", () => {
    const { actor, tap, sink, clock, records, ends } = setupTap();
    tap.follow({ session: 's', request: 'r1', peers: ['n1', 'n2', 'n3'], durationMs: 10_000, sampleEvery: 1 }, sink);
    // What the coordinator's trace does when the request starts here as coordinator request w1.
    expect(tap.correlate('s', 'n1', 'w1')).toBe(true);
    actor.send({ type: 'start', id: 'w1', reqId: 'r1' });
    actor.send({ type: 'start', id: 'w2', reqId: 'other' });
    actor.send({ type: 'go', to: 'w1', reqId: 'r1' });
    actor.send({ type: 'go', to: 'w2', reqId: 'other' });
    actor.send({ type: 'ping', reqId: 'w1', from: 'n1' }); // correlated: from this node, reqId = the request's id
    actor.send({ type: 'ping', reqId: 'w1', from: 'n9' }); // same id from another node: not ours
    actor.send({ type: 'go', to: 'w1', reqId: 'r1' });
    clock.advance(200);
    const rs = records();
    // A request is no actor: the workers spawned for it are not followed whole for its sake.
    expect(new Set(rs.map((r) => r.actor))).toEqual(new Set(['n1']));
    // The root's note actions are attributed to the matching events only.
    expect(rs.filter((r) => r.kind === 'action').map((r) => (r.params as { reqId: string }).reqId)).toEqual(['r1', 'w1', 'r1']);
    // No bytes: the spawn input's key shows as a size only... or not at all.
    expect(JSON.stringify(rs)).not.toContain('[1,2,3]');
    expect(rs.map((r) => r.seq)).toEqual(rs.map((_, i) => i + 1));
    clock.advance(10_000);
    expect(ends).toEqual([{ session: 's', reason: 'expired', sent: rs.length, dropped: 0 }]);
    expect(tap.watching).toBe(false);
  });

  it('follows an actor named in the session whole, from its spawn to its end', () => {
    const { actor, tap, sink, clock, records } = setupTap();
    tap.follow({ session: 's', actors: ['w1'], durationMs: 10_000, sampleEvery: 1 }, sink);
    actor.send({ type: 'start', id: 'w1', reqId: 'r1' });
    actor.send({ type: 'start', id: 'w2', reqId: 'other' });
    actor.send({ type: 'go', to: 'w1', reqId: 'r1' });
    actor.send({ type: 'go', to: 'w2', reqId: 'other' });
    actor.send({ type: 'go', to: 'w1', reqId: 'r1' });
    clock.advance(200);
    const rs = records();
    expect(new Set(rs.map((r) => r.actor))).toEqual(new Set(['w1']));
    expect(rs.map((r) => r.kind)).toEqual(['spawn', 'event', 'action', 'transition', 'event', 'transition', 'done']);
    expect(rs.filter((r) => r.kind === 'transition').map((r) => `${r.from}->${r.state}`)).toEqual(['waiting->working', 'working->finished']);
  });

  it('recognises another node\'s coordinator once told about it', () => {
    const { actor, tap, sink, records } = setupTap();
    tap.follow({ session: 's', request: 'r1', durationMs: 10_000, sampleEvery: 1 }, sink);
    actor.send({ type: 'ping', reqId: 'coordinator-3', from: 'n2' });
    expect(tap.correlate('s', 'n2', 'coordinator-3')).toBe(true);
    expect(tap.correlate('nope', 'n2', 'coordinator-3')).toBe(false);
    actor.send({ type: 'ping', reqId: 'coordinator-3', from: 'n2' });
    tap.stop('s');
    expect(records().filter((r) => r.kind === 'event')).toHaveLength(1);
  });

  it('batches, rate-limits and samples', () => {
    const { actor, tap, sink, batches, clock, ends } = setupTap();
    tap.follow({ session: 's', durationMs: 60_000, sampleEvery: 1 }, sink);
    for (let i = 0; i < recordsPerSecondMax + 500; i++) actor.send({ type: 'ping', reqId: `p${i}` });
    tap.stop('s');
    expect(Math.max(...batches.map((b) => b.length))).toBe(recordsPerBatchMax);
    const sent = batches.flat().length;
    expect(sent).toBeLessThanOrEqual(recordsPerSecondMax);
    expect((ends[0] as { dropped: number }).dropped).toBe(recordsPerSecondMax * 2 + 1000 - sent);

    batches.length = 0;
    clock.advance(5_000);
    tap.follow({ session: 't', durationMs: 60_000, sampleEvery: 10, actors: undefined }, sink);
    for (let i = 0; i < 100; i++) actor.send({ type: 'ping', reqId: `q${i}` });
    tap.stop('t');
    // One event in ten, each with its action.
    expect(batches.flat().filter((r) => r.kind === 'event')).toHaveLength(10);
  });

  it('answers snapshots of the actor tree with byte-free summaries', () => {
    const { actor, tap } = setupTap();
    actor.send({ type: 'start', id: 'w1', reqId: 'r1' });
    const snap = tap.snapshot();
    expect(snap.actors.map((a) => [a.id, a.machine, a.state, a.parent ?? null])).toEqual([
      ['n1', 'node', 'serving', null],
      ['w1', 'worker', 'waiting', 'n1'],
    ]);
    expect(snap.actors[0]!.children).toEqual(['w1']);
    expect(snap.actors[1]!.context).toEqual({ n: 0 });
    expect(tap.snapshot('w1').actors).toHaveLength(1);
  });
});

describe('summaries', () => {
  it('hide bytes and bound size', () => {
    expect(summarize({ key: new Uint8Array(5), value: 'x', data: new Uint8Array(7), list: Array.from({ length: 20 }, (_, i) => i) })).toEqual({
      data: '<7 bytes>',
      list: [0, 1, 2, 3, 4, 5, 6, 7, '…+12'],
    });
    expect(stateText({ busy: { left: 'a', right: 'c' } })).toBe('busy.(left.a, right.c)');
  });
});

describe('summarizeTrace', () => {
  const rec = (seq: number, r: Partial<InspectRecord>): InspectRecord => ({ seq, t: 100 + seq, node: 'n1', actor: 'n1', machine: 'node', kind: 'event', ...r }) as InspectRecord;

  it('reads forwards, fallbacks, hints, answers and read repair', () => {
    const records: InspectRecord[] = [
      rec(1, { node: 'n4', actor: 'n4', event: { type: 'api.get', reqId: 'T', from: 'c' } }),
      rec(2, { node: 'n4', actor: 'n4', kind: 'action', action: 'forward', params: { to: 'n1' } }),
      rec(3, { event: { type: 'api.get', reqId: 'T', from: 'c' } }),
      rec(4, {
        actor: 'coordinator-1',
        machine: 'coordinator',
        kind: 'spawn',
        input: { op: 'get', partition: 7, preferenceList: ['n1', 'n2', 'n3'], targets: [{ node: 'n1' }, { node: 'n3' }, { node: 'n5', hintFor: 'n2' }], quorum: { n: 3, r: 2, w: 2 } },
      }),
      rec(5, { actor: 'coordinator-1', machine: 'coordinator', kind: 'transition', from: 'checking', state: 'collecting' }),
      rec(6, { actor: 'coordinator-1', machine: 'coordinator', kind: 'action', action: 'sendAll', params: [{ to: 'n1', kind: 'replica.get' }, { to: 'n3', kind: 'replica.get' }, { to: 'n5', kind: 'replica.get' }] }),
      rec(7, { actor: 'coordinator-1', machine: 'coordinator', event: { type: 'replica.get.ok', from: 'n1' } }),
      rec(8, { actor: 'coordinator-1', machine: 'coordinator', event: { type: 'replica.get.ok', from: 'n5' } }),
      rec(9, { actor: 'coordinator-1', machine: 'coordinator', kind: 'action', action: 'answerClient', params: { to: 'c', kind: 'api.get.ok' } }),
      rec(10, { actor: 'coordinator-1', machine: 'coordinator', kind: 'transition', from: 'collecting', state: 'repairing' }),
      rec(11, { actor: 'coordinator-1', machine: 'coordinator', kind: 'action', action: 'sendAll', params: [{ to: 'n5', kind: 'replica.put' }] }),
      rec(12, { actor: 'coordinator-1', machine: 'coordinator', kind: 'transition', from: 'repairing', state: 'done' }),
    ];
    const s = summarizeTrace(records, 'T');
    expect(s.receivedBy).toEqual(['n4', 'n1']);
    expect(s.forwards).toEqual([{ node: 'n4', to: 'n1' }]);
    expect(s.coordinator).toMatchObject({ node: 'n1', actor: 'coordinator-1', partition: 7, targets: ['n1', 'n3', 'n5'] });
    expect(s.skipped).toEqual(['n2']);
    expect(s.fallbacks).toEqual([{ node: 'n5', for: 'n2' }]);
    expect(s.asked).toEqual(['n1', 'n3', 'n5']);
    expect(s.answered.map((a) => a.node)).toEqual(['n1', 'n5']);
    expect(s.notAnswered).toEqual(['n3']);
    expect(s.clientAnswer).toMatchObject({ kind: 'api.get.ok' });
    expect(s.readRepair).toEqual(['n5']);
    expect(s.states).toEqual(['checking', 'collecting', 'repairing', 'done']);
  });
});
