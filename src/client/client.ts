/**
 * The ringkv client library. It talks to the cluster over NATS only, and coordinates from the
 * client's side where it can (client-driven coordination, Dynamo §6.4):
 *
 * - It keeps the ring: fetched from the nodes (api.status), refreshed every few seconds and at once
 *   when an answer suggests it is stale (NOT_OWNER, an answer from a node it does not know).
 * - A put or delete goes straight to the first live node of the key's preference list, which
 *   coordinates it: no forwarding hop.
 * - A get asks R replicas directly for their own state of the key (api.local.get) and merges the
 *   DVV sets itself. When the answers differ (a replica is behind) it falls back to a get
 *   coordinated by a node, which answers the merge and read-repairs the replicas; when too few
 *   replicas can answer, to the coordinated get too, which knows sloppy quorums and says
 *   UNAVAILABLE with what it needed and what was alive.
 * - Requests are hedged: with no answer from a node after a short delay derived from recent
 *   latency, the next node of the preference list is asked as well, and the first good answer wins.
 *   A node with no responders (its process is gone) is skipped at once, and requests in flight on
 *   a connection that drops are sent again at once.
 *
 * With `via` a request goes to that node (and on to the preference list only if that node is gone);
 * with `coordination: 'cluster'` every request goes through the API queue group, as before.
 *
 * The admin operations (cluster changes, hints, transfers, anti-entropy, backup) are ClusterAdmin's
 * (admin.ts, `ringkv/admin`); both share the request machinery of request-session.ts. Here: the key
 * operations and status. The parts live beside this file: the ring (ring-keeper.ts), which nodes to
 * ask about a key (key-routing.ts), replica reads (replica-read.ts), what a get answers
 * (read-result.ts), the options (client-options.ts).
 *
 *   const client = await RingkvClient.connect({ servers: 'nats://127.0.0.1:4222' });
 *   const { values, context } = await client.get('cart:1');
 *   await client.put('cart:1', bytes, { context });   // supersedes exactly what was read
 *
 * Values are bytes; getString/putString and getJson/putJson are helpers on top. The context is
 * opaque: pass back what a read returned, and the write supersedes exactly the siblings that read
 * saw. A write without a context adds a sibling. A retried or hedged write can leave, at worst, an
 * extra sibling with the same value (never a lost write); merge() hands each distinct value once.
 */
import { performance } from 'node:perf_hooks';
import type { ApiGetOk, ApiPutOk, ApiStatusOk, RequestOptions } from '../protocol/messages.js';
import { type ClientOptions, type ClientStats } from './client-options.js';
import { RingkvError } from './errors.js';
import { KeyRouter } from './key-routing.js';
import { distinctValues, keyBytes, withDistinctValues, type GetResult } from './read-result.js';
import { canReadReplicas, readReplicas, type ReplicaReadPorts } from './replica-read.js';
import { replyGraceMs, RequestSession } from './request-session.js';
import type { RingView } from './ring-view.js';

export { RingkvError } from './errors.js';
export { clientTimeoutMsDefault, ringRefreshMsDefault } from './client-options.js';
export type { ClientOptions, ClientStats } from './client-options.js';
export { distinctValues, keyBytes, readResultOf } from './read-result.js';
export type { GetResult } from './read-result.js';

export interface ReadOptions extends RequestOptions {
  /** Send the request to this node (it coordinates), rather than choosing one from the ring. */
  via?: string;
}

