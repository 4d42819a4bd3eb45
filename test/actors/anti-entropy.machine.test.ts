/**
 * The anti-entropy machines through xstate's pure transition functions. An exchange is played
 * against a peer computed with src/core/merkle.ts: it compares roots, descends only into differing
 * nodes, walks the differing segments, merges and sends back, paces itself by the bytes of each
 * round trip, ignores stale answers and ends on deadlines and refusals. The anti-entropy machine
 * plans rounds, keeps to exchangesMax, serves peers and obeys pause / resume.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { AntiEntropyEvent, ExchangeEvent } from '../../actors/anti-entropy.events.js';
import { type AntiEntropyInput, antiEntropyMachine, planRound } from '../../actors/anti-entropy.machine.js';
import { type ExchangeInput, type ExchangeOutput, exchangeMachine } from '../../actors/exchange.machine.js';
import type { DvvSet } from '../../src/core/dvv.js';
import {
  answerTree,
  buildSegments,
  bytesToHashes,
  hashesToBytes,
  objectHash,
  segmentOf,
  treeLevels,
  type TreeShape,
} from '../../src/core/merkle.js';
import { claimInitial } from '../../src/core/ring.js';

type ExSnapshot = SnapshotFrom<typeof exchangeMachine>;
interface Effect {
  type: string;
  params?: unknown;
}

const shape: TreeShape = { segments: 16, fanout: 4 };
const utf8 = new TextEncoder();
const key = (i: number) => utf8.encode(`key-${i}`);
const stateOf = (n: number): DvvSet => [['a/1', n, [utf8.encode('v')]]];

const input: ExchangeInput = { id: 'exchange-1', peer: 'n2', p: 3, shape, requestTimeoutMs: 1000, bytesPerSec: 100_000, segmentsPerRequestMax: 16, batchesMax: 100 };

function fx(actions: readonly { type: string; params?: unknown }[]): Effect[] {
  return actions.map((a) => ({ type: a.type, params: a.params }));
}

function step(s: ExSnapshot, event: ExchangeEvent | { type: string }): [ExSnapshot, Effect[]] {
  const [next, actions] = transition(exchangeMachine, s, event as ExchangeEvent);
  return [next, fx(actions)];
}

/** The delayed events this step scheduled: {id: delay}. */
function timers(effects: Effect[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of effects) if (e.type === 'xstate.raise') out[(e.params as { id: string }).id] = (e.params as { delay: number }).delay;
  return out;
}

function sent(effects: Effect[]): { to: string; kind: string; reqId: string; body: Record<string, unknown> }[] {
  return effects.filter((e) => e.type === 'send').map((e) => e.params as never);
}

function only<T>(xs: T[]): T {
  expect(xs).toHaveLength(1);
  return xs[0]!;
}

/** Two replicas of partition 3: keys 0..59 alike except the changed ones. */
function replicas(changed: number[]) {
  const ours = new Map<number, DvvSet>();
  const theirs = new Map<number, DvvSet>();
  for (let i = 0; i < 60; i++) {
    ours.set(i, stateOf(1));
    theirs.set(i, stateOf(1));
  }
  for (const i of changed) theirs.set(i, stateOf(2));
  const levelsOf = (m: Map<number, DvvSet>) => treeLevels(buildSegments([...m].map(([i, s]) => [key(i), s] as const), shape.segments), shape);
  return { ours, theirs, oursLevels: levelsOf(ours), theirsLevels: levelsOf(theirs) };
}

/** Sends the paced request of the current awaiting state: the `pace` timer fired. */
function firePace(s: ExSnapshot): [ExSnapshot, Effect[]] {
  return step(s, { type: `xstate.after.pace.exchange.${String(s.value)}` });
}

