// The coordinator's I/O (src/runtime/coordinator-io.ts), alone: its input batched per turn and sent
// from a microtask, and its outputs performed on the simulator's network and clock.
import { describe, expect, it } from 'vitest';
import { coordinatorActorId } from '../../actors/node-routes.js';
import type { CoordinatorEvent, CoordinatorItem } from '../../actors/coordinator.events.js';
import type { CoordinatorOutput } from '../../actors/coordinator.machine.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { coordinatorBatchItemsMax, createCoordinatorIo } from '../../src/runtime/coordinator-io.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { recorder, rolePorts } from '../support/role-ports.js';

const view = { marker: 'the node context' };

async function setup(opts: { watching?: boolean; withCoordinator?: boolean } = {}) {
  const t = await rolePorts();
  const coordinator = recorder<CoordinatorEvent>();
  const children = opts.withCoordinator === false ? {} : { [coordinatorActorId]: coordinator };
  t.shared.root = recorder(() => ({ context: view, children }));
  const traces: unknown[] = [];
  const tap = { watching: opts.watching ?? false, coordinatorTrace: (o: unknown) => void traces.push(o) };
  const out = createOutbound({ shared: t.shared, transport: t.transport });
  const io = createCoordinatorIo({ shared: t.shared, clock: t.clock, tap: tap as never, out });
  return { t, io, coordinator, traces };
}

const deadline = (reqId: string): CoordinatorItem => ({ type: 'deadline', reqId }) as CoordinatorItem;

describe('coordinator-io', () => {
  it('sends what arrived in one turn as one coordinator.batch, from a microtask, with the time, the node view and the trace flag', async () => {
    const { t, io, coordinator } = await setup({ watching: true });
    io.toCoordinator(deadline('a'));
    io.toCoordinator(deadline('b'));
    expect(coordinator.events).toEqual([]);
    await Promise.resolve();
    expect(coordinator.events).toEqual([{ type: 'coordinator.batch', items: [deadline('a'), deadline('b')], now: t.clock.now(), view, traced: true }]);
    // The next turn is a new batch.
    io.toCoordinator(deadline('c'));
    await Promise.resolve();
    expect(coordinator.events.map((e) => e.items.length)).toEqual([2, 1]);
  });

  it(`splits a turn of more than ${coordinatorBatchItemsMax} items into several batches, in order`, async () => {
    const { io, coordinator } = await setup();
    const count = coordinatorBatchItemsMax * 2 + 5;
    for (let i = 0; i < count; i++) io.toCoordinator(deadline(String(i)));
    await Promise.resolve();
    expect(coordinator.events.map((e) => e.items.length)).toEqual([coordinatorBatchItemsMax, coordinatorBatchItemsMax, 5]);
    expect(coordinator.events.flatMap((e) => e.items.map((item) => (item as { reqId: string }).reqId))).toEqual(Array.from({ length: count }, (_, i) => String(i)));
  });

  it('drops the batch when there is no coordinator (a node not started, or stopped): nothing of it comes later', async () => {
    const { t, io } = await setup({ withCoordinator: false });
    io.toCoordinator(deadline('a'));
    await Promise.resolve();
    t.shared.root = undefined;
    io.toCoordinator(deadline('b'));
    await Promise.resolve();
    const coordinator = recorder<CoordinatorEvent>();
    t.shared.root = recorder(() => ({ context: view, children: { [coordinatorActorId]: coordinator } }));
    io.toCoordinator(deadline('c'));
    await Promise.resolve();
    expect(coordinator.events.map((e) => e.items)).toEqual([[deadline('c')]]);
  });

  it('performs sends, answers and forwards on the network', async () => {
    const { t, io } = await setup();
    const req = { type: 'api.get', from: 'c1', reqId: 'g1', replyTo: t.replyTo, bytes: encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'c1', to: '', reqId: 'g1', body: {} }) };
    io.perform([
      { type: 'send', params: { to: 'n2', kind: 'replica.get', reqId: 'x1', body: {} } },
      { type: 'sendAll', params: [{ to: 'n2', kind: 'replica.get', reqId: 'x2', body: {} }, { to: 'n2', kind: 'replica.get', reqId: 'x3', body: {} }] },
      { type: 'answerClient', params: { replyTo: t.replyTo, to: 'c1', reqId: 'q1', kind: 'api.put.ok', body: {} } },
      { type: 'forward', to: 'n2', req: req as never },
    ] as CoordinatorOutput[]);
    await t.run();
    expect(t.peer.map((m) => `${m.role} ${m.env.kind} ${m.env.reqId}`)).toEqual(['replica replica.get x1', 'replica replica.get x2', 'replica replica.get x3', 'forward api.get g1']);
    expect(t.client.map((r) => r.env.kind)).toEqual(['api.put.ok']);
  });

  it('wakes a request at the time it asked for, into the batch of that turn, until the request is done', async () => {
    const { t, io, coordinator } = await setup();
    io.perform([
      { type: 'setTimer', name: 'deadline', at: 100, event: deadline('r1') },
      { type: 'setTimer', name: 'repairWait', at: 50, event: deadline('r1') },
      { type: 'setTimer', name: 'deadline', at: 100, event: deadline('r2') },
    ] as CoordinatorOutput[]);
    expect(io.timersPending()).toBe(2);
    await t.clock.runUntil(50);
    expect(coordinator.events.map((e) => e.now)).toEqual([50]);
    // r2 is over: its timer is cleared; r1's deadline still comes.
    io.perform([{ type: 'done', id: 'r2' }]);
    expect(io.timersPending()).toBe(1);
    await t.clock.runUntil(200);
    expect(coordinator.events.map((e) => [e.now, e.items])).toEqual([
      [50, [deadline('r1')]],
      [100, [deadline('r1')]],
    ]);
  });

  it('counts late answers and failed items, passes traces to the tap, and performs the rest when one output throws', async () => {
    const { t, io, traces } = await setup();
    const routed = { type: 'routed', req: { type: 'api.get', from: 'c1', reqId: 'g1', forwarded: false }, route: 'coordinate', id: 'c.1' };
    io.perform([
      { type: 'late', count: 3 },
      { type: 'failed', item: 'replica.get.ok', reqId: 'r9', error: 'boom' },
      routed,
      // Not a client request: forward cannot decode it and throws; the output after it still runs.
      { type: 'forward', to: 'n2', req: { replyTo: t.replyTo, bytes: new Uint8Array([0xc1]) } },
      { type: 'send', params: { to: 'n2', kind: 'replica.get', reqId: 'after', body: {} } },
    ] as CoordinatorOutput[]);
    await t.run();
    expect(t.shared.stats.lateAnswers).toBe(3);
    expect(t.shared.stats.actionFailures).toBe(2);
    expect(t.log.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual(['coordinator failed on one item of a batch', 'action failed']);
    expect(traces).toEqual([routed]);
    expect(t.peer.map((m) => m.env.reqId)).toEqual(['after']);
  });
});
