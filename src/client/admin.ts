/**
 * Cluster administration over NATS (`ringkv cluster ...`): Riak's staged membership changes. Stage
 * joins, leaves and force-removes, look at the plan (each partition move, the shares before and
 * after), then commit it or clear it. Only commit changes the ring; every node learns the new ring
 * by gossip.
 *
 *   const admin = await ClusterAdmin.connect({ servers, cluster: 'ringkv' });
 *   await admin.join('n4');                 // n4 was started with --seeds and is known as joining
 *   const { plan } = await admin.plan();
 *   await admin.commit();
 *   const { targets } = await admin.hints({ via: 'n2' });   // one node's pending hints
 *
 * Besides the staged changes: one node's hints, transfers, anti-entropy counters (or a pause and
 * resume of its exchanges), and a backup of its store.
 *
 * Requests go to any node (the state is the same everywhere once gossip has spread it), hedged as
 * the client's reads are, or to one node with `via` (UNKNOWN_NODE when the cluster has no such
 * member), through the same request machinery as the client (request-session.ts), on the admin subjects (src/protocol/subjects.ts); status is a client operation and goes
 * on the client subjects. Refusals come back as RingkvError with a code: NO_CHANGES, UNKNOWN_NODE,
 * TOO_FEW_NODES, ALREADY_MEMBER, NOT_READY, BAD_REQUEST, and NATS_PERMISSION when the NATS user may
 * not publish on the admin subjects.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsAuthSettings } from '../adapters/nats/connection-options.js';
import type { AaeOp, ApiAaeOk } from '../protocol/aae-messages.js';
import type { ApiBackupOk, ApiClusterOk, ApiHintsOk, ApiStatusOk, ApiTransfersOk } from '../protocol/messages.js';
import { aaeOperation, backupOperation, clusterOperation, hintsOperation, transfersOperation, type NodeOperationOptions } from './node-operations.js';
import { RequestSession } from './request-session.js';

export type { NodeOperationOptions } from './node-operations.js';

/** The authentication settings default to the nats CLI's environment variables, as for the client. */
export interface AdminOptions extends NatsAuthSettings {
  servers?: string;
  cluster?: string;
  /** The cluster id to accept answers from (default: RINGKV_CLUSTER_ID, else the first answer's). */
  clusterId?: string;
  /** How long a node has to answer (default 5000 ms). */
  timeoutMs?: number;
  /** Reuse an existing NATS connection; close() then leaves it open. */
  connection?: NatsConnection;
}

export class ClusterAdmin {
  private constructor(private readonly session: RequestSession) {}

  static async connect(opts: AdminOptions = {}): Promise<ClusterAdmin> {
    // The client's connection (its errors: NO_CLUSTER, NATS_AUTH, no secret shown) and its hedged
    // requests: a paused node costs a hedge delay, not the deadline.
    return new ClusterAdmin(await RequestSession.open({ ...opts, timeoutMs: opts.timeoutMs ?? 5_000 }));
  }

  /** Stages the join of `node` (a node started with --seeds that the cluster knows as joining). */
  join(node: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'join', node, opts.via);
  }

  /** Stages the leave of `node` (with ownership transfer); without a node, of the node that answers. */
  leave(node?: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'leave', node, opts.via ?? node);
  }

  /** Stages the removal of `node` without handoff (for a node that is gone for good). */
  forceRemove(node: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'force-remove', node, opts.via);
  }

  plan(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'plan', undefined, opts.via);
  }

  commit(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'commit', undefined, opts.via);
  }

  clear(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return clusterOperation(this.session, 'clear', undefined, opts.via);
  }

  /** One node's status (its view of the members, the ring version, when it started). */
  status(opts: { via?: string; timeoutMs?: number } = {}): Promise<ApiStatusOk> {
    return this.session.status(opts);
  }

  /** One node's pending hints by target and its delivery rate (`via` names the node). */
  hints(opts: NodeOperationOptions): Promise<ApiHintsOk> {
    return hintsOperation(this.session, opts);
  }

  /** The partitions one node is handing over (ownership transfer), with progress (`via` names the node). */
  transfers(opts: NodeOperationOptions): Promise<ApiTransfersOk> {
    return transfersOperation(this.session, opts);
  }

  /** One node's anti-entropy counters per partition; pause or resume its exchanges (`via` names the node). */
  aae(op: AaeOp, opts: NodeOperationOptions): Promise<ApiAaeOk> {
    return aaeOperation(this.session, op, opts);
  }

  /**
   * A consistent, compacted copy of one node's store, written by that node (`via`) into `dir` inside
   * its backup directory (src/server/backup.ts). Answers once the copy is complete.
   */
  backup(dir: string, opts: NodeOperationOptions): Promise<ApiBackupOk> {
    return backupOperation(this.session, dir, opts);
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
