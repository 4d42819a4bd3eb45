/**
 * The ringkv client library. It talks to the cluster over NATS only: each operation is one request
 * to the API queue group, answered by the coordinating node (or by a node that passed it on).
 *
 *   const client = await RingkvClient.connect({ servers: 'nats://127.0.0.1:4222' });
 *   const { values, context } = await client.get('cart:1');
 *   await client.put('cart:1', bytes, { context });   // supersedes exactly what was read
 *
 * Values are bytes; getString/putString and getJson/putJson are helpers on top. The context is
 * opaque: pass back what a read returned, and the write supersedes exactly the siblings that read
 * saw. A write without a context adds a sibling.
 */
import { connect, type NatsConnection, RequestError, TimeoutError } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { isErrorCode, type ErrorBody } from '../protocol/errors.js';
import type { ApiGetOk, ApiHintsOk, ApiPutOk, ApiStatusOk, ApiTransfersOk, RequestOptions } from '../protocol/messages.js';
import type { AaeOp, ApiAaeOk } from '../protocol/aae-messages.js';
import { apiSubject, nodeSubject } from '../protocol/subjects.js';
import { RingkvError } from './errors.js';

export { RingkvError } from './errors.js';

export interface ClientOptions {
  /** NATS server URL(s), comma separated. Default: NATS_URL, else nats://127.0.0.1:4222. */
  servers?: string;
  /** The cluster name: the subject prefix of its API (default "ringkv"). */
  cluster?: string;
  /** Default request deadline in ms, used by the cluster too (default 5000). */
  timeoutMs?: number;
  /** Reuse an existing NATS connection instead of opening one; close() then leaves it open. */
  connection?: NatsConnection;
}

export interface ReadOptions extends RequestOptions {
  /** Send the request to this node rather than to whichever node the API queue group picks. */
  via?: string;
}

export interface WriteOptions extends ReadOptions {
  /** The context of an earlier read of this key. */
  context?: Uint8Array;
}

export interface GetResult {
  found: boolean;
  /** Every sibling: one value, or several when writes were concurrent. */
  values: Uint8Array[];
  /** Pass to the next put of this key to supersede these siblings. */
  context: Uint8Array;
}

export const clientTimeoutMsDefault = 5_000;
/** The client waits a little past the cluster's deadline so that a TIMEOUT answer can arrive. */
const replyGraceMs = 500;

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export function keyBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? text.encode(key) : key;
}

