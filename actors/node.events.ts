/**
 * Events of the node machine. The runtime's router turns every validated envelope into one of these;
 * client requests arrive with their context already decoded and their options checked for type.
 */
import type { ClusterState } from '../src/core/cluster-state.js';
import type { Ring } from '../src/core/ring.js';
import type { AntiEntropyEvent } from './anti-entropy.events.js';
import type { ClientLocalReadEvent, ClientReadEvent, ClientWriteEvent } from './client.events.js';

export type { ClientLocalReadEvent, ClientReadEvent, ClientWriteEvent } from './client.events.js';
import type { CoreEvent } from './coordinator.events.js';
import type { GossipEvent } from './gossip.events.js';
import type { HandoffEvent } from './handoff.events.js';
import type { ReplicaWriteItem } from './replica.core.js';
import type { ReplicaGetBody } from '../src/protocol/messages.js';
import type { TransferEvent } from './transfer.events.js';

/** A coordinator asks this node's replica for its state of a key (a coordinated get, read repair's first step). */
export type ReplicaReadEvent = { type: 'replica.get'; from: string; reqId: string; body: ReplicaGetBody };

export type NodeEvent =
  | ClientWriteEvent
  | ClientReadEvent
  | ClientLocalReadEvent
  | { type: 'api.status'; from: string; reqId: string; replyTo: string }
  /** Replica requests from coordinators: writes for the replica actor's turn batch, reads answered by the runtime. */
  | ReplicaWriteItem
  | ReplicaReadEvent
  /** Replica answers: for the coordinator child, in the turn's batch. */
  | Exclude<CoreEvent, { type: 'deadline' | 'repairWaitOver' | 'fallbackWait' }>
  | GossipEvent
  | Extract<HandoffEvent, { type: 'handoff.tick' | 'handoff.batch' | 'handoff.batch.ok' }>
  | { type: 'api.hints'; from: string; reqId: string; replyTo: string }
  /** `ringkv backup`: a copy of this node's store into `dir` (checked by the router: a non-empty name). */
  | { type: 'api.backup'; from: string; reqId: string; replyTo: string; dir: string }
  /** Ownership transfer: its schedule, peers' batches and their answers, and `ringkv transfers`. */
  | Extract<TransferEvent, { type: 'transfer.tick' | 'handoff.transfer' | 'handoff.transfer.ok' | 'handoff.transfer.busy' | 'handoff.transfer.done' | 'api.transfers' }>
  /**
   * From the transfer child: for the current ring this node has nothing left to hand over (every
   * partition it holds but no longer replicates was confirmed by its primaries and dropped; objects
   * still waiting for hinted handoff excepted). Told again after each ring change once it holds.
   */
  | { type: 'transfer.idle'; ring: Ring }
  | Exclude<AntiEntropyEvent, { type: 'xstate.done.actor.*' }>
  /** The liveness view changed (the gossip child's failure detector). */
  | { type: 'member.up' | 'member.down'; nodeId: string }
  /**
   * A newer committed ring took effect (membership, issue 4): the node routes by it from now on, and
   * its children that depend on ownership (ownership transfer, anti-entropy) are told.
   */
  | { type: 'ring.changed'; ring: Ring }
  /** The gossiped cluster state changed (gossip child): the node keeps it for status and saves it. */
  | { type: 'cluster.changed'; cluster: ClusterState }
  /**
   * This node has left the cluster (handed everything over) or was removed: the process may end.
   * handOver: it left (not removed), so it ends only once it holds nothing more to hand over.
   */
  | { type: 'node.exit'; reason: string; handOver: boolean }
  | { type: 'xstate.done.actor.*'; actorId: string };