export interface WriteOptions extends ReadOptions {
  /** The context of an earlier read of this key. */
  context?: Uint8Array;
}

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export class RingkvClient {
  /** What the client did for its requests since it connected (for tests, benchmarks and metrics). */
  readonly stats: ClientStats;
  private readonly router: KeyRouter;
  private readonly replicas: ReplicaReadPorts;

  private constructor(private readonly session: RequestSession) {
    this.stats = session.stats;
    this.router = new KeyRouter(session.health);
    this.replicas = {
      session,
      router: this.router,
      coordinatedGet: async (key, body, deadlineAt) => (await this.coordinated('get', key, body, undefined, deadlineAt)) as ApiGetOk,
    };
  }

  static async connect(opts: ClientOptions = {}): Promise<RingkvClient> {
    return new RingkvClient(await RequestSession.open(opts));
  }

  async get(key: string | Uint8Array, opts: ReadOptions = {}): Promise<GetResult> {
    const k = keyBytes(key);
    const { via, ...options } = opts;
    const timeoutMs = options.timeoutMs ?? this.session.timeoutMs;
    const deadlineAt = performance.now() + timeoutMs + replyGraceMs;
    const view = via === undefined ? await this.session.ring.ring() : this.session.ring.view;
    if (via === undefined && view !== undefined && canReadReplicas(view, options)) {
      const direct = await readReplicas(this.replicas, view, k, { ...options, timeoutMs }, deadlineAt);
      if (direct !== undefined) return withDistinctValues(direct);
    }
    return withDistinctValues((await this.coordinated('get', k, { key: k, ...options, timeoutMs }, via, deadlineAt)) as ApiGetOk);
  }

  async put(key: string | Uint8Array, value: Uint8Array, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    const k = keyBytes(key);
    const { via, ...options } = opts;
    const timeoutMs = options.timeoutMs ?? this.session.timeoutMs;
    return (await this.coordinated('put', k, { key: k, value, ...options, timeoutMs }, via, performance.now() + timeoutMs + replyGraceMs)) as ApiPutOk;
  }

  /** Deletes a key: a tombstone that supersedes what the context saw (everything, without one). */
  async delete(key: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
    let context = opts.context;
    // Without a context a delete would only add a tombstone beside the live values; read first so
    // that it supersedes what is there now, as a user of `del` expects.
    if (context === undefined) context = (await this.get(key, opts)).context;
    const k = keyBytes(key);
    const { via, ...options } = opts;
    const timeoutMs = options.timeoutMs ?? this.session.timeoutMs;
    await this.coordinated('del', k, { key: k, ...options, context, timeoutMs }, via, performance.now() + timeoutMs + replyGraceMs);
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
   * lost. `resolve` gets each distinct value once (a retried or hedged write can leave two siblings
   * with the same bytes), and an empty array when the key does not exist.
   */
  async merge(key: string | Uint8Array, resolve: (siblings: Uint8Array[]) => Uint8Array, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    const read = await this.get(key, opts);
    return this.put(key, resolve(distinctValues(read.values)), { ...opts, context: read.context });
  }

  /** merge() for JSON values. */
  async mergeJson<T>(key: string | Uint8Array, resolve: (siblings: T[]) => T, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    return this.merge(key, (siblings) => text.encode(JSON.stringify(resolve(siblings.map((v) => JSON.parse(untext.decode(v)) as T)))), opts);
  }

  /** The cluster's members and partition ownership, as the answering node sees them (hedged across nodes without `via`). */
  status(opts: { via?: string; timeoutMs?: number } = {}): Promise<ApiStatusOk> {
    return this.session.status(opts);
  }

  /** The cluster id this client has pinned (undefined before its first status answer). */
  get clusterId(): string | undefined {
    return this.session.ring.clusterId;
  }

  /** The ring the client routes by now (undefined until fetched, or with coordination 'cluster'). */
  ringView(): RingView | undefined {
    return this.session.ring.view;
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  /**
   * A request a node coordinates (put, del, or a coordinated get): to the first live node of the
   * key's preference list (or `via`), hedged to the next ones; through the API queue group when the
   * client has no ring.
   */
  private async coordinated(op: 'put' | 'del' | 'get', key: Uint8Array, body: Record<string, unknown>, via: string | undefined, deadlineAt: number): Promise<unknown> {
    const session = this.session;
    const view = await session.ring.ring();
    const n = typeof body.n === 'number' ? body.n : (view?.n ?? 3);
    let candidates: string[];
    let hedge = true;
    if (via !== undefined && view !== undefined && !view.members.has(via)) {
      // Named a node the ring does not have: say so rather than quietly asking another node.
      const unknown = await session.unknownNode(via);
      if (unknown) throw unknown;
    }
    if (view === undefined && session.ring.clusterIdGiven && via === undefined) {
      throw new RingkvError('NO_CLUSTER', `no node of cluster ${session.cluster} with id ${session.ring.clusterId} handed this client its ring within ${session.timeoutMs} ms: it sends no ${op} through the API queue group, which other processes on this NATS may answer`);
    }
    if (view === undefined) candidates = via === undefined ? [''] : [via];
    else {
      const { order } = this.router.order(view, key, Number.isInteger(n) && n >= 1 ? n : 1);
      candidates = via === undefined ? order : [via, ...order.filter((node) => node !== via)];
    }
    // `via` names the coordinator: others are asked only when it is gone, never as a hedge.
    if (via !== undefined) hedge = false;
    const delay = op === 'get' ? session.readDelay : session.writeDelay;
    const outcome = await session.hedged<unknown>(op, candidates, 1, body, deadlineAt, delay, (env) => ({ kind: 'ok', value: env }), hedge);
    if (outcome.ok) return outcome.answers[0]![1];
    throw session.failure(op, outcome, typeof body.timeoutMs === 'number' ? body.timeoutMs : session.timeoutMs);
  }
}
