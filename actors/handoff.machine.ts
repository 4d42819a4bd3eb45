/**
 * Handoff: delivers hints (Dynamo §4.6). A node that kept writes for a primary that was down sends
 * them to it once the failure detector says it is up again, in bounded batches and under a byte rate,
 * and removes each hint only after the primary acknowledged the batch's commit. A delivered object is
 * synced into the owner's state (a DVV merge), never written over it. It also takes delivered batches
 * from peers and applies them.
 *
 * A hint for a member that has departed (exiting or removed: src/core/departed.ts) can never be
 * delivered, and while it is pending ownership transfer leaves its object alone, so a leaving holder
 * would never exit. So each tick first drops the hints of departed members (dropHints; the store
 * removes them, the objects stay). What they carried is then an object like any other this node
 * holds: if this node does not replicate its partition under the current ring, ownership transfer
 * hands it to every current primary before deleting it; if it does, anti-entropy and read repair
 * bring it to the other primaries. Nothing acknowledged is lost: the object itself is never
 * removed here, and a departed member does not come back under its id.
 *
 * Takes: handoff.tick, member.up / member.down, cluster.changed (the gossiped cluster state: who
 * departed), handoff.collected / handoff.cleared / handoff.dropped (the store), handoff.batch (from a
 * peer), handoff.batch.ok. Sends: handoff.batch to one target at a time, handoff.batch.ok after
 * applying a peer's batch.
 *
 * Invariants: at most one batch is in flight; a hint is removed only after its target acked the
 * commit of its batch, or when its target has departed, and only if no newer write re-hinted the key
 * meanwhile (the store compares the hint's seq); a target judged down or departed is not sent to.
 */
import { assign, raise, setup } from 'xstate';
import { departedOf } from '../src/core/departed.js';
import type { Hint } from '../src/ports/store.js';
import type { HandoffEvent, HandoffItem } from './handoff.events.js';
import type { SendParams } from './replica.machine.js';
import { operatorDefaults } from '../src/core/defaults.js';

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
  /** Members that had departed when the node started (from its stored cluster state). */
  departed?: readonly string[];
}

export interface HandoffContext extends HandoffInput {
  down: Record<string, true>;
  /** Members that left the cluster for good (exiting or removed): their hints are dropped. */
  gone: Record<string, true>;
  /** The batch in flight: to whom, under which reqId, and which hints it delivers. */
  inFlight: { target: string; reqId: string; hints: Hint[]; items: HandoffItem[]; bytes: number } | null;
  seq: number;
  /** Bytes of the last delivered batch: the pause before the next keeps the rate. */
  lastBytes: number;
}

export interface CollectParams {
  /** Targets not to deliver to now: judged down, or departed (their hints are being dropped). */
  down: string[];
  itemsMax: number;
  bytesMax: number;
}

export interface DropHintsParams {
  /** Departed members: every pending hint for one of them is removed (the objects stay). */
  targets: string[];
  /** Hints removed in one step, at most (one group commit); more: handoff.dropped says so. */
  itemsMax: number;
}

/** Hints dropped in one step, at most, per hint of a delivery batch. */
const dropFactor = 16;

function goneOf(ids: readonly string[]): Record<string, true> {
  return Object.fromEntries(ids.map((id) => [id, true as const]));
}

export const handoffDefaults = {
  batchItemsMax: 256,
  batchBytesMax: 1024 * 1024,
  rateBytesPerSec: operatorDefaults.handoffRateBytesPerSec as number,
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
    /** Removes every hint for the departed targets (compare-and-delete on seq): answers handoff.dropped. */
    dropHints: (_, _params: DropHintsParams) => {},
    /** Syncs a peer's batch into the local store, then sends handoff.batch.ok. */
    applyBatch: (_, _params: { from: string; reqId: string; items: HandoffItem[] }) => {},
    markDown: assign({ down: ({ context, event }) => (event.type === 'member.down' ? { ...context.down, [event.nodeId]: true } : context.down) }),
    // The departed set is recomputed from each gossiped state, so a member that is not departed any
    // more (a later register won) is delivered to again.
    markGone: assign({ gone: ({ context, event }) => (event.type === 'cluster.changed' ? goneOf(departedOf(event.cluster)) : context.gone) }),
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
  context: ({ input }) => ({ ...input, down: {}, gone: goneOf(input.departed ?? []), inFlight: null, seq: 0, lastBytes: 0 }),
  initial: 'idle',
  on: {
    'handoff.batch': {
      actions: { type: 'applyBatch', params: ({ event }) => ({ from: event.from, reqId: event.reqId, items: event.body.items }) },
    },
    'member.down': { actions: 'markDown' },
    'member.up': { actions: 'markUp' },
    'cluster.changed': { actions: 'markGone' },
  },
  states: {
    idle: {
      on: {
        'handoff.tick': [{ guard: ({ context }) => Object.keys(context.gone).length > 0, target: 'dropping' }, { target: 'collecting' }],
        'member.up': { target: 'collecting', actions: 'markUp' },
      },
    },
    // Hints for departed members can never be delivered: drop them (their objects stay, for
    // ownership transfer or anti-entropy to bring to the key's current primaries), then deliver.
    // On every tick while some member has departed: a write hinted under an older ring can still
    // commit here after a drop (a coordinator that had not heard of the departure yet).
    dropping: {
      entry: {
        type: 'dropHints',
        params: ({ context }) => ({ targets: Object.keys(context.gone).sort(), itemsMax: context.batchItemsMax * dropFactor }),
      },
      on: {
        'handoff.dropped': [{ guard: ({ event }) => event.more, target: 'dropping', reenter: true }, { target: 'collecting' }],
      },
    },
    collecting: {
      entry: {
        type: 'collectBatch',
        params: ({ context }) => ({ down: [...new Set([...Object.keys(context.down), ...Object.keys(context.gone)])], itemsMax: context.batchItemsMax, bytesMax: context.batchBytesMax }),
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
        // The target departed while its batch was in flight: no answer will come (the next tick drops its hints).
        'cluster.changed': [
          { guard: ({ context, event }) => departedOf(event.cluster).includes(context.inFlight?.target ?? ''), target: 'idle', actions: ['markGone', assign({ inFlight: null })] },
          { actions: 'markGone' },
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
