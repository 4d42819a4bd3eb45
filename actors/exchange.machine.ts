/**
 * Exchange: one anti-entropy session between this node and one other replica of one partition
 * (Dynamo §4.7), spawned by the anti-entropy machine. It compares the two Merkle trees root first
 * and descends only into nodes whose hashes differ (one aae.tree round trip per level: two with the
 * default 1024 segments and fan-out 32), then walks the differing segments in batches: it sends its
 * keys and object hashes (aae.segment), merges the peer's objects it lacks or holds differently, and
 * sends back its own states of the keys the peer wants (aae.put). Both sides merge with a DVV sync,
 * never an overwrite, so afterwards both hold the merge of what either held.
 *
 * Takes: aae.local.tree / .entries / .merged / .failed (the runtime's answers to readTree,
 * readEntries, mergeAndRead), aae.tree.ok, aae.segment.ok, aae.put.ok, aae.error (the peer).
 * Sends: aae.tree, aae.segment, aae.put to the peer (named action send).
 *
 * Invariants: one request in flight; every request and local step has a deadline (the exchange
 * ends as timeout); only the answer to the current request counts (reqId `<id>.<step>`, from the
 * peer), so late and duplicated answers are ignored; after each round trip the next request waits
 * bytes / bytesPerSec, so the exchange's traffic, both directions, stays under its byte rate; at
 * most batchesMax segment batches (a segment whose objects did not fit is asked for again).
 */
import { assign, setup } from 'xstate';
import { type TreeShape, bytesToHashes, differingChildren, hashesToBytes, treeDepth } from '../src/core/merkle.js';
import type { AaeObject } from '../src/protocol/aae-messages.js';
import type { ExchangeEvent } from './anti-entropy.events.js';
import type { SendParams } from './replica.machine.js';

export interface ExchangeInput {
  /** This exchange's id: the reqId of its step s is `${id}.${s}`. */
  id: string;
  peer: string;
  p: number;
  shape: TreeShape;
  /** How long the peer (or the store) has to answer one step. */
  requestTimeoutMs: number;
  /** This exchange's byte rate (the node's rate divided among its concurrent exchanges). */
  bytesPerSec: number;
  /** Segments asked for in one aae.segment, at most (fewer when their keys fill a message). */
  segmentsPerRequestMax: number;
  /** Segment batches in one exchange, at most; what is left waits for the next round. */
  batchesMax: number;
}

export type ExchangeOutcome = 'in-sync' | 'repaired' | 'timeout' | 'refused' | 'failed';

export interface ExchangeOutput {
  id: string;
  p: number;
  peer: string;
  outcome: ExchangeOutcome;
  /** Segments whose hashes differed. */
  differing: number;
  /** Keys whose state changed here, and at the peer. */
  repairedLocal: number;
  repairedRemote: number;
  /** Bytes of this exchange's envelopes, both directions (requests estimated, answers exact). */
  bytes: number;
  /** Why it failed, for the log. */
  reason?: string;
}

/** What the tree answer leads to: descend, walk the segments, or stop. */
type TreeDecision = { next: 'descend'; nodes: number[] } | { next: 'segments'; segments: number[] } | { next: 'in-sync' } | { next: 'failed'; reason: string };

export interface ExchangeContext extends ExchangeInput {
  step: number;
  /** Our tree, every level from the root, 8 bytes per hash (read once, at the start). */
  levels: Uint8Array[];
  /** The level of the last aae.tree. */
  level: number;
  /** The request to send once the pause is over, and its estimated size. */
  outbound: { kind: string; body: unknown; bytes: number } | null;
  decision: TreeDecision | null;
  /** Differing segments still to walk, and those of the batch in flight. */
  segments: number[];
  batch: number[];
  batches: number;
  differing: number;
  repairedLocal: number;
  repairedRemote: number;
  bytes: number;
  /** The pause before the next request: the last round trip's bytes at bytesPerSec. */
  paceMs: number;
  outcome: ExchangeOutcome | null;
  reason: string | undefined;
}

export interface ReadTreeParams {
  reqId: string;
  p: number;
}

export interface ReadEntriesParams {
  reqId: string;
  p: number;
  segments: number[];
}

