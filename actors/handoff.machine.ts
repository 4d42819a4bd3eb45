/**
 * Handoff: delivers hints (Dynamo §4.6). A node that kept writes for a primary that was down sends
 * them to it once the failure detector says it is up again, in bounded batches and under a byte rate,
 * and removes each hint only after the primary acknowledged the batch's commit. A delivered object is
 * synced into the owner's state (a DVV merge), never written over it. It also takes delivered batches
 * from peers and applies them.
 *
 * Takes: handoff.tick, member.up / member.down, handoff.collected / handoff.cleared (the store),
 * handoff.batch (from a peer), handoff.batch.ok. Sends: handoff.batch to one target at a time,
 * handoff.batch.ok after applying a peer's batch.
 *
 * Invariants: at most one batch is in flight; a hint is removed only after its target acked the
 * commit of its batch, and only if no newer write re-hinted the key meanwhile (the store compares
 * the hint's seq); a target judged down is not sent to.
 */
import { assign, raise, setup } from 'xstate';
import type { Hint } from '../src/ports/store.js';
import type { HandoffEvent, HandoffItem } from './handoff.events.js';
import type { SendParams } from './replica.machine.js';

export interface HandoffInput {
  nodeId: string;
  /** Hints in one batch, at most. */
  batchItemsMax: number;
  /** Bytes of object state in one batch, at most (one larger object still goes alone). */
  batchBytesMax: number;
  /** Delivery rate limit in bytes per second. */
  rateBytesPerSec: number;
  /** How long a target has to acknowledge a batch before it is tried again later. */
  attemptTimeoutMs: number;
}

export interface HandoffContext extends HandoffInput {
  down: Record<string, true>;
  /** The batch in flight: to whom, under which reqId, and which hints it delivers. */
  inFlight: { target: string; reqId: string; hints: Hint[]; items: HandoffItem[]; bytes: number } | null;
  seq: number;
  /** Bytes of the last delivered batch: the pause before the next keeps the rate. */
  lastBytes: number;
}

export interface CollectParams {
  down: string[];
  itemsMax: number;
  bytesMax: number;
}

export const handoffDefaults = {
  batchItemsMax: 256,
  batchBytesMax: 1024 * 1024,
  rateBytesPerSec: 8 * 1024 * 1024,
  attemptTimeoutMs: 10_000,
};

export const handoffMachine = setup({
  types: {
    context: {} as HandoffContext,
    events: {} as HandoffEvent,
    input: {} as HandoffInput,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    /** Reads the oldest hints of one target that is up, with their objects: answers handoff.collected. */
    collectBatch: (_, _params: CollectParams) => {},
    /** Removes delivered hints (compare-and-delete on seq): answers handoff.cleared. */
    clearHints: (_, _params: { hints: Hint[]; bytes: number }) => {},
    /** Syncs a peer's batch into the local store, then sends handoff.batch.ok. */
    applyBatch: (_, _params: { from: string; reqId: string; items: HandoffItem[] }) => {},
    markDown: assign({ down: ({ context, event }) => (event.type === 'member.down' ? { ...context.down, [event.nodeId]: true } : context.down) }),
    markUp: assign({
      down: ({ context, event }) => {
        if (event.type !== 'member.up') return context.down;
        const { [event.nodeId]: _, ...rest } = context.down;
        return rest;
      },
    }),
  },
}).createMachine({
  id: 'handoff',
  context: ({ input }) => ({ ...input, down: {}, inFlight: null, seq: 0, lastBytes: 0 }),
  initial: 'idle',
  on: {
    'handoff.batch': {
      actions: { type: 'applyBatch', params: ({ event }) => ({ from: event.from, reqId: event.reqId, items: event.body.items }) },
    },
    'member.down': { actions: 'markDown' },
    'member.up': { actions: 'markUp' },
  },
  states: {
    idle: {
      on: {
        'handoff.tick': 'collecting',
        'member.up': { target: 'collecting', actions: 'markUp' },
      },
    },
    collecting: {
      entry: {
        type: 'collectBatch',
        params: ({ context }) => ({ down: Object.keys(context.down), itemsMax: context.batchItemsMax, bytesMax: context.batchBytesMax }),
      },
      on: {
        'handoff.collected': [
          { guard: ({ event }) => event.target === null || event.items.length === 0, target: 'idle' },
          {
            target: 'delivering',
            actions: assign({
              seq: ({ context }) => context.seq + 1,
              inFlight: ({ context, event }) => ({
                target: event.target!,
                reqId: `handoff-${context.seq + 1}`,
                hints: event.hints,
                items: event.items,
                bytes: event.bytes,
              }),
            }),
          },
        ],
      },
    },
    delivering: {
      entry: [
        {
          type: 'send',
          params: ({ context }) => ({ to: context.inFlight!.target, kind: 'handoff.batch', reqId: context.inFlight!.reqId, body: { items: context.inFlight!.items } }),
        },
        raise({ type: 'attemptTimedOut' }, { id: 'attempt', delay: ({ context }) => context.attemptTimeoutMs }),
      ],
      on: {
        'handoff.batch.ok': {
          guard: ({ context, event }) => event.reqId === context.inFlight?.reqId && event.from === context.inFlight?.target,
          target: 'clearing',
        },
        'member.down': [
          { guard: ({ context, event }) => event.nodeId === context.inFlight?.target, target: 'idle', actions: ['markDown', assign({ inFlight: null })] },
          { actions: 'markDown' },
        ],
        attemptTimedOut: { target: 'idle', actions: assign({ inFlight: null }) },
      },
    },
    clearing: {
      entry: { type: 'clearHints', params: ({ context }) => ({ hints: context.inFlight!.hints, bytes: context.inFlight!.bytes }) },
      on: {
        'handoff.cleared': { target: 'pacing', actions: assign({ lastBytes: ({ context }) => context.inFlight?.bytes ?? 0, inFlight: null }) },
      },
    },
    // Keeps delivery under rateBytesPerSec, then goes straight on with the next batch.
    pacing: {
      entry: raise({ type: 'paced' }, { id: 'pace', delay: ({ context }) => Math.ceil((context.lastBytes / context.rateBytesPerSec) * 1000) }),
      on: { paced: 'collecting' },
    },
  },
});
