/**
 * Events of ownership transfer: the transfer machine (one per node) and its partition-transfer
 * children (one per partition being handed over). Schedule and ring changes come from the node, the
 * store's answers from the runtime, batches and their answers from peers.
 */
import type { Ring } from '../src/core/ring.js';
import type { HandoffItem } from './handoff.events.js';

/** One partition the scan found to hand over: objects this node holds without a pending hint. */
export interface FoundPartition {
  p: number;
  objects: number;
}

/** A batch of one partition's objects, sent to every primary of the partition. */
export interface TransferBatchBody {
  p: number;
  items: HandoffItem[];
}

/** Events both the transfer machine and its children take. */
export type TransferPeerAnswer =
  /** A primary committed (synced) every object of the batch. */
  | { type: 'handoff.transfer.ok'; from: string; reqId: string; body: Record<string, never> }
  /** A primary refused the batch: it already takes its limit of inbound transfers. */
  | { type: 'handoff.transfer.busy'; from: string; reqId: string; body: { message: string } };

export type PartitionTransferEvent =
  | TransferPeerAnswer
  /** The store's answer to collectTransfer: the next objects after the cursor (none: the pass is over). */
  | { type: 'transfer.collected'; id: string; items: HandoffItem[]; bytes: number }
  /** The store's answer to dropSent: how many objects were deleted and how many had changed (or gained a hint) and stay. */
  | { type: 'transfer.dropped'; id: string; dropped: number; kept: number }
  | { type: 'member.down'; nodeId: string }
  /** The time allowed for the targets to acknowledge a batch is over. */
  | { type: 'attemptTimedOut' }
  /** The pause that keeps the transfer under its byte rate is over. */
  | { type: 'paced' };

export type TransferEvent =
  | TransferPeerAnswer
  /** The runtime's schedule (each gossip round): time to look for partitions to hand over. */
  | { type: 'transfer.tick'; now: number }
  /**
   * The store's answer to findWork, for the scan with that number. `hints`: hints this node still
   * holds (hinted handoff owns those objects, so transfer skips them); while there are any the node
   * has not handed everything over, and is not idle.
   */
  | { type: 'transfer.found'; scan: number; partitions: FoundPartition[]; hints?: number }
  | Extract<PartitionTransferEvent, { type: 'transfer.collected' | 'transfer.dropped' }>
  | { type: 'member.up' | 'member.down'; nodeId: string }
  /** A newer committed ring took effect. */
  | { type: 'ring.changed'; ring: Ring }
  /** A batch of a partition this node (now) replicates, from its old holder; `now` is stamped by the router. */
  | { type: 'handoff.transfer'; from: string; reqId: string; body: TransferBatchBody; now: number }
  /** The sender finished handing p over: its inbound slot here is free. */
  | { type: 'handoff.transfer.done'; from: string; reqId: string; body: { p: number } }
  /** `ringkv transfers`: what this node is handing over. */
  | { type: 'api.transfers'; from: string; reqId: string; replyTo: string }
  | { type: 'xstate.done.actor.*'; actorId: string; output?: unknown };
