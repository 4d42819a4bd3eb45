/**
 * Partition transfer: hands one partition this node holds, but no longer replicates, to every primary
 * of the partition under the current ring (ownership transfer, Dynamo §4.9). One per partition being
 * handed over, a child of the transfer machine.
 *
 * It first reserves an inbound slot at every target (an empty batch; any busy ends it, freeing the
 * slots it got). It then walks the partition's objects in key order from a cursor, in batches bounded by items and bytes;
 * each batch goes to every target at once (handoff.transfer). A target syncs each object into its own
 * state (a DVV merge, never an overwrite) and answers handoff.transfer.ok only after the commit. Once
 * every target confirmed a batch, each of its objects is deleted here, but only if its state is still
 * the one that was sent and no hint is pending for it (the store compares): a write that arrived
 * meanwhile stays, and the next pass sends it again. The cursor moves past a batch only when every
 * target confirmed it, so a batch that times out is sent again from where it stopped. A pass that
 * started at the first key and deleted everything it met ends the transfer; otherwise a new pass
 * starts from the first key (at most passesMax).
 *
 * Takes: transfer.collected / transfer.dropped (the store), handoff.transfer.ok / .busy (targets),
 * member.down. Sends: handoff.transfer to each target that has not confirmed the batch in flight,
 * and handoff.transfer.done to every target when it ends, however it ends.
 * Output: how it ended (done, or why it stopped early) and its cursor, so a later transfer of the
 * same partition starts where this one stopped.
 *
 * Invariants: at most one batch in flight; an object is deleted only after every target acknowledged
 * the commit of a batch holding its current state; a target judged down stops the transfer (it is
 * started again when the target is up); bytes on the wire (batch bytes times targets) stay under
 * rateBytesPerSec.
 */
import { assign, cancel, raise, setup } from 'xstate';
import type { HandoffItem } from './handoff.events.js';
import type { SendParams } from './replica.machine.js';
import type { PartitionTransferEvent } from './transfer.events.js';

export interface PartitionTransferInput {
  /** The child's id; every reqId of its batches starts with it. */
  id: string;
  p: number;
  /** The primaries of p under the current ring: every one must confirm each batch. */
  targets: string[];
  /** The last key every target confirmed in an earlier transfer of p, or null for the first key. */
  cursor: Uint8Array | null;
  batchItemsMax: number;
  batchBytesMax: number;
  /** This transfer's share of the node's transfer byte rate. */
  rateBytesPerSec: number;
  attemptTimeoutMs: number;
  /** Sends of one batch before the transfer gives up (the next scan starts it again). */
  attemptsMax: number;
  /** Passes over the partition before the transfer gives up for now (a key written without pause). */
  passesMax: number;
  /** Progress reporting: when it started (ms, the runtime's clock) and how many objects the scan found. */
  startedAt: number;
  objectsTotal: number;
}

export interface TransferInFlight {
  reqId: string;
  items: HandoffItem[];
  bytes: number;
  /** Targets that confirmed this batch. */
  acked: string[];
}

export interface PartitionTransferContext extends PartitionTransferInput {
  inFlight: TransferInFlight | null;
  batchSeq: number;
  attempts: number;
  /** The current pass began at the first key (cursor null). */
  passFromStart: boolean;
  /** Objects of this pass that were sent but stayed (changed meanwhile, or hinted). */
  passKept: number;
  passes: number;
  objectsSent: number;
  bytesSent: number;
  dropped: number;
  /** Bytes on the wire of the last batch: the pause before the next keeps the rate. */
  lastWireBytes: number;
  /** Set by the final state reached. */
  outcome: PartitionTransferOutcome | null;
}

export type PartitionTransferOutcome = 'done' | 'busy' | 'targetDown' | 'timedOut' | 'again';

export interface PartitionTransferOutput {
  id: string;
  p: number;
  outcome: PartitionTransferOutcome;
  cursor: Uint8Array | null;
  objectsSent: number;
  bytesSent: number;
}

export interface CollectTransferParams {
  id: string;
  p: number;
  after: Uint8Array | null;
  itemsMax: number;
  bytesMax: number;
}

export interface DropSentParams {
  id: string;
  p: number;
  items: HandoffItem[];
  /** Bytes of object state in the batch (what each target received). */
  bytes: number;
  targets: number;
}

