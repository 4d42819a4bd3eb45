/**
 * What `ringkv hints` shows for one node: pending hints per target (count, bytes of the objects
 * they deliver, oldest age) and the recent delivery rate. Computed on request from the store; the
 * delivery tally keeps only a bounded window of recent deliveries, and counts the hints dropped
 * because their target departed (they can never be delivered).
 */
import { encode } from '../protocol/codec.js';
import type { ApiHintsOk, HintTargetSummary } from '../protocol/messages.js';
import type { Store } from '../ports/store.js';

/** Recent deliveries remembered for the rate, at most. */
const tallyEntriesMax = 64;
/** The window the delivery rate is measured over. */
const rateWindowMs = 10_000;

export class DeliveryTally {
  private readonly entries: { at: number; hints: number; bytes: number }[] = [];
  total = 0;
  /** Bytes of the objects delivered since start: a counter, so Prometheus can take its rate. */
  totalBytes = 0;
  dropped = 0;

  add(at: number, hints: number, bytes: number): void {
    this.total += hints;
    this.totalBytes += bytes;
    this.entries.push({ at, hints, bytes });
    if (this.entries.length > tallyEntriesMax) this.entries.shift();
  }

  rate(now: number): { hints: number; bytes: number } {
    const recent = this.entries.filter((e) => now - e.at <= rateWindowMs);
    const seconds = rateWindowMs / 1000;
    return {
      hints: recent.reduce((a, e) => a + e.hints, 0) / seconds,
      bytes: recent.reduce((a, e) => a + e.bytes, 0) / seconds,
    };
  }
}

export function hintSummary(nodeId: string, store: Store, now: number, tally: DeliveryTally): ApiHintsOk {
  const byTarget = new Map<string, HintTargetSummary>();
  for (const h of store.hints()) {
    const t = byTarget.get(h.target) ?? { target: h.target, count: 0, bytes: 0, oldestAgeMs: 0 };
    t.count++;
    const state = store.get(h.partition, h.key);
    t.bytes += state ? encode(state).length : 0;
    t.oldestAgeMs = Math.max(t.oldestAgeMs, now - h.since);
    byTarget.set(h.target, t);
  }
  const rate = tally.rate(now);
  return {
    nodeId,
    targets: [...byTarget.values()].sort((a, b) => a.target.localeCompare(b.target)),
    delivered: tally.total,
    deliveredBytes: tally.totalBytes,
    deliveredPerSec: rate.hints,
    deliveredBytesPerSec: rate.bytes,
    dropped: tally.dropped,
  };
}