export class RingkvClient {
  private seq = 0;
  private readonly name = `client-${randomBytes(4).toString('hex')}`;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly timeoutMs: number,
    private readonly ownsConnection: boolean,
  ) {}

  static async connect(opts: ClientOptions = {}): Promise<RingkvClient> {
    const servers = opts.servers ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
    let nc = opts.connection;
    if (!nc) {
      try {
        nc = await connect({ servers: servers.split(','), name: 'ringkv-client', timeout: 3_000 });
      } catch (err) {
        throw new RingkvError('NO_CLUSTER', `cannot reach NATS at ${servers}: ${(err as Error).message}`);
      }
    }
    return new RingkvClient(nc, opts.cluster ?? 'ringkv', opts.timeoutMs ?? clientTimeoutMsDefault, !opts.connection);
  }

  async get(key: string | Uint8Array, opts: ReadOptions = {}): Promise<GetResult> {
    return (await this.request('get', { key: keyBytes(key), ...opts })) as ApiGetOk;
  }

  async put(key: string | Uint8Array, value: Uint8Array, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    return (await this.request('put', { key: keyBytes(key), value, ...opts })) as ApiPutOk;
  }

  /** Deletes a key: a tombstone that supersedes what the context saw (everything, without one). */
  async delete(key: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
    let context = opts.context;
    // Without a context a delete would only add a tombstone beside the live values; read first so
    // that it supersedes what is there now, as a user of `del` expects.
    if (context === undefined) context = (await this.get(key, opts)).context;
    await this.request('del', { key: keyBytes(key), ...opts, context });
  }

  async getString(key: string | Uint8Array, opts: ReadOptions = {}): Promise<{ found: boolean; values: string[]; context: Uint8Array }> {
    const r = await this.get(key, opts);
    return { found: r.found, values: r.values.map((v) => untext.decode(v)), context: r.context };
  }

  async putString(key: string | Uint8Array, value: string, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    return this.put(key, text.encode(value), opts);
  }

  async getJson<T = unknown>(key: string | Uint8Array, opts: ReadOptions = {}): Promise<{ found: boolean; values: T[]; context: Uint8Array }> {
    const r = await this.getString(key, opts);
    return { found: r.found, values: r.values.map((v) => JSON.parse(v) as T), context: r.context };
  }

  async putJson(key: string | Uint8Array, value: unknown, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    return this.putString(key, JSON.stringify(value), opts);
  }

  /**
   * Read-merge-write: reads every sibling, lets `resolve` merge them into one value (and apply the
   * caller's change), and writes that back with the read's context, so it supersedes exactly what
   * was read. A write that raced with this one comes back as a sibling on the next read; nothing is
   * lost. `resolve` gets an empty array when the key does not exist.
   */
  async merge(key: string | Uint8Array, resolve: (siblings: Uint8Array[]) => Uint8Array, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    const read = await this.get(key, opts);
    return this.put(key, resolve(read.values), { ...opts, context: read.context });
  }

  /** merge() for JSON values. */
  async mergeJson<T>(key: string | Uint8Array, resolve: (siblings: T[]) => T, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    return this.merge(key, (siblings) => text.encode(JSON.stringify(resolve(siblings.map((v) => JSON.parse(untext.decode(v)) as T)))), opts);
  }

  /** The cluster's members and partition ownership, as the answering node sees them. */
  async status(opts: { via?: string } = {}): Promise<ApiStatusOk> {
    return (await this.request('status', { ...opts })) as ApiStatusOk;
  }

  /** One node's anti-entropy counters per partition; pause or resume its exchanges (`via` names the node). */
  async aae(op: AaeOp, opts: { via: string; timeoutMs?: number }): Promise<ApiAaeOk> {
    return (await this.request('aae', { op, ...opts })) as ApiAaeOk;
  }

  /** One node's pending hints by target and its delivery rate (`via` names the node). */
  async hints(opts: { via: string }): Promise<ApiHintsOk> {
    return (await this.request('hints', { ...opts })) as ApiHintsOk;
  }

  /** The partitions one node is handing over (ownership transfer), with progress (`via` names the node). */
  async transfers(opts: { via: string }): Promise<ApiTransfersOk> {
    return (await this.request('transfers', { ...opts })) as ApiTransfersOk;
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.nc.close();
  }

  private async request(op: string, body: Record<string, unknown>): Promise<unknown> {
    const { via, ...rest } = body;
    body = rest;
    const timeoutMs = typeof body.timeoutMs === 'number' ? body.timeoutMs : this.timeoutMs;
    if (body.timeoutMs === undefined && op !== 'status' && op !== 'hints' && op !== 'aae' && op !== 'transfers') body.timeoutMs = timeoutMs;
    const reqId = String(++this.seq);
    const bytes = encodeEnvelope({ v: protocolVersion, kind: `api.${op}`, from: this.name, to: '', reqId, body });
    let reply;
    try {
      const subject = typeof via === 'string' ? nodeSubject(this.cluster, via, 'api') : apiSubject(this.cluster, op);
      reply = await this.nc.request(subject, bytes, { timeout: timeoutMs + replyGraceMs });
    } catch (err) {
      throw toClientError(err, timeoutMs);
    }
    const env = decodeEnvelope(reply.data);
    if (typeof env === 'string') throw new RingkvError('INTERNAL', `the cluster answered with a bad message: ${env}`);
    if (env.kind === 'error') {
      const e = env.body as ErrorBody;
      throw new RingkvError(isErrorCode(e.code) ? e.code : 'INTERNAL', String(e.message), e.needed, e.alive);
    }
    if (env.kind !== `api.${op}.ok`) throw new RingkvError('INTERNAL', `unexpected answer kind "${env.kind}" to api.${op}`);
    return env.body;
  }
}

function toClientError(err: unknown, timeoutMs: number): RingkvError {
  if (err instanceof RequestError && err.isNoResponders()) {
    return new RingkvError('NO_CLUSTER', 'no ringkv node is serving this cluster (NATS has no responders for its API)');
  }
  if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
    return new RingkvError('TIMEOUT', `no answer within ${timeoutMs} ms; the operation may or may not have taken effect`);
  }
  return new RingkvError('NO_CLUSTER', `the request could not be sent: ${(err as Error).message}`);
}