export const partitionTransferDefaults = {
  batchItemsMax: 256,
  batchBytesMax: 1024 * 1024,
  attemptTimeoutMs: 10_000,
  attemptsMax: 3,
  passesMax: 8,
};

type Ctx = { context: PartitionTransferContext };
type Ev<T extends PartitionTransferEvent['type']> = { context: PartitionTransferContext; event: Extract<PartitionTransferEvent, { type: T }> };

const isForInFlight = ({ context, event }: Ev<'handoff.transfer.ok' | 'handoff.transfer.busy'>) =>
  event.reqId === context.inFlight?.reqId && context.targets.includes(event.from);

const isConfirmedByAll = ({ context, event }: Ev<'handoff.transfer.ok'>) =>
  isForInFlight({ context, event }) && context.targets.every((t) => t === event.from || context.inFlight!.acked.includes(t));

const releaseSlots = {
  type: 'sendAll' as const,
  params: ({ context }: Ctx) => context.targets.map((to) => ({ to, kind: 'handoff.transfer.done', reqId: context.id, body: { p: context.p } })),
};

export const partitionTransferMachine = setup({
  types: {
    context: {} as PartitionTransferContext,
    events: {} as PartitionTransferEvent,
    input: {} as PartitionTransferInput,
    output: {} as PartitionTransferOutput,
  },
  actions: {
    // I/O, provided by the runtime.
    sendAll: (_, _params: SendParams[]) => {},
    /** Reads the next objects of p after the cursor, leaving out keys with pending hints: answers transfer.collected. */
    collectTransfer: (_, _params: CollectTransferParams) => {},
    /** Deletes each sent object whose state is unchanged and unhinted: answers transfer.dropped. */
    dropSent: (_, _params: DropSentParams) => {},
  },
}).createMachine({
  id: 'partitionTransfer',
  context: ({ input }) => ({
    ...input,
    inFlight: null,
    batchSeq: 0,
    attempts: 0,
    passFromStart: input.cursor === null,
    passKept: 0,
    passes: 0,
    objectsSent: 0,
    bytesSent: 0,
    dropped: 0,
    lastWireBytes: 0,
    outcome: null,
  }),
  initial: 'reserving',
  states: {
    // An empty batch first: each target either takes this transfer (an inbound slot) or answers
    // busy. On any busy the transfer releases the slots it got and stops, before any data moved:
    // it never holds one slot while it waits for another, so transfers cannot deadlock on slots.
    reserving: {
      entry: [
        assign({ batchSeq: ({ context }) => context.batchSeq + 1 }),
        assign({ inFlight: ({ context }) => ({ reqId: `${context.id}.${context.batchSeq}`, items: [], bytes: 0, acked: [] }) }),
        {
          type: 'sendAll',
          params: ({ context }: Ctx) => context.targets.map((to) => ({ to, kind: 'handoff.transfer', reqId: context.inFlight!.reqId, body: { p: context.p, items: [] } })),
        },
        raise({ type: 'attemptTimedOut' }, { id: 'attempt', delay: ({ context }) => context.attemptTimeoutMs }),
      ],
      exit: cancel('attempt'),
      on: {
        'handoff.transfer.ok': [
          { guard: isConfirmedByAll, target: 'collecting', actions: assign({ inFlight: null }) },
          {
            guard: isForInFlight,
            actions: assign({ inFlight: ({ context, event }) => ({ ...context.inFlight!, acked: [...new Set([...context.inFlight!.acked, event.from])] }) }),
          },
        ],
        'handoff.transfer.busy': { guard: isForInFlight, target: 'busy' },
        'member.down': { guard: ({ context, event }) => context.targets.includes(event.nodeId), target: 'targetDown' },
        attemptTimedOut: { target: 'timedOut' },
      },
    },
    collecting: {
      entry: {
        type: 'collectTransfer',
        params: ({ context }: Ctx) => ({ id: context.id, p: context.p, after: context.cursor, itemsMax: context.batchItemsMax, bytesMax: context.batchBytesMax }),
      },
      on: {
        'transfer.collected': [
          {
            // The pass is over, it covered the whole partition, and everything it met is gone.
            guard: ({ context, event }) => event.items.length === 0 && context.passFromStart && context.passKept === 0,
            target: 'done',
          },
          {
            guard: ({ context, event }) => event.items.length === 0 && context.passes + 1 >= context.passesMax,
            target: 'gaveUp',
          },
          {
            // Another pass from the first key: writes that arrived meanwhile, and whatever came before
            // the cursor this transfer started from.
            guard: ({ event }) => event.items.length === 0,
            target: 'collecting',
            reenter: true,
            actions: assign({ cursor: null, passFromStart: true, passKept: 0, passes: ({ context }) => context.passes + 1 }),
          },
          {
            target: 'sending',
            actions: assign({
              batchSeq: ({ context }) => context.batchSeq + 1,
              attempts: 0,
              inFlight: ({ context, event }) => ({ reqId: `${context.id}.${context.batchSeq + 1}`, items: event.items, bytes: event.bytes, acked: [] }),
            }),
          },
        ],
      },
    },
    sending: {
      entry: [
        {
          type: 'sendAll',
          params: ({ context }: Ctx) =>
            context.targets
              .filter((t) => !context.inFlight!.acked.includes(t))
              .map((to) => ({ to, kind: 'handoff.transfer', reqId: context.inFlight!.reqId, body: { p: context.p, items: context.inFlight!.items } })),
        },
        assign({ attempts: ({ context }) => context.attempts + 1 }),
        raise({ type: 'attemptTimedOut' }, { id: 'attempt', delay: ({ context }) => context.attemptTimeoutMs }),
      ],
      exit: cancel('attempt'),
      on: {
        'handoff.transfer.ok': [
          { guard: isConfirmedByAll, target: 'dropping' },
          {
            guard: isForInFlight,
            actions: assign({
              inFlight: ({ context, event }) =>
                context.inFlight!.acked.includes(event.from) ? context.inFlight : { ...context.inFlight!, acked: [...context.inFlight!.acked, event.from] },
            }),
          },
        ],
        'handoff.transfer.busy': { guard: isForInFlight, target: 'busy' },
        'member.down': { guard: ({ context, event }) => context.targets.includes(event.nodeId), target: 'targetDown' },
        attemptTimedOut: [
          { guard: ({ context }) => context.attempts >= context.attemptsMax, target: 'timedOut' },
          // Sent again to the targets that have not confirmed it; syncing a state twice changes nothing.
          { target: 'sending', reenter: true },
        ],
      },
    },
    dropping: {
      entry: {
        type: 'dropSent',
        params: ({ context }: Ctx) => ({ id: context.id, p: context.p, items: context.inFlight!.items, bytes: context.inFlight!.bytes, targets: context.targets.length }),
      },
      on: {
        'transfer.dropped': {
          target: 'pacing',
          actions: assign(({ context, event }) => {
            const items = context.inFlight!.items;
            return {
              cursor: items[items.length - 1]!.key,
              objectsSent: context.objectsSent + items.length,
              bytesSent: context.bytesSent + context.inFlight!.bytes,
              dropped: context.dropped + event.dropped,
              passKept: context.passKept + event.kept,
              lastWireBytes: context.inFlight!.bytes * context.targets.length,
              inFlight: null,
            };
          }),
        },
      },
    },
    // Keeps the bytes on the wire under rateBytesPerSec, then goes on with the next batch.
    pacing: {
      entry: raise({ type: 'paced' }, { id: 'pace', delay: ({ context }) => Math.ceil((context.lastWireBytes / context.rateBytesPerSec) * 1000) }),
      on: { paced: 'collecting' },
    },
    // Every end frees the inbound slot this transfer holds (or may hold) at each target.
    done: { type: 'final', entry: [assign({ outcome: 'done' as const }), releaseSlots] },
    gaveUp: { type: 'final', entry: [assign({ outcome: 'again' as const }), releaseSlots] },
    busy: { type: 'final', entry: [assign({ outcome: 'busy' as const }), releaseSlots] },
    targetDown: { type: 'final', entry: [assign({ outcome: 'targetDown' as const }), releaseSlots] },
    timedOut: { type: 'final', entry: [assign({ outcome: 'timedOut' as const }), releaseSlots] },
  },
  output: ({ context }) => ({
    id: context.id,
    p: context.p,
    outcome: context.outcome ?? 'done',
    cursor: context.cursor,
    objectsSent: context.objectsSent,
    bytesSent: context.bytesSent,
  }),
});
