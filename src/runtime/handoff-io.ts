/**
 * Hinted handoff's I/O (Dynamo §4.6; actors/handoff.machine.ts): the store work behind the handoff
 * machine's named actions, and the apply-and-ack of a batch a peer hands over (ownership transfer
 * delivers objects the same way). The delivery tally feeds `ringkv hints` and the metrics.
 */
import type { AnyActorRef } from 'xstate';
import type { CollectParams, DropHintsParams } from '../../actors/handoff.machine.js';
import type { HandoffItem } from '../../actors/handoff.events.js';
import type { SendParams } from '../../actors/replica.machine.js';
import { applySync } from '../core/replica-write.js';
import { encode } from '../protocol/codec.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Hint, Store } from '../ports/store.js';
import { DeliveryTally } from './hint-summary.js';

export interface HandoffBatch {
  from: string;
  reqId: string;
  items: HandoffItem[];
}

export interface HandoffIo {
  /** Hints delivered (and dropped) so far, with the delivery rate. */
  deliveries: DeliveryTally;
  /** The next batch of hints for one reachable target (the machine's collectBatch action). */
  collectBatch(args: { self: AnyActorRef }, p: CollectParams): void;
  /** Removes the hints of a batch the target acknowledged. */
  clearHints(args: { self: AnyActorRef }, p: { hints: Hint[]; bytes: number }): void;
  /** Removes the hints for departed members (their objects stay). */
  dropHints(args: { self: AnyActorRef }, p: DropHintsParams): void;
  /** Merges a peer's batch into the store and, once it has committed, acknowledges it with `ackKind`. */
  applyBatch(p: HandoffBatch, ackKind?: string, onCommitted?: () => void): void;
}

export function createHandoffIo(deps: { nodeId: string; store: Store; clock: Clock; log: Log; send: (p: SendParams) => void }): HandoffIo {
  const { nodeId, store, clock, log, send } = deps;
  const deliveries = new DeliveryTally();

  const collectBatch = ({ self }: { self: AnyActorRef }, p: CollectParams) => {
    const down = new Set(p.down);
    let target: string | null = null;
    const hints: Hint[] = [];
    const items: HandoffItem[] = [];
    let bytes = 0;
    for (const h of store.hints()) {
      if (target === null) {
        if (h.target === nodeId || down.has(h.target)) continue;
        target = h.target;
      }
      if (h.target !== target) continue;
      const state = store.get(h.partition, h.key) ?? [];
      const size = encode(state).length;
      if (items.length > 0 && (items.length >= p.itemsMax || bytes + size > p.bytesMax)) break;
      hints.push(h);
      items.push({ p: h.partition, key: h.key, state });
      bytes += size;
    }
    self.send({ type: 'handoff.collected', target, hints, items, bytes });
  };

  const clearHints = ({ self }: { self: AnyActorRef }, p: { hints: Hint[]; bytes: number }) => {
    Promise.all(p.hints.map((h) => store.removeHint(h))).then(
      (removed) => {
        const count = removed.filter(Boolean).length;
        deliveries.add(clock.now(), p.hints.length, p.bytes);
        self.send({ type: 'handoff.cleared', removed: count });
      },
      (err: unknown) => {
        log.error('could not remove delivered hints', { err });
        self.send({ type: 'handoff.cleared', removed: 0 });
      },
    );
  };

  // A departed member's hints can never be delivered (the handoff machine decides to drop them): the
  // hint entries go, in one group commit, and their objects stay for transfer and anti-entropy.
  const dropHints = ({ self }: { self: AnyActorRef }, p: DropHintsParams) => {
    const targets = new Set(p.targets);
    const drop: Hint[] = [];
    let more = false;
    try {
      if (store.hintCount() > 0) {
        for (const h of store.hints()) {
          if (!targets.has(h.target)) continue;
          if (drop.length >= p.itemsMax) {
            more = true;
            break;
          }
          drop.push(h);
        }
      }
    } catch (err) {
      // The machine waits for an answer: it gets one, and the next tick tries again.
      log.error('could not read hints to drop', { err });
      drop.length = 0;
      more = false;
    }
    if (drop.length === 0) {
      // After the machine's transition, as a new event.
      queueMicrotask(() => self.send({ type: 'handoff.dropped', removed: 0, more: false }));
      return;
    }
    Promise.all(drop.map((h) => store.removeHint(h))).then(
      (removed) => {
        const count = removed.filter(Boolean).length;
        deliveries.dropped += count;
        log.info('dropped hints for departed members', { targets: [...new Set(drop.map((h) => h.target))], hints: count });
        self.send({ type: 'handoff.dropped', removed: count, more });
      },
      (err: unknown) => {
        // The hints stay; the next tick tries again.
        log.error('could not drop hints for departed members', { err });
        self.send({ type: 'handoff.dropped', removed: 0, more: false });
      },
    );
  };

  // Hinted handoff and ownership transfer deliver objects the same way: synced, then acked.
  const applyBatch = (p: HandoffBatch, ackKind = 'handoff.batch.ok', onCommitted?: () => void) => {
    Promise.all(p.items.map((item) => store.update(item.p, item.key, (current) => applySync(current, item.state)))).then(
      () => {
        onCommitted?.();
        send({ to: p.from, kind: ackKind, reqId: p.reqId, body: {} });
      },
      // No answer: the sender keeps its hints and tries again later.
      (err: unknown) => log.error('could not apply a handoff batch', { from: p.from, err }),
    );
  };

  return { deliveries, collectBatch, clearHints, dropHints, applyBatch };
}