describe('exchange machine', () => {
  it('compares roots, descends only where hashes differ, walks the differing segments and repairs both sides', () => {
    const changed = [7, 42];
    const { ours, theirs, oursLevels, theirsLevels } = replicas(changed);
    const changedSegments = [...new Set(changed.map((i) => segmentOf(key(i), shape.segments)))].sort((a, b) => a - b);

    let [s, effects] = initialTransition(exchangeMachine, input) as unknown as [ExSnapshot, Effect[]];
    effects = fx(effects as never);
    expect(only(effects.filter((e) => e.type === 'readTree')).params).toEqual({ reqId: 'exchange-1.1', p: 3 });

    [s, effects] = step(s, { type: 'aae.local.tree', reqId: 'exchange-1.1', levels: oursLevels.map((l) => hashesToBytes(l)) });
    expect(s.value).toBe('awaitingTree');
    expect(timers(effects)['xstate.after.pace.exchange.awaitingTree']).toBe(0);
    [s, effects] = firePace(s);
    const root = only(sent(effects));
    expect(root).toMatchObject({ to: 'n2', kind: 'aae.tree', reqId: 'exchange-1.2', body: { p: 3, shape: [16, 4], level: 0, nodes: [0] } });

    // The peer answers its children of the root: they differ, so level 1 is asked next.
    const answer0 = answerTree(theirsLevels, shape, 0, [0], bytesToHashes(root.body.hashes as Uint8Array));
    [s, effects] = step(s, {
      type: 'aae.tree.ok',
      from: 'n2',
      reqId: 'exchange-1.2',
      body: { level: 0, nodes: answer0.nodes, children: hashesToBytes(answer0.children) },
      bytes: 1000,
    });
    expect(s.value).toBe('awaitingTree');
    // Pacing: the round trip's bytes at 100 kB/s.
    const pace = timers(effects)['xstate.after.pace.exchange.awaitingTree']!;
    expect(pace).toBeGreaterThanOrEqual(10);
    [s, effects] = firePace(s);
    const level1 = only(sent(effects));
    const parents = [...new Set(changedSegments.map((seg) => Math.floor(seg / 4)))].sort((a, b) => a - b);
    expect(level1.body).toMatchObject({ level: 1, nodes: parents });

    // Its segments of those nodes: exactly the changed keys' segments differ.
    const answer1 = answerTree(theirsLevels, shape, 1, parents, bytesToHashes(level1.body.hashes as Uint8Array));
    [s, effects] = step(s, {
      type: 'aae.tree.ok',
      from: 'n2',
      reqId: level1.reqId,
      body: { level: 1, nodes: answer1.nodes, children: hashesToBytes(answer1.children) },
      bytes: 200,
    });
    expect(s.value).toBe('readingEntries');
    const read = only(effects.filter((e) => e.type === 'readEntries')).params as { reqId: string; segments: number[] };
    expect(read.segments).toEqual(changedSegments);

    // Our keys of those segments, with their object hashes, go to the peer.
    const ourKeys = [...ours.keys()].filter((i) => changedSegments.includes(segmentOf(key(i), 16)));
    [s, effects] = step(s, {
      type: 'aae.local.entries',
      reqId: read.reqId,
      segments: changedSegments,
      keys: ourKeys.map(key),
      hashes: hashesToBytes(ourKeys.map((i) => objectHash(key(i), ours.get(i)!))),
      bytes: 500,
    });
    expect(s.value).toBe('awaitingSegment');
    [s, effects] = firePace(s);
    const seg = only(sent(effects));
    expect(seg).toMatchObject({ kind: 'aae.segment', body: { p: 3, segments: changedSegments } });

    // The peer sends its newer states and wants ours of the same keys.
    const objects = changed.map((i) => [key(i), theirs.get(i)!] as [Uint8Array, DvvSet]);
    [s, effects] = step(s, { type: 'aae.segment.ok', from: 'n2', reqId: seg.reqId, body: { objects, want: changed.map(key), complete: true }, bytes: 300 });
    expect(s.value).toBe('merging');
    const merge = only(effects.filter((e) => e.type === 'mergeAndRead')).params as { reqId: string; objects: unknown[]; want: Uint8Array[] };
    expect(merge.objects).toHaveLength(2);
    expect(merge.want).toHaveLength(2);

    [s, effects] = step(s, { type: 'aae.local.merged', reqId: merge.reqId, repaired: 2, objects, complete: true, bytes: 200 });
    expect(s.value).toBe('awaitingPut');
    [s, effects] = firePace(s);
    const put = only(sent(effects));
    expect(put).toMatchObject({ kind: 'aae.put', body: { p: 3 } });

    [s] = step(s, { type: 'aae.put.ok', from: 'n2', reqId: put.reqId, body: { repaired: 0 }, bytes: 60 });
    expect(s.status).toBe('done');
    expect(s.output).toMatchObject({ p: 3, peer: 'n2', outcome: 'repaired', differing: changedSegments.length, repairedLocal: 2, repairedRemote: 0 } satisfies Partial<ExchangeOutput>);
    expect((s.output as ExchangeOutput).bytes).toBeGreaterThan(2000);
  });

  it('stops at the root when the trees agree', () => {
    const { oursLevels } = replicas([]);
    let [s] = initialTransition(exchangeMachine, input) as unknown as [ExSnapshot];
    let effects: Effect[];
    [s] = step(s, { type: 'aae.local.tree', reqId: 'exchange-1.1', levels: oursLevels.map((l) => hashesToBytes(l)) });
    [s, effects] = firePace(s);
    const root = only(sent(effects));
    const answer = answerTree(oursLevels, shape, 0, [0], bytesToHashes(root.body.hashes as Uint8Array));
    expect(answer.nodes).toEqual([]);
    [s] = step(s, { type: 'aae.tree.ok', from: 'n2', reqId: root.reqId, body: { level: 0, nodes: [], children: new Uint8Array(0) }, bytes: 50 });
    expect(s.status).toBe('done');
    expect(s.output).toMatchObject({ outcome: 'in-sync', differing: 0 });
  });

  it('ignores late, duplicated and foreign answers, and ends on the deadline', () => {
    const { oursLevels } = replicas([1]);
    let [s] = initialTransition(exchangeMachine, input) as unknown as [ExSnapshot];
    let effects: Effect[];
    [s] = step(s, { type: 'aae.local.tree', reqId: 'exchange-1.1', levels: oursLevels.map((l) => hashesToBytes(l)) });
    [s] = firePace(s);
    const body = { level: 0, nodes: [], children: new Uint8Array(0) };
    [s, effects] = step(s, { type: 'aae.tree.ok', from: 'n2', reqId: 'exchange-1.1', body, bytes: 10 });
    expect(s.value).toBe('awaitingTree');
    expect(effects).toEqual([]);
    [s] = step(s, { type: 'aae.tree.ok', from: 'n3', reqId: 'exchange-1.2', body, bytes: 10 });
    expect(s.value).toBe('awaitingTree');
    [s] = step(s, { type: 'xstate.after.deadline.exchange.awaitingTree' });
    expect(s.status).toBe('done');
    expect(s.output).toMatchObject({ outcome: 'timeout' });
  });

  it('ends as refused when the peer answers aae.error, and as failed on a malformed answer', () => {
    const { oursLevels } = replicas([1]);
    const start = () => {
      let [s] = initialTransition(exchangeMachine, input) as unknown as [ExSnapshot];
      [s] = step(s, { type: 'aae.local.tree', reqId: 'exchange-1.1', levels: oursLevels.map((l) => hashesToBytes(l)) });
      return firePace(s)[0];
    };
    const [refused] = step(start(), { type: 'aae.error', from: 'n2', reqId: 'exchange-1.2', body: { code: 'OVERLOADED', message: 'paused' }, bytes: 40 });
    expect(refused.output).toMatchObject({ outcome: 'refused', reason: 'OVERLOADED: paused' });
    const [failed] = step(start(), { type: 'aae.tree.ok', from: 'n2', reqId: 'exchange-1.2', body: { level: 0, nodes: [0], children: new Uint8Array(8) }, bytes: 40 });
    expect(failed.output).toMatchObject({ outcome: 'failed' });
  });

  it('asks again for a batch whose objects did not all fit', () => {
    const { oursLevels, theirsLevels } = replicas([5]);
    let [s] = initialTransition(exchangeMachine, input) as unknown as [ExSnapshot];
    let effects: Effect[];
    [s] = step(s, { type: 'aae.local.tree', reqId: 'exchange-1.1', levels: oursLevels.map((l) => hashesToBytes(l)) });
    for (let level = 0; level < 2; level++) {
      [s, effects] = firePace(s);
      const req = only(sent(effects));
      const a = answerTree(theirsLevels, shape, level, req.body.nodes as number[], bytesToHashes(req.body.hashes as Uint8Array));
      [s, effects] = step(s, { type: 'aae.tree.ok', from: 'n2', reqId: req.reqId, body: { level, nodes: a.nodes, children: hashesToBytes(a.children) }, bytes: 10 });
    }
    const seg5 = segmentOf(key(5), 16);
    const read = only(effects!.filter((e) => e.type === 'readEntries')).params as { reqId: string };
    [s] = step(s, { type: 'aae.local.entries', reqId: read.reqId, segments: [seg5], keys: [], hashes: new Uint8Array(0), bytes: 0 });
    [s, effects] = firePace(s);
    const seg = only(sent(effects));
    [s, effects] = step(s, { type: 'aae.segment.ok', from: 'n2', reqId: seg.reqId, body: { objects: [], want: [], complete: false }, bytes: 10 });
    const merge = only(effects.filter((e) => e.type === 'mergeAndRead')).params as { reqId: string };
    [s, effects] = step(s, { type: 'aae.local.merged', reqId: merge.reqId, repaired: 0, objects: [], complete: true, bytes: 0 });
    expect(s.value).toBe('readingEntries');
    expect((only(effects.filter((e) => e.type === 'readEntries')).params as { segments: number[] }).segments).toEqual([seg5]);
  });
});