export interface MergeAndReadParams {
  reqId: string;
  p: number;
  /** The peer's objects, to sync into the store. */
  objects: AaeObject[];
  /** Keys whose states to read after the merge and send to the peer. */
  want: Uint8Array[];
}

/** Envelope overhead added to the estimated size of a request. */
const envelopeBytes = 80;

export const exchangeDefaults = {
  requestTimeoutMs: 10_000,
  segmentsPerRequestMax: 1024,
  batchesMax: 4096,
};

function reqId(ctx: { id: string; step: number }): string {
  return `${ctx.id}.${ctx.step}`;
}

function isCurrent(ctx: ExchangeContext, event: ExchangeEvent): boolean {
  if (event.reqId !== reqId(ctx)) return false;
  return !('from' in event) || event.from === ctx.peer;
}

function paceFor(ctx: ExchangeContext, answerBytes: number): number {
  const bytes = (ctx.outbound?.bytes ?? 0) + answerBytes;
  return Math.ceil((bytes * 1000) / ctx.bytesPerSec);
}

function treeRequest(ctx: ExchangeContext, level: number, nodes: number[]): { kind: string; body: unknown; bytes: number } {
  const ours = bytesToHashes(ctx.levels[level]!);
  const hashes = hashesToBytes(nodes.map((n) => ours[n]!));
  return {
    kind: 'aae.tree',
    body: { p: ctx.p, shape: [ctx.shape.segments, ctx.shape.fanout], level, nodes, hashes },
    bytes: envelopeBytes + hashes.length + nodes.length * 3,
  };
}

/** The peer's children of the nodes that differ there, against ours: where to go next. */
export function decideTree(ctx: ExchangeContext, answer: { level: number; nodes: number[]; children: Uint8Array }): TreeDecision {
  const asked = (ctx.outbound?.body as { nodes?: number[] } | undefined)?.nodes ?? [];
  const { fanout } = ctx.shape;
  if (answer.level !== ctx.level) return { next: 'failed', reason: `the peer answered level ${answer.level} for level ${ctx.level}` };
  if (answer.nodes.some((n) => !asked.includes(n))) return { next: 'failed', reason: 'the peer answered for nodes that were not asked' };
  if (answer.children.length !== answer.nodes.length * fanout * 8) return { next: 'failed', reason: 'the peer answered a different fan-out' };
  const levels = ctx.levels.map(bytesToHashes);
  const next = differingChildren(levels, ctx.shape, ctx.level, answer.nodes, bytesToHashes(answer.children));
  if (next.length === 0) return { next: 'in-sync' };
  return ctx.level + 1 === treeDepth(ctx.shape) ? { next: 'segments', segments: next } : { next: 'descend', nodes: next };
}

/** Appends the batch's segments that are not queued already: they are asked for again. */
function requeue(segments: number[], batch: number[]): number[] {
  const queued = new Set(segments);
  return [...segments, ...batch.filter((s) => !queued.has(s))];
}

function output(ctx: ExchangeContext): ExchangeOutput {
  return {
    id: ctx.id,
    p: ctx.p,
    peer: ctx.peer,
    outcome: ctx.outcome ?? 'failed',
    differing: ctx.differing,
    repairedLocal: ctx.repairedLocal,
    repairedRemote: ctx.repairedRemote,
    bytes: ctx.bytes,
    ...(ctx.reason === undefined ? {} : { reason: ctx.reason }),
  };
}

/** The finish action with its outcome and, for failures, a reason for the log. */
function finish(outcome: ExchangeOutcome, reason?: (context: ExchangeContext, event: ExchangeEvent) => string) {
  return {
    type: 'finish' as const,
    params: ({ context, event }: { context: ExchangeContext; event: ExchangeEvent }) => ({ outcome, reason: reason?.(context, event) }),
  };
}

const refused = {
  guard: 'isCurrent' as const,
  target: 'done' as const,
  actions: finish('refused', (_, event) => (event.type === 'aae.error' ? `${event.body.code}: ${event.body.message}` : 'refused')),
};

const localFailed = {
  guard: 'isCurrent' as const,
  target: 'done' as const,
  actions: finish('failed', (_, event) => (event.type === 'aae.local.failed' ? event.message : 'store failure')),
};

