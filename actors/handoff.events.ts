/** Events of the handoff machine: its schedule, liveness, the store's answers and peers' messages. */
import type { ClusterState } from '../src/core/cluster-state.js';
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
  /** The store's answer to dropHints: hints of departed members removed; `more` when some are left. */
  | { type: 'handoff.dropped'; removed: number; more: boolean }
  /** The gossiped cluster state changed (forwarded by the node): who has departed. */
  | { type: 'cluster.changed'; cluster: ClusterState }
  /** A batch of hinted writes from a peer: sync each and answer after commit. */
  | { type: 'handoff.batch'; from: string; reqId: string; body: { items: HandoffItem[] } }
  /** A peer committed the batch we sent. */
  | { type: 'handoff.batch.ok'; from: string; reqId: string; body: Record<string, never> }
  /** The time allowed for one delivery is over. */
  | { type: 'attemptTimedOut' }
  /** The pause that keeps delivery under its byte rate is over. */
  | { type: 'paced' };
