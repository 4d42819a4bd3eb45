/**
 * Ownership transfer through xstate's pure transition functions. The partition-transfer machine
 * sends each batch to every target, drops only after all of them acked, resends on timeout to the
 * targets still missing, passes again when objects changed, and stops on busy or a target down.
 * The transfer machine finds its work by scanning, keeps its limits (outbound and inbound), ignores
 * stale scans, restarts on a ring change and tells the node when nothing is left.
 */
import { describe, expect, it } from 'vitest';
import { createActor, initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { HandoffItem } from '../../actors/handoff.events.js';
import { type PartitionTransferInput, partitionTransferMachine } from '../../actors/partition-transfer.machine.js';
import type { PartitionTransferEvent, TransferEvent } from '../../actors/transfer.events.js';
import { type AnswerTransfersParams, backoffTicksMax, type TransferInput, partitionsNotReplicated, transferMachine } from '../../actors/transfer.machine.js';
import { claimInitial, preferenceList } from '../../src/core/ring.js';

interface Effect {
  type: string;
  params?: unknown;
}
const te = new TextEncoder();
const item = (k: string): HandoffItem => ({ p: 5, key: te.encode(k), state: [['n1/e', 1, [te.encode(`v-${k}`)]]] });
const types = (fx: Effect[]) => fx.map((e) => e.type).filter((t) => !t.startsWith('xstate.'));
const find = <T>(fx: Effect[], type: string) => fx.find((e) => e.type === type)?.params as T;

describe('partition-transfer machine', () => {
  type S = SnapshotFrom<typeof partitionTransferMachine>;
  const input: PartitionTransferInput = {
    id: 'transfer-5-1',
    p: 5,
    targets: ['n2', 'n3', 'n4'],
    cursor: null,
    batchItemsMax: 2,
    batchBytesMax: 1000,
    rateBytesPerSec: 300,
    attemptTimeoutMs: 500,
    attemptsMax: 2,
    passesMax: 3,
    startedAt: 1000,
    objectsTotal: 2,
  };
  const step = (s: S, event: PartitionTransferEvent): [S, Effect[]] => {
    const [next, actions] = transition(partitionTransferMachine, s, event);
    return [next, actions.map((a) => ({ type: a.type, params: a.params }))];
  };
  const begin = (over: Partial<PartitionTransferInput> = {}): [S, Effect[]] => {
    const [s, actions] = initialTransition(partitionTransferMachine, { ...input, ...over });
    return [s, actions.map((a) => ({ type: a.type, params: a.params }))];
  };
  /** Starts a transfer and has every target take it (the empty reserving batch). */
  const start = (over: Partial<PartitionTransferInput> = {}): [S, Effect[]] => {
    let [s, fx] = begin(over);
    const reqId = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
    for (const t of input.targets) [s, fx] = step(s, { type: 'handoff.transfer.ok', from: t, reqId, body: {} });
    return [s, fx];
  };
  const ok = (from: string, reqId: string): PartitionTransferEvent => ({ type: 'handoff.transfer.ok', from, reqId, body: {} });

  it('first reserves a slot at every target with an empty batch, and releases them all when one is busy', () => {
    let [s, fx] = begin();
    const reserve = find<{ to: string; kind: string; reqId: string; body: { p: number; items: unknown[] } }[]>(fx, 'sendAll');
    expect(reserve.map((x) => [x.to, x.kind, x.body.items.length])).toEqual([
      ['n2', 'handoff.transfer', 0],
      ['n3', 'handoff.transfer', 0],
      ['n4', 'handoff.transfer', 0],
    ]);
    [s, fx] = step(s, { type: 'handoff.transfer.ok', from: 'n2', reqId: reserve[0]!.reqId, body: {} });
    expect(types(fx)).toEqual([]);
    [s, fx] = step(s, { type: 'handoff.transfer.busy', from: 'n3', reqId: reserve[0]!.reqId, body: { message: 'full' } });
    expect(s.output).toMatchObject({ outcome: 'busy' });
    expect(find<{ to: string; kind: string }[]>(fx, 'sendAll').map((x) => [x.to, x.kind])).toEqual([
      ['n2', 'handoff.transfer.done'],
      ['n3', 'handoff.transfer.done'],
      ['n4', 'handoff.transfer.done'],
    ]);
    expect(types(fx)).not.toContain('collectTransfer');
  });

  it('sends each batch to every target, drops only after all acked, paces by wire bytes, and ends when a full pass left nothing', () => {
    let [s, fx] = start();
    expect(find(fx, 'collectTransfer')).toEqual({ id: input.id, p: 5, after: null, itemsMax: 2, bytesMax: 1000 });
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('a'), item('b')], bytes: 100 });
    const sends = find<{ to: string; kind: string; reqId: string; body: { p: number; items: HandoffItem[] } }[]>(fx, 'sendAll');
    expect(sends.map((x) => x.to)).toEqual(['n2', 'n3', 'n4']);
    expect(sends[0]).toMatchObject({ kind: 'handoff.transfer', body: { p: 5, items: [item('a'), item('b')] } });
    const reqId = sends[0]!.reqId;
    expect(reqId.startsWith(`${input.id}.`)).toBe(true);

    // Acks from a stranger, for another batch, or twice from one target do not complete the batch.
    [s, fx] = step(s, ok('n9', reqId));
    [s, fx] = step(s, ok('n2', 'transfer-5-1.99'));
    [s, fx] = step(s, ok('n2', reqId));
    [s, fx] = step(s, ok('n2', reqId));
    [s, fx] = step(s, ok('n3', reqId));
    expect(types(fx)).not.toContain('dropSent');
    expect(s.value).toBe('sending');
    [s, fx] = step(s, ok('n4', reqId));
    expect(find(fx, 'dropSent')).toMatchObject({ id: input.id, p: 5, items: [item('a'), item('b')], bytes: 100, targets: 3 });
    [s, fx] = step(s, { type: 'transfer.dropped', id: input.id, dropped: 2, kept: 0 });
    expect(s.value).toBe('pacing');
    expect(s.context).toMatchObject({ objectsSent: 2, bytesSent: 100, dropped: 2, cursor: te.encode('b') });
    // 100 bytes to 3 targets at 300 B/s: one second of pause.
    const pace = fx.find((e) => e.type === 'xstate.raise') as { params?: { delay?: number } } | undefined;
    expect(pace === undefined || pace.params === undefined || pace.params.delay === undefined || pace.params.delay === 1000).toBe(true);
    [s, fx] = step(s, { type: 'paced' });
    expect(find(fx, 'collectTransfer')).toMatchObject({ after: te.encode('b') });
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [], bytes: 0 });
    expect(s.status).toBe('done');
    expect(s.output).toMatchObject({ outcome: 'done', p: 5, objectsSent: 2 });
  });

  it('resends a batch that timed out only to the targets that have not confirmed it, and gives up after attemptsMax', () => {
    let [s, fx] = start();
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('a')], bytes: 50 });
    const reqId = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
    [s, fx] = step(s, ok('n3', reqId));
    [s, fx] = step(s, { type: 'attemptTimedOut' });
    const again = find<{ to: string; reqId: string }[]>(fx, 'sendAll');
    expect(again.map((x) => x.to)).toEqual(['n2', 'n4']);
    expect(again[0]!.reqId).toBe(reqId);
    [s, fx] = step(s, { type: 'attemptTimedOut' });
    expect(s.status).toBe('done');
    expect(s.output).toMatchObject({ outcome: 'timedOut', cursor: null });
    expect(types(fx)).not.toContain('dropSent');
  });

  it('passes again from the first key when objects changed meanwhile, and when it started from a cursor', () => {
    let [s, fx] = start({ cursor: te.encode('a') });
    expect(find(fx, 'collectTransfer')).toMatchObject({ after: te.encode('a') });
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('b')], bytes: 50 });
    const reqId = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
    for (const t of input.targets) [s, fx] = step(s, ok(t, reqId));
    // b changed while it was on its way: it stays.
    [s, fx] = step(s, { type: 'transfer.dropped', id: input.id, dropped: 0, kept: 1 });
    [s, fx] = step(s, { type: 'paced' });
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [], bytes: 0 });
    // Not done: a new pass from the first key.
    expect(find(fx, 'collectTransfer')).toMatchObject({ after: null });
    expect(s.context.passes).toBe(1);
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('b')], bytes: 50 });
    const reqId2 = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
    expect(reqId2).not.toBe(reqId);
    for (const t of input.targets) [s, fx] = step(s, ok(t, reqId2));
    [s, fx] = step(s, { type: 'transfer.dropped', id: input.id, dropped: 1, kept: 0 });
    [s, fx] = step(s, { type: 'paced' });
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [], bytes: 0 });
    expect(s.output).toMatchObject({ outcome: 'done' });
  });

  it('gives up for now after passesMax passes over a key that keeps changing', () => {
    let [s, fx] = start({ passesMax: 2 });
    for (let pass = 0; pass < 2; pass++) {
      [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('hot')], bytes: 50 });
      const reqId = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
      for (const t of input.targets) [s, fx] = step(s, ok(t, reqId));
      [s, fx] = step(s, { type: 'transfer.dropped', id: input.id, dropped: 0, kept: 1 });
      [s, fx] = step(s, { type: 'paced' });
      [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [], bytes: 0 });
    }
    expect(s.output).toMatchObject({ outcome: 'again' });
  });

  it('stops when a target is busy or judged down, keeping its cursor', () => {
    let [s, fx] = start();
    [s, fx] = step(s, { type: 'transfer.collected', id: input.id, items: [item('a')], bytes: 50 });
    const reqId = find<{ reqId: string }[]>(fx, 'sendAll')[0]!.reqId;
    let [busy] = step(s, { type: 'handoff.transfer.busy', from: 'n3', reqId, body: { message: 'full' } });
    expect(busy.output).toMatchObject({ outcome: 'busy' });
    [busy] = step(s, { type: 'handoff.transfer.busy', from: 'n3', reqId: 'other.1', body: { message: 'full' } });
    expect(busy.status).toBe('active');
    const [other] = step(s, { type: 'member.down', nodeId: 'n7' });
    expect(other.status).toBe('active');
    const [down] = step(s, { type: 'member.down', nodeId: 'n4' });
    expect(down.output).toMatchObject({ outcome: 'targetDown', cursor: null });
  });
});