export const exchangeMachine = setup({
  types: {
    context: {} as ExchangeContext,
    events: {} as ExchangeEvent,
    input: {} as ExchangeInput,
    output: {} as ExchangeOutput,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    /** Reads this node's tree of the partition: answers aae.local.tree. */
    readTree: (_, _params: ReadTreeParams) => {},
    /** Reads this node's keys and object hashes in some segments: answers aae.local.entries. */
    readEntries: (_, _params: ReadEntriesParams) => {},
    /** Syncs the peer's objects into the store, then reads the wanted states: answers aae.local.merged. */
    mergeAndRead: (_, _params: MergeAndReadParams) => {},
    nextStep: assign({ step: ({ context }) => context.step + 1 }),
    finish: assign((_, params: { outcome: ExchangeOutcome; reason: string | undefined }) => ({ outcome: params.outcome, reason: params.reason })),
  },
  guards: {
    isCurrent: ({ context, event }) => isCurrent(context, event),
  },
  delays: {
    pace: ({ context }) => context.paceMs,
    deadline: ({ context }) => context.paceMs + context.requestTimeoutMs,
  },
}).createMachine({
  id: 'exchange',
  context: ({ input }) => ({
    ...input,
    step: 0,
    levels: [],
    level: 0,
    outbound: null,
    decision: null,
    segments: [],
    batch: [],
    batches: 0,
    differing: 0,
    repairedLocal: 0,
    repairedRemote: 0,
    bytes: 0,
    paceMs: 0,
    outcome: null,
    reason: undefined,
  }),
  initial: 'readingTree',
  output: ({ context }) => output(context),
  states: {
    readingTree: {
      entry: ['nextStep', { type: 'readTree', params: ({ context }) => ({ reqId: reqId(context), p: context.p }) }],
      on: {
        'aae.local.tree': {
          guard: 'isCurrent',
          target: 'awaitingTree',
          actions: [
            assign({ levels: ({ event }) => event.levels, level: 0, step: ({ context }) => context.step + 1 }),
            assign({ outbound: ({ context }) => treeRequest(context, 0, [0]) }),
          ],
        },
        'aae.local.failed': localFailed,
      },
      after: { deadline: { target: 'done', actions: finish('timeout', () => 'reading the local tree took too long') } },
    },
    // One level of the tree: our hashes of some nodes out, the peer's children of the differing ones back.
    awaitingTree: {
      after: {
        pace: { actions: { type: 'send', params: ({ context }) => sendOutbound(context) } },
        deadline: { target: 'done', actions: finish('timeout', (context) => `no answer from ${context.peer} to aae.tree`) },
      },
      on: {
        'aae.tree.ok': {
          guard: 'isCurrent',
          target: 'decidingTree',
          actions: assign(({ context, event }) => ({
            decision: decideTree(context, event.body),
            paceMs: paceFor(context, event.bytes),
            bytes: context.bytes + (context.outbound?.bytes ?? 0) + event.bytes,
          })),
        },
        'aae.error': refused,
      },
    },
    decidingTree: {
      always: [
        {
          guard: ({ context }) => context.decision?.next === 'failed',
          target: 'done',
          actions: finish('failed', (context) => (context.decision as { reason: string }).reason),
        },
        { guard: ({ context }) => context.decision?.next === 'in-sync', target: 'done', actions: finish('in-sync') },
        {
          guard: ({ context }) => context.decision?.next === 'segments',
          target: 'readingEntries',
          actions: assign(({ context }) => {
            const segments = (context.decision as { segments: number[] }).segments;
            return { segments, differing: segments.length, outbound: null };
          }),
        },
        {
          target: 'awaitingTree',
          reenter: true,
          actions: [
            assign(({ context }) => ({ level: context.level + 1, step: context.step + 1 })),
            assign({ outbound: ({ context }) => treeRequest(context, context.level, (context.decision as { nodes: number[] }).nodes) }),
          ],
        },
      ],
    },
    // The next batch of differing segments: our keys and object hashes in them, from the store.
    readingEntries: {
      entry: [
        'nextStep',
        {
          type: 'readEntries',
          params: ({ context }) => ({ reqId: reqId(context), p: context.p, segments: context.segments.slice(0, context.segmentsPerRequestMax) }),
        },
      ],
      on: {
        'aae.local.entries': {
          guard: 'isCurrent',
          target: 'awaitingSegment',
          actions: assign(({ context, event }) => {
            const covered = new Set(event.segments);
            return {
              batch: event.segments,
              segments: context.segments.filter((s) => !covered.has(s)),
              batches: context.batches + 1,
              step: context.step + 1,
              outbound: {
                kind: 'aae.segment',
                body: { p: context.p, shape: [context.shape.segments, context.shape.fanout], segments: event.segments, keys: event.keys, hashes: event.hashes },
                bytes: envelopeBytes + event.bytes + event.segments.length * 3,
              },
            };
          }),
        },
        'aae.local.failed': localFailed,
      },
      after: { deadline: { target: 'done', actions: finish('timeout', () => 'reading local keys took too long') } },
    },
    awaitingSegment: {
      after: {
        pace: { actions: { type: 'send', params: ({ context }) => sendOutbound(context) } },
        deadline: { target: 'done', actions: finish('timeout', (context) => `no answer from ${context.peer} to aae.segment`) },
      },
      on: {
        'aae.segment.ok': {
          guard: 'isCurrent',
          target: 'merging',
          actions: [
            assign(({ context, event }) => ({
              segments: event.body.complete ? context.segments : requeue(context.segments, context.batch),
              paceMs: paceFor(context, event.bytes),
              bytes: context.bytes + (context.outbound?.bytes ?? 0) + event.bytes,
              outbound: null,
              step: context.step + 1,
            })),
            {
              type: 'mergeAndRead',
              // The assign above has run: the context's step is this local step's.
              params: ({ context, event }) => ({ reqId: reqId(context), p: context.p, objects: event.body.objects, want: event.body.want }),
            },
          ],
        },
        'aae.error': refused,
      },
    },
    // The peer's objects go into our store; then our states of what it wants come back to go out.
    merging: {
      on: {
        'aae.local.merged': [
          {
            guard: ({ context, event }) => isCurrent(context, event) && event.objects.length > 0,
            target: 'awaitingPut',
            actions: assign(({ context, event }) => ({
              repairedLocal: context.repairedLocal + event.repaired,
              segments: event.complete ? context.segments : requeue(context.segments, context.batch),
              step: context.step + 1,
              outbound: { kind: 'aae.put', body: { p: context.p, objects: event.objects }, bytes: envelopeBytes + event.bytes },
            })),
          },
          {
            guard: 'isCurrent',
            target: 'nextBatch',
            actions: assign(({ context, event }) => ({
              repairedLocal: context.repairedLocal + event.repaired,
              segments: event.complete ? context.segments : requeue(context.segments, context.batch),
            })),
          },
        ],
        'aae.local.failed': localFailed,
      },
      after: { deadline: { target: 'done', actions: finish('timeout', () => 'merging into the local store took too long') } },
    },
    awaitingPut: {
      after: {
        pace: { actions: { type: 'send', params: ({ context }) => sendOutbound(context) } },
        deadline: { target: 'done', actions: finish('timeout', (context) => `no answer from ${context.peer} to aae.put`) },
      },
      on: {
        'aae.put.ok': {
          guard: 'isCurrent',
          target: 'nextBatch',
          actions: assign(({ context, event }) => ({
            repairedRemote: context.repairedRemote + event.body.repaired,
            paceMs: paceFor(context, event.bytes),
            bytes: context.bytes + (context.outbound?.bytes ?? 0) + event.bytes,
            outbound: null,
          })),
        },
        'aae.error': refused,
      },
    },
    nextBatch: {
      always: [
        { guard: ({ context }) => context.segments.length === 0 || context.batches >= context.batchesMax, target: 'done', actions: finish('repaired') },
        { target: 'readingEntries' },
      ],
    },
    done: { type: 'final' },
  },
});

/** The request waiting in context.outbound, sent once the pause that keeps the byte rate is over. */
function sendOutbound(context: ExchangeContext): SendParams {
  const out = context.outbound!;
  return { to: context.peer, kind: out.kind, reqId: reqId(context), body: out.body };
}
