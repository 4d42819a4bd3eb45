/** Events of the gossip machine. `now` is stamped by the runtime from the Clock port. */
import type { Ring } from '../src/core/ring.js';
import type { ClusterState } from '../src/core/cluster-state.js';
import type { Heartbeats } from '../src/core/membership.js';
import type { ClusterClaimRequest, ClusterOp } from '../src/protocol/messages.js';

/** A digest: the sender's heartbeats, and its cluster state (members, committed ring, staged plan). */
export interface GossipBody {
  heartbeats: Heartbeats;
  /** Absent from a node that sends heartbeats only (older digests in tests). */
  cluster?: ClusterState;
}

/** A request forwarded to the claimant: the forwarder's view, and the client's request. */
export interface GossipClaimBody extends GossipBody {
  request: ClusterClaimRequest;
}

export type GossipEvent =
  /** A gossip round is due. */
  | { type: 'gossip.tick'; now: number }
  /** A peer's view (push), to be merged and answered with ours (pull). */
  | { type: 'gossip.digest'; from: string; reqId: string; body: GossipBody; now: number }
  /** A peer's answer to our digest. */
  | { type: 'gossip.digest.ok'; from: string; reqId: string; body: GossipBody; now: number }
  /** An api.cluster request forwarded by another member to this node, the claimant it names. */
  | { type: 'gossip.claim'; from: string; reqId: string; body: GossipClaimBody; now: number }
  /**
   * `ringkv cluster ...`: an admin request, answered by this machine (it holds the cluster state), or
   * forwarded to the claimant.
   */
  | { type: 'api.cluster'; from: string; reqId: string; replyTo: string; op: ClusterOp; node?: string }
  /**
   * Ownership transfer has nothing left to hand over for `ring`, the ring it scanned under (a leaving
   * node may go). It counts only for the committed ring: a report computed under the old ring can
   * arrive after the new one was adopted.
   */
  | { type: 'transfer.idle'; ring: Ring };
