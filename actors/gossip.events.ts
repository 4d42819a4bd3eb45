/** Events of the gossip machine. `now` is stamped by the runtime from the Clock port. */
import type { Heartbeats } from '../src/core/membership.js';

export type GossipEvent =
  /** A gossip round is due. */
  | { type: 'gossip.tick'; now: number }
  /** A peer's view (push), to be merged and answered with ours (pull). */
  | { type: 'gossip.digest'; from: string; reqId: string; body: { heartbeats: Heartbeats }; now: number }
  /** A peer's answer to our digest. */
  | { type: 'gossip.digest.ok'; from: string; reqId: string; body: { heartbeats: Heartbeats }; now: number };
