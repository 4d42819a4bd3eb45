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
 *
 * Requests go to any node (the state is the same everywhere once gossip has spread it), hedged as
 * the client's reads are, or to one node with `via` (UNKNOWN_NODE when the cluster has no such
 * member), on the admin subjects (src/protocol/subjects.ts); status is a client operation and goes
 * on the client subjects. Refusals come back as RingkvError with a code: NO_CHANGES, UNKNOWN_NODE,
 * TOO_FEW_NODES, ALREADY_MEMBER, NOT_READY, BAD_REQUEST, and NATS_PERMISSION when the NATS user may
 * not publish on the admin subjects.
 */
import type { ApiClusterOk, ApiStatusOk, ClusterOp } from '../protocol/messages.js';
import { RingkvClient } from './client.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsAuthSettings } from '../adapters/nats/connection-options.js';

/** The authentication settings default to the nats CLI's environment variables, as for the client. */
export interface AdminOptions extends NatsAuthSettings {
  servers?: string;
  cluster?: string;
  /** How long a node has to answer (default 5000 ms). */
  timeoutMs?: number;
  /** Reuse an existing NATS connection; close() then leaves it open. */
  connection?: NatsConnection;
}

/** Changes that are not safe to send twice: they go to one node that has just answered. */
const changingOps = new Set<ClusterOp>(['join', 'leave', 'force-remove', 'commit', 'clear']);

export class ClusterAdmin {
  private constructor(private readonly client: RingkvClient) {}

  static async connect(opts: AdminOptions = {}): Promise<ClusterAdmin> {
    // The client's connection (its errors: NO_CLUSTER, NATS_AUTH, no secret shown) and its hedged
    // requests: a paused node costs a hedge delay, not the deadline.
    return new ClusterAdmin(await RingkvClient.connect({ ...opts, timeoutMs: opts.timeoutMs ?? 5_000 }));
  }

  /** Stages the join of `node` (a node started with --seeds that the cluster knows as joining). */
  join(node: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('join', node, opts.via);
  }

  /** Stages the leave of `node` (with ownership transfer); without a node, of the node that answers. */
  leave(node?: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('leave', node, opts.via ?? node);
  }

  /** Stages the removal of `node` without handoff (for a node that is gone for good). */
  forceRemove(node: string, opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('force-remove', node, opts.via);
  }

  plan(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('plan', undefined, opts.via);
  }

  commit(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('commit', undefined, opts.via);
  }

  clear(opts: { via?: string } = {}): Promise<ApiClusterOk> {
    return this.op('clear', undefined, opts.via);
  }

  /** One node's status (its view of the members, the ring version, when it started). */
  async status(opts: { via?: string } = {}): Promise<ApiStatusOk> {
    return this.client.status(opts);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /**
   * A change (join, leave, force-remove, commit, clear) goes to one node and is never hedged: a
   * commit sent twice could make two rings. Without `via` it goes to the node that first answers a
   * hedged status, so a paused node is not chosen. A plan is a read: hedged like status.
   */
  private async op(op: ClusterOp, node: string | undefined, via: string | undefined): Promise<ApiClusterOk> {
    const body = node === undefined ? { op } : { op, node };
    if (via === undefined && changingOps.has(op)) via = (await this.status()).nodeId;
    return (await this.client.operation('cluster', body, { via })) as ApiClusterOk;
  }
}
