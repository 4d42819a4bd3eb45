/**
 * The store work behind ownership transfer's named actions (actors/transfer.machine.ts and
 * actors/partition-transfer.machine.ts), and the counters `ringkv transfers` and the metrics read.
 * Results go back to the asking actor as events; nothing here decides what to transfer.
 */
import type { AnyActorRef } from 'xstate';
import type { HandoffItem } from '../../actors/handoff.events.js';
import type { CollectTransferParams, DropSentParams } from '../../actors/partition-transfer.machine.js';
import { type AnswerTransfersParams, partitionsNotReplicated } from '../../actors/transfer.machine.js';
import type { FoundPartition } from '../../actors/transfer.events.js';
import type { DvvSet } from '../core/dvv.js';
import type { Ring } from '../core/ring.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import { encode } from '../protocol/codec.js';
import type { ApiTransfersOk, TransferRow } from '../protocol/messages.js';

/** Objects a scan counts per partition, at most (the count is only an estimate for progress). */
const scanCountMax = 1_000_000;

/** Totals since the node started: what the metrics export. */
export interface TransferTotals {
  /** Objects every target confirmed (counted once per object, whatever the number of targets). */
  objectsSent: number;
  /** Bytes on the wire of confirmed batches (object bytes times targets). */
  bytesSent: number;
  /** Objects deleted here after their targets confirmed them. */
  objectsDropped: number;
  /** Objects received from peers' transfers and committed here. */
  objectsReceived: number;
  bytesReceived: number;
  /** Partition transfers running on this node, and found but not started (filled in when read). */
  running: number;
  waiting: number;
}

export interface TransferIo {
  totals: TransferTotals;
  findWork(self: AnyActorRef, p: { scan: number; partitions: number[] }): void;
  collectTransfer(self: AnyActorRef, p: CollectTransferParams): void;
  dropSent(self: AnyActorRef, p: DropSentParams): void;
  /** What this node still holds for others (hints, or objects of partitions it does not replicate), or undefined. */
  leftToHandOver(ring: Ring, n: number): string | undefined;
  /** The api.transfers answer body, with rates and ETAs at `now`. */
  answerBody(p: AnswerTransfersParams, now: number): ApiTransfersOk;
  /** Counts a peer's batch once it has been committed here. */
  received(items: HandoffItem[]): void;
}

/**
 * Answers the asking actor after its current transition: the store reads above are synchronous, and
 * an actor must never receive an event while it is still taking a transition.
 */
function answer(self: AnyActorRef, event: { type: string; [field: string]: unknown }): void {
  queueMicrotask(() => self.send(event));
}

function objectId(p: number, key: Uint8Array): string {
  return `${p}/${Buffer.from(key).toString('latin1')}`;
}

export function createTransferIo(deps: {
  nodeId: string;
  store: Store;
  log: Log;
  /** Called with the states about to be deleted, before the deletion (the node renews its epoch if it made dots in them). */
  beforeDrop?: (states: readonly DvvSet[]) => void;
}): TransferIo {
  const { nodeId, store, log } = deps;
  const totals: TransferTotals = { objectsSent: 0, bytesSent: 0, objectsDropped: 0, objectsReceived: 0, bytesReceived: 0, running: 0, waiting: 0 };

  /** Objects with a pending hint: hinted handoff owns them, so transfer leaves them alone. */
  const hinted = (): Set<string> => {
    const out = new Set<string>();
    for (const h of store.hints()) out.add(objectId(h.partition, h.key));
    return out;
  };

  return {
    totals,

    findWork(self, p) {
      const found: FoundPartition[] = [];
      let hints: Set<string> | undefined;
      for (const partition of p.partitions) {
        let objects = 0;
        for (const key of store.keys(partition)) {
          hints ??= store.hintCount() > 0 ? hinted() : new Set();
          if (!hints.has(objectId(partition, key))) objects++;
          if (objects >= scanCountMax) break;
        }
        if (objects > 0) found.push({ p: partition, objects });
      }
      answer(self, { type: 'transfer.found', scan: p.scan, partitions: found, hints: store.hintCount() });
    },

    collectTransfer(self, p) {
      const hints = store.hintCount() > 0 ? hinted() : undefined;
      const after = p.after ? Buffer.from(p.after) : undefined;
      const items: HandoffItem[] = [];
      let bytes = 0;
      for (const key of store.keys(p.p)) {
        // Keys before the cursor are the ones already confirmed: dropped, unless they changed (the
        // next pass takes those) or wait for a hint.
        if (after && Buffer.compare(Buffer.from(key), after) <= 0) continue;
        if (hints?.has(objectId(p.p, key))) continue;
        const state = store.get(p.p, key);
        if (state === undefined) continue;
        const size = encode(state).length;
        if (items.length > 0 && (items.length >= p.itemsMax || bytes + size > p.bytesMax)) break;
        items.push({ p: p.p, key, state });
        bytes += size;
      }
      answer(self, { type: 'transfer.collected', id: p.id, items, bytes });
    },

    dropSent(self, p) {
      totals.objectsSent += p.items.length;
      totals.bytesSent += p.bytes * p.targets;
      deps.beforeDrop?.(p.items.map((item) => item.state));
      Promise.all(p.items.map((item) => store.removeIfUnchanged(p.p, item.key, item.state))).then(
        (results) => {
          const dropped = results.filter(Boolean).length;
          totals.objectsDropped += dropped;
          self.send({ type: 'transfer.dropped', id: p.id, dropped, kept: results.length - dropped });
        },
        (err: unknown) => {
          // Nothing is lost: what was not deleted is sent again by the next pass.
          log.error('could not drop transferred objects', { partition: p.p, err });
          self.send({ type: 'transfer.dropped', id: p.id, dropped: 0, kept: p.items.length });
        },
      );
    },

    leftToHandOver(ring, n) {
      if (store.hintCount() > 0) return `${store.hintCount()} hints`;
      for (const partition of partitionsNotReplicated(ring, nodeId, n)) {
        for (const _key of store.keys(partition)) return `objects of partition ${partition}`;
      }
      return undefined;
    },

    answerBody(p, now) {
      const transfers: TransferRow[] = p.transfers.map((t) => {
        const elapsedMs = t.startedAt === null ? null : Math.max(0, now - t.startedAt);
        const seconds = elapsedMs === null ? 0 : elapsedMs / 1000;
        const objectsPerSec = seconds > 0 ? t.objectsSent / seconds : 0;
        const bytesPerSec = seconds > 0 ? t.bytesSent / seconds : 0;
        const left = Math.max(0, t.objectsTotal - t.objectsSent);
        const etaMs = objectsPerSec > 0 ? Math.round((left / objectsPerSec) * 1000) : null;
        return { p: t.p, from: t.from, to: t.to, state: t.state, objectsSent: t.objectsSent, bytesSent: t.bytesSent, objectsTotal: t.objectsTotal, elapsedMs, objectsPerSec, bytesPerSec, etaMs, passes: t.passes };
      });
      return { nodeId, transfers, inbound: p.inbound, completed: p.completed };
    },

    received(items) {
      totals.objectsReceived += items.length;
      for (const item of items) totals.bytesReceived += encode(item.state).length;
    },
  };
}
