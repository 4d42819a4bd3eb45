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
 * Requests go to the admin queue group (any node answers: the state is the same everywhere once
 * gossip has spread it), or to one node with `via`, on the admin subjects (src/protocol/subjects.ts);
 * status is a client operation and goes on the client subjects. Refusals come back as RingkvError
 * with a code: NO_CHANGES, UNKNOWN_NODE, TOO_FEW_NODES, ALREADY_MEMBER, NOT_READY, BAD_REQUEST, and
 * NATS_PERMISSION when the NATS user may not publish on the admin subjects.
 */
import { connect, type NatsConnection, RequestError, TimeoutError } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { isErrorCode, type ErrorBody } from '../protocol/errors.js';
import type { ApiClusterOk, ApiStatusOk, ClusterOp } from '../protocol/messages.js';
import { adminSubject, apiSubject, nodeSubject } from '../protocol/subjects.js';
import { RingkvError } from './errors.js';
import { mergeNatsSettings, natsConnectionOptions, type NatsAuthSettings } from '../adapters/nats/connection-options.js';
import { natsConnectFailure, permissionViolation } from './connect-failure.js';

/** The authentication settings default to the nats CLI's environment variables, as for the client. */
export interface AdminOptions extends NatsAuthSettings {
  servers?: string;
  cluster?: string;
  /** How long a node has to answer (default 5000 ms). */
  timeoutMs?: number;
  /** Reuse an existing NATS connection; close() then leaves it open. */
  connection?: NatsConnection;
}

export class ClusterAdmin {
  private seq = 0;
  private readonly name = `admin-${randomBytes(4).toString('hex')}`;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly timeoutMs: number,
    private readonly ownsConnection: boolean,
  ) {}

  static async connect(opts: AdminOptions = {}): Promise<ClusterAdmin> {
    const settings = mergeNatsSettings(opts, process.env);
    let nc = opts.connection;
    if (!nc) {
      try {
        nc = await connect({ ...natsConnectionOptions(settings), name: 'ringkv-admin', timeout: 3_000 });
      } catch (err) {
        // The URL and the error may carry a password or token: neither is ever shown.
        throw natsConnectFailure(err, settings);
      }
    }
    return new ClusterAdmin(nc, opts.cluster ?? 'ringkv', opts.timeoutMs ?? 5_000, !opts.connection);
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
    return (await this.request('status', {}, opts.via)) as ApiStatusOk;
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.nc.close();
  }

  private async op(op: ClusterOp, node: string | undefined, via: string | undefined): Promise<ApiClusterOk> {
    return (await this.request('cluster', node === undefined ? { op } : { op, node }, via)) as ApiClusterOk;
  }

  private async request(op: string, body: Record<string, unknown>, via: string | undefined): Promise<unknown> {
    const reqId = String(++this.seq);
    const bytes = encodeEnvelope({ v: protocolVersion, kind: `api.${op}`, from: this.name, to: via ?? '', reqId, body });
    let reply;
    try {
      const role = op === 'status' ? 'api' : 'admin';
      const subject = via !== undefined ? nodeSubject(this.cluster, via, role) : role === 'api' ? apiSubject(this.cluster, op) : adminSubject(this.cluster, op);
      reply = await this.nc.request(subject, bytes, { timeout: this.timeoutMs });
    } catch (err) {
      const denied = permissionViolation(err);
      if (denied) throw new RingkvError('NATS_PERMISSION', `NATS does not let this user ${denied.operation} to ${denied.subject}: admin operations need the admin permissions`);
      if (err instanceof RequestError && err.isNoResponders()) {
        throw new RingkvError('NO_CLUSTER', via ? `node ${via} is not serving` : 'no ringkv node is serving this cluster');
      }
      if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
        throw new RingkvError('TIMEOUT', `no answer within ${this.timeoutMs} ms`);
      }
      throw new RingkvError('NO_CLUSTER', `the request could not be sent: ${(err as Error).message}`);
    }
    const env = decodeEnvelope(reply.data);
    if (typeof env === 'string') throw new RingkvError('INTERNAL', `the cluster answered with a bad message: ${env}`);
    if (env.kind === 'error') {
      const e = env.body as ErrorBody;
      throw new RingkvError(isErrorCode(e.code) ? e.code : 'INTERNAL', String(e.message));
    }
    if (env.kind !== `api.${op}.ok`) throw new RingkvError('INTERNAL', `unexpected answer kind "${env.kind}" to api.${op}`);
    return env.body;
  }
}
