/**
 * Where a leaving node's departure stands, for its api.status answer (issue 27, item 6): how long it
 * has known its leave is committed, which step it is in (handing partitions over, then the two
 * acknowledged steps of src/core/departure.ts), which members it waits for, and which partitions it
 * still has to hand over, to whom, and which of those targets it judges down. `ringkv status` asks
 * every member and shows this for each one that is leaving, so an operator sees a change that is
 * not finishing and what holds it. Read-only: it looks at the actors' snapshots.
 */
import type { AnyActorRef } from 'xstate';
import { type GossipContext, departureStep, departureWaiting } from '../../actors/gossip.machine.js';
import type { TransferContext } from '../../actors/transfer.machine.js';
import { preferenceList } from '../core/ring.js';
import type { DepartureStatus } from '../protocol/messages.js';

/** Partitions listed in one answer, at most (the rest are counted). */
export const departurePartitionsMax = 64;

interface ChildRef {
  getSnapshot(): { value?: unknown; context: unknown };
}

/** The departure of the node whose root actor is `root`, at `now` (the gossip ticks' clock), or undefined when it is not leaving. */
export function departureStatusOf(root: AnyActorRef | undefined, hints: number, now: number): DepartureStatus | undefined {
  const children = (root?.getSnapshot() as { children?: Record<string, ChildRef | undefined> } | undefined)?.children;
  const gossip = children?.gossip?.getSnapshot().context as GossipContext | undefined;
  if (!gossip) return undefined;
  const status = gossip.cluster.members[gossip.nodeId]?.status;
  if (status !== 'leaving' && status !== 'exiting') return undefined;
  const step = departureStep(gossip) ?? 'transfer';
  const transfer = children?.transfer?.getSnapshot().context as TransferContext | undefined;
  const partitions: DepartureStatus['partitions'] = [];
  let found = 0;
  if (transfer) {
    const rows: { p: number; state: string }[] = [];
    const transferChildren = (children?.transfer?.getSnapshot() as { children?: Record<string, ChildRef | undefined> } | undefined)?.children ?? {};
    for (const id of transfer.running) {
      const value = transferChildren[id]?.getSnapshot().value;
      rows.push({ p: Number(id.slice(id.indexOf('-') + 1, id.lastIndexOf('-'))), state: typeof value === 'string' ? value : 'running' });
    }
    for (const w of transfer.waiting) {
      const backoff = transfer.backoff[w.p];
      rows.push({ p: w.p, state: backoff && backoff.untilTick > transfer.ticks ? `refused ${backoff.refusals} time(s), tried again in ${backoff.untilTick - transfer.ticks} round(s)` : 'waiting' });
    }
    found = rows.length;
    for (const r of rows.slice(0, departurePartitionsMax)) {
      const to = preferenceList(transfer.ring, r.p, transfer.n);
      partitions.push({ p: r.p, to, state: r.state, down: to.filter((t) => transfer.down[t]) });
    }
  }
  return {
    forMs: gossip.leavingSince === null ? null : Math.max(0, now - gossip.leavingSince),
    step,
    waitsFor: step === 'transfer' ? [] : departureWaiting(gossip),
    hints,
    partitions,
    partitionsMore: Math.max(0, found - partitions.length),
  };
}