describe('transfer machine', () => {
  type S = SnapshotFrom<typeof transferMachine>;
  // Four nodes, Q = 8, N = 3: n1 owns 0 and 4 and replicates 0, 2, 3, 4, 6, 7; not 1 and 5.
  const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 8);
  const input: TransferInput = {
    nodeId: 'n1',
    ring,
    n: 3,
    transfersMax: 1,
    inboundMax: 2,
    inboundIdleMs: 1000,
    batchItemsMax: 10,
    batchBytesMax: 1000,
    rateBytesPerSec: 1000,
    attemptTimeoutMs: 500,
    attemptsMax: 3,
    passesMax: 3,
    now: 100,
  };
  const step = (s: S, event: TransferEvent): [S, Effect[]] => {
    const [next, actions] = transition(transferMachine, s, event);
    return [next, actions.map((a) => ({ type: a.type, params: a.params }))];
  };
  const start = (): [S, Effect[]] => {
    const [s, actions] = initialTransition(transferMachine, input);
    return [s, actions.map((a) => ({ type: a.type, params: a.params }))];
  };

  it('scans at start for the partitions it does not replicate, and tells the node once when there is nothing to hand over', () => {
    expect(partitionsNotReplicated(ring, 'n1', 3)).toEqual([1, 5]);
    let [s, fx] = start();
    expect(find(fx, 'findWork')).toEqual({ scan: 1, partitions: [1, 5] });
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [] });
    expect(find(fx, 'tellNode')).toEqual({ type: 'transfer.idle', ring });
    [s, fx] = step(s, { type: 'transfer.tick', now: 200 });
    expect(find(fx, 'findWork')).toEqual({ scan: 2, partitions: [1, 5] });
    [s, fx] = step(s, { type: 'transfer.found', scan: 2, partitions: [] });
    expect(types(fx)).not.toContain('tellNode');
  });

  it('is not idle while the node holds hints: hinted handoff still has objects to deliver (a leaving node must not exit)', () => {
    let [s, fx] = start();
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [], hints: 2 });
    expect(types(fx)).not.toContain('tellNode');
    [s, fx] = step(s, { type: 'transfer.tick', now: 200 });
    expect(find(fx, 'findWork')).toEqual({ scan: 2, partitions: [1, 5] });
    [s, fx] = step(s, { type: 'transfer.found', scan: 2, partitions: [], hints: 0 });
    expect(find(fx, 'tellNode')).toEqual({ type: 'transfer.idle', ring });
  });

  it('runs at most transfersMax partitions, reports running and waiting ones, and starts the next when one is done', () => {
    let [s, fx] = start();
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [{ p: 1, objects: 4 }, { p: 5, objects: 7 }] });
    expect(types(fx)).not.toContain('tellNode');
    expect(s.context.running).toEqual(['transfer-1-1']);
    expect(s.context.waiting).toEqual([{ p: 5, objects: 7 }]);
    const child = s.children['transfer-1-1'] as unknown as { getSnapshot(): { context: { targets: string[]; startedAt: number } } };
    expect(child.getSnapshot().context.targets).toEqual(preferenceList(ring, 1, 3));
    // A tick while the limit is reached starts no scan.
    [s, fx] = step(s, { type: 'transfer.tick', now: 300 });
    expect(types(fx)).not.toContain('findWork');
    [s, fx] = step(s, { type: 'xstate.done.actor.transfer-1-1', actorId: 'transfer-1-1', output: { id: 'transfer-1-1', p: 1, outcome: 'done', cursor: null, objectsSent: 4, bytesSent: 80 } } as never);
    expect(s.context.running).toEqual(['transfer-5-2']);
    expect(s.context.completed).toBe(1);
    [s, fx] = step(s, { type: 'xstate.done.actor.transfer-5-2', actorId: 'transfer-5-2', output: { id: 'transfer-5-2', p: 5, outcome: 'busy', cursor: te.encode('k'), objectsSent: 0, bytesSent: 0 } } as never);
    // The last one ended, refused: no scan at once (that traded reservations and refusals without
    // pause at 30 nodes, issue 27); the next tick scans. The busy partition keeps its cursor.
    expect(types(fx)).not.toContain('findWork');
    expect(s.context.cursors[5]).toEqual(te.encode('k'));
    [s, fx] = step(s, { type: 'transfer.tick', now: 400 });
    expect(find(fx, 'findWork')).toMatchObject({ partitions: [1, 5] });
    const scan = s.context.scan;
    [s, fx] = step(s, { type: 'transfer.found', scan, partitions: [{ p: 5, objects: 1 }] });
    const restarted = s.children[s.context.running[0]!] as unknown as { getSnapshot(): { context: { cursor: Uint8Array | null } } };
    expect(restarted.getSnapshot().context.cursor).toEqual(te.encode('k'));
  });

  it('answers api.transfers with the running transfers (from their own state) and the waiting ones', () => {
    // A live actor: the answer reads its children's snapshots, which pure transitions do not run.
    let answer: AnswerTransfersParams | undefined;
    const actor = createActor(transferMachine.provide({ actions: { answerTransfers: (_, p) => void (answer = p) } }), { input });
    actor.start();
    actor.send({ type: 'transfer.found', scan: 1, partitions: [{ p: 1, objects: 4 }, { p: 5, objects: 7 }] });
    actor.send({ type: 'api.transfers', from: 'cli', reqId: 'r1', replyTo: 'inbox' });
    actor.stop();
    expect(answer).toMatchObject({ replyTo: 'inbox', to: 'cli', reqId: 'r1', inbound: 0, completed: 0 });
    expect(answer!.transfers.map((t) => [t.p, t.state, t.objectsTotal, t.startedAt, t.to])).toEqual([
      [1, 'reserving', 4, 100, preferenceList(ring, 1, 3)],
      [5, 'waiting', 7, null, preferenceList(ring, 5, 3)],
    ]);
  });

  it('does not start a partition while one of its targets is down, and starts it when the target is up', () => {
    let [s, fx] = start();
    const target = preferenceList(ring, 1, 3)[0]!;
    [s, fx] = step(s, { type: 'member.down', nodeId: target });
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [{ p: 1, objects: 4 }] });
    expect(s.context.running).toEqual([]);
    expect(types(fx)).not.toContain('tellNode');
    [s, fx] = step(s, { type: 'member.up', nodeId: target });
    expect(s.context.running).toEqual(['transfer-1-1']);
  });

  it('ignores a scan made under an older ring, and stops its transfers and scans again when the ring changes', () => {
    let [s, fx] = start();
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [{ p: 1, objects: 4 }] });
    expect(s.context.running).toHaveLength(1);
    const ring2 = claimInitial(['n2', 'n3', 'n4'], 8);
    [s, fx] = step(s, { type: 'ring.changed', ring: ring2 });
    expect(s.context.running).toEqual([]);
    expect(Object.keys(s.children)).toEqual([]);
    // The stopped transfer frees the inbound slot it held at each of its targets (issue 27: held,
    // they refused every other transfer to those nodes for inboundIdleMs).
    const released = fx.filter((e) => e.type === 'send').map((e) => e.params as { to: string; kind: string; reqId: string; body: { p: number } });
    expect(released).toEqual(preferenceList(ring, 1, 3).map((to) => ({ to, kind: 'handoff.transfer.done', reqId: 'transfer-1-1', body: { p: 1 } })));
    // n1 left the ring: every partition is to be handed over.
    expect(find(fx, 'findWork')).toEqual({ scan: 2, partitions: [0, 1, 2, 3, 4, 5, 6, 7] });
    [s, fx] = step(s, { type: 'transfer.found', scan: 1, partitions: [] });
    expect(types(fx)).toEqual([]);
    [s, fx] = step(s, { type: 'transfer.found', scan: 2, partitions: [] });
    expect(find(fx, 'tellNode')).toEqual({ type: 'transfer.idle', ring: ring2 });
    // An answer for the stopped transfer is dropped.
    [s, fx] = step(s, { type: 'handoff.transfer.ok', from: 'n2', reqId: 'transfer-1-1.1', body: {} });
    expect(types(fx)).toEqual([]);
  });

  it('waits a random, growing number of ticks before it tries a refused partition again (no lockstep of refusals)', () => {
    let [s, fx] = start();
    const waits: number[] = [];
    for (let refusal = 1; refusal <= 6; refusal++) {
      [s, fx] = step(s, { type: 'transfer.found', scan: s.context.scan, partitions: [{ p: 1, objects: 4 }] });
      const id = s.context.running[0]!;
      expect(id).toBeDefined();
      [s, fx] = step(s, { type: `xstate.done.actor.${id}`, actorId: id, output: { id, p: 1, outcome: 'busy', cursor: null, objectsSent: 0, bytesSent: 0 } } as never);
      const { untilTick, refusals } = s.context.backoff[1]!;
      expect(refusals).toBe(refusal);
      const wait = untilTick - s.context.ticks;
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(Math.min(2 ** refusal, backoffTicksMax));
      waits.push(wait);
      // Found again before its wait is over: it waits.
      for (let t = 0; t < wait; t++) {
        [s, fx] = step(s, { type: 'transfer.found', scan: s.context.scan, partitions: [{ p: 1, objects: 4 }] });
        expect(s.context.running).toEqual([]);
        expect(types(fx)).not.toContain('tellNode');
        [s, fx] = step(s, { type: 'transfer.tick', now: 1000 + s.context.ticks });
      }
    }
    // Random: not every wait is the same.
    expect(new Set(waits).size).toBeGreaterThan(1);
    // Once it is done, it is forgotten.
    [s, fx] = step(s, { type: 'transfer.found', scan: s.context.scan, partitions: [{ p: 1, objects: 4 }] });
    const id = s.context.running[0]!;
    [s, fx] = step(s, { type: `xstate.done.actor.${id}`, actorId: id, output: { id, p: 1, outcome: 'done', cursor: null, objectsSent: 4, bytesSent: 40 } } as never);
    expect(s.context.backoff).toEqual({});
  });

  it('takes at most inboundMax inbound transfers, answers busy beyond, and frees a slot on done or when idle', () => {
    let [s, fx] = start();
    const batch = (from: string, p: number, now: number): TransferEvent => ({ type: 'handoff.transfer', from, reqId: `${from}-${p}.1`, body: { p, items: [item('a')] }, now });
    [s, fx] = step(s, batch('n2', 1, 1000));
    expect(find(fx, 'applyTransfer')).toMatchObject({ from: 'n2', reqId: 'n2-1.1' });
    [s, fx] = step(s, batch('n3', 2, 1000));
    expect(types(fx)).toContain('applyTransfer');
    [s, fx] = step(s, batch('n4', 3, 1100));
    expect(types(fx)).toEqual(['send']);
    expect(find(fx, 'send')).toMatchObject({ to: 'n4', kind: 'handoff.transfer.busy', reqId: 'n4-3.1' });
    // A slot already held keeps being served.
    [s, fx] = step(s, batch('n2', 1, 1200));
    expect(types(fx)).toEqual(['applyTransfer']);
    [s, fx] = step(s, { type: 'handoff.transfer.done', from: 'n2', reqId: 'x', body: { p: 1 } });
    [s, fx] = step(s, batch('n4', 3, 1300));
    expect(types(fx)).toEqual(['applyTransfer']);
    // n3's slot (last batch at 1000) has been idle for more than inboundIdleMs by 2100.
    [s, fx] = step(s, batch('n2', 7, 2100));
    expect(types(fx)).toEqual(['applyTransfer']);
    expect(Object.keys(s.context.inbound).sort()).toEqual(['n2/7', 'n4/3']);
  });
});