type AeSnapshot = SnapshotFrom<typeof antiEntropyMachine>;

const ring = claimInitial(['n1', 'n2', 'n3'], 8);
const aeInput: AntiEntropyInput = {
  nodeId: 'n1',
  ring,
  n: 3,
  shape: { segments: 1024, fanout: 32 },
  exchangesMax: 2,
  bytesPerSec: 1_000_000,
  requestTimeoutMs: 1000,
  segmentsPerRequestMax: 1024,
  batchesMax: 100,
  paused: false,
};

function aeStep(s: AeSnapshot, event: AntiEntropyEvent): [AeSnapshot, Effect[]] {
  const [next, actions] = transition(antiEntropyMachine, s, event);
  return [next, fx(actions)];
}

const treeReq = (shapeOf: [number, number] = [1024, 32]): AntiEntropyEvent => ({
  type: 'aae.tree',
  from: 'n2',
  reqId: 'exchange-9.2',
  body: { p: 1, shape: shapeOf, level: 0, nodes: [0], hashes: new Uint8Array(8) },
  bytes: 60,
});

describe('anti-entropy machine', () => {
  it('plans a round of one exchange per (partition, other replica), skipping members down', () => {
    expect(planRound(ring, 'n1', 3, [])).toHaveLength(8 * 2);
    const plan = planRound(ring, 'n1', 3, ['n3']);
    expect(plan).toHaveLength(8);
    expect(plan.every(([, peer]) => peer === 'n2')).toBe(true);
    expect(planRound(ring, 'n1', 2, []).every(([p, peer]) => peer !== 'n1' && p >= 0)).toBe(true);
  });

  it('runs at most exchangesMax exchanges of a round and starts no new round before it ends', () => {
    let [s] = initialTransition(antiEntropyMachine, aeInput) as unknown as [AeSnapshot];
    let effects: Effect[];
    [s, effects] = aeStep(s, { type: 'aae.tick', down: [] });
    const spawned = effects.filter((e) => e.type === 'xstate.spawnChild');
    expect(spawned).toHaveLength(2);
    expect(s.context.running).toEqual(['exchange-1', 'exchange-2']);
    expect(s.context.queue).toHaveLength(14);
    [s, effects] = aeStep(s, { type: 'aae.tick', down: [] });
    expect(effects.filter((e) => e.type === 'xstate.spawnChild')).toHaveLength(0);
    expect(s.context.rounds).toBe(1);

    // One ends: it is reported and the next of the round starts.
    const output: ExchangeOutput = { id: 'exchange-1', p: 0, peer: 'n2', outcome: 'in-sync', differing: 0, repairedLocal: 0, repairedRemote: 0, bytes: 100 };
    [s, effects] = aeStep(s, { type: 'xstate.done.actor.*', actorId: 'exchange-1', output } as never);
    expect(effects.find((e) => e.type === 'reportExchange')?.params).toEqual(output);
    expect(effects.filter((e) => e.type === 'xstate.spawnChild')).toHaveLength(1);
    expect(s.context.running).toEqual(['exchange-2', 'exchange-3']);
    expect(s.context.queue).toHaveLength(13);
  });

  it('serves peers, and refuses another tree shape', () => {
    let [s] = initialTransition(antiEntropyMachine, aeInput) as unknown as [AeSnapshot];
    let effects: Effect[];
    [s, effects] = aeStep(s, treeReq());
    expect(effects.map((e) => e.type)).toEqual(['serveTree']);
    [s, effects] = aeStep(s, treeReq([4096, 16]));
    expect(only(sent(effects))).toMatchObject({ to: 'n2', kind: 'aae.error', reqId: 'exchange-9.2', body: { code: 'BAD_REQUEST' } });
    [s, effects] = aeStep(s, { type: 'aae.put', from: 'n3', reqId: 'exchange-4.7', body: { p: 2, objects: [] }, bytes: 30 });
    expect(effects.map((e) => e.type)).toEqual(['serveSync']);
  });

  it('refuses to exchange a partition it does not replicate', () => {
    const [s] = initialTransition(antiEntropyMachine, { ...aeInput, n: 2 }) as unknown as [AeSnapshot];
    // With N = 2 the primaries of partition 1 are n2 and n3.
    const [, effects] = aeStep(s, { type: 'aae.put', from: 'n2', reqId: 'exchange-3.4', body: { p: 1, objects: [] }, bytes: 30 });
    expect(only(sent(effects))).toMatchObject({ kind: 'aae.error', body: { code: 'NOT_OWNER' } });
    const [, tree] = aeStep(s, { ...(treeReq() as Extract<AntiEntropyEvent, { type: 'aae.tree' }>), body: { p: 1, shape: [1024, 32], level: 0, nodes: [0], hashes: new Uint8Array(8) } });
    expect(only(sent(tree))).toMatchObject({ kind: 'aae.error', body: { code: 'NOT_OWNER' } });
  });

  it('pause stops the running exchanges, refuses peers and starts no round; resume undoes it', () => {
    let [s] = initialTransition(antiEntropyMachine, aeInput) as unknown as [AeSnapshot];
    let effects: Effect[];
    [s] = aeStep(s, { type: 'aae.tick', down: [] });
    [s, effects] = aeStep(s, { type: 'api.aae', from: 'cli', reqId: '1', replyTo: 'inbox', op: 'pause' });
    expect(s.value).toBe('paused');
    expect(effects.filter((e) => e.type === 'xstate.stopChild')).toHaveLength(2);
    expect(effects.find((e) => e.type === 'answerAae')?.params).toMatchObject({ paused: true, replyTo: 'inbox', reqId: '1' });
    expect(s.context.running).toEqual([]);
    expect(s.context.queue).toEqual([]);

    [s, effects] = aeStep(s, { type: 'aae.tick', down: [] });
    expect(effects).toEqual([]);
    [s, effects] = aeStep(s, treeReq());
    expect(only(sent(effects))).toMatchObject({ kind: 'aae.error', body: { code: 'OVERLOADED' } });

    [s, effects] = aeStep(s, { type: 'api.aae', from: 'cli', reqId: '2', replyTo: 'inbox', op: 'resume' });
    expect(s.value).toBe('active');
    expect(effects.find((e) => e.type === 'answerAae')?.params).toMatchObject({ paused: false });
    [s, effects] = aeStep(s, { type: 'aae.tick', down: [] });
    expect(effects.filter((e) => e.type === 'xstate.spawnChild')).toHaveLength(2);
  });

  it('starts paused when asked to', () => {
    const [s] = initialTransition(antiEntropyMachine, { ...aeInput, paused: true }) as unknown as [AeSnapshot];
    expect(s.value).toBe('paused');
  });
});
