/** Events of the handoff machine: its schedule, liveness, the store's answers and peers' messages. */
import type { DvvSet } from '../src/core/dvv.js';
import type { Hint } from '../src/ports/store.js';

export interface HandoffItem {
  p: number;
  key: Uint8Array;
  state: DvvSet;
}

export type HandoffEvent =
  /** Time to look for hints to deliver. */
  | { type: 'handoff.tick' }
  | { type: 'member.up' | 'member.down'; nodeId: string }
  /** The store's answer to collectBatch: the hints of one target that is up, with their states. */
  | { type: 'handoff.collected'; target: string | null; hints: Hint[]; items: HandoffItem[]; bytes: number }
  /** The delivered hints have been removed from the store. */
  | { type: 'handoff.cleared'; removed: number }
  /** A batch of hinted writes from a peer: sync each and answer after commit. */
  | { type: 'handoff.batch'; from: string; reqId: string; body: { items: HandoffItem[] } }
  /** A peer committed the batch we sent. */
  | { type: 'handoff.batch.ok'; from: string; reqId: string; body: Record<string, never> }
  /** The time allowed for one delivery is over. */
  | { type: 'attemptTimedOut' }
  /** The pause that keeps delivery under its byte rate is over. */
  | { type: 'paced' };
