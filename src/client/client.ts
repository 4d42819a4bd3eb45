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
 *   const client = await RingkvClient.connect({ servers: 'nats://127.0.0.1:4222' });
 *   const { values, context } = await client.get('cart:1');
 *   await client.put('cart:1', bytes, { context });   // supersedes exactly what was read
 *
 * Values are bytes; getString/putString and getJson/putJson are helpers on top. The context is
 * opaque: pass back what a read returned, and the write supersedes exactly the siblings that read
 * saw. A write without a context adds a sibling. A retried or hedged write can leave, at worst, an
 * extra sibling with the same value (never a lost write); merge() hands each distinct value once.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { checkInboxPrefix, inboxPrefixOf, mergeNatsSettings, natsConnectionOptions, type NatsAuthSettings } from '../adapters/nats/connection-options.js';
import { natsConnectFailure } from './connect-failure.js';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type DvvSet, equal, isDeleted, join, sync, values as dvvValues } from '../core/dvv.js';
import { partitionOf, preferenceList } from '../core/ring.js';
import { quorumDefault } from '../core/quorum.js';
import { chooseTargets, fallbackWaitMsDefault } from '../core/targets.js';
import { encode } from '../protocol/codec.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { isErrorCode, type ErrorBody } from '../protocol/errors.js';
import { defaultLimits } from '../protocol/limits.js';
import type { ApiBackupOk, ApiGetOk, ApiHintsOk, ApiLocalGetOk, ApiPutOk, ApiStatusOk, ApiTransfersOk, RequestOptions } from '../protocol/messages.js';
import type { AaeOp, ApiAaeOk } from '../protocol/aae-messages.js';
import { checkDvvSet } from '../protocol/validation.js';
import { checkers, refusalOf } from '../protocol/schemas.js';
import { screenState } from '../core/version-check.js';
import { defaultVersionBounds } from '../core/replica-write.js';
import { adminSubject, apiSubject, nodeOpSubject } from '../protocol/subjects.js';
import { RingkvError } from './errors.js';
import { HedgeBudget, HedgeDelay, type HedgeDelayOptions } from './hedge-delay.js';
import { type HedgedOutcome, type Judgement, runHedged } from './hedged-request.js';
import { NodeHealth, type NodeHealthOptions } from './node-health.js';
import { RequestMux } from './request-mux.js';
import { ringFromStatus, supersedes, type RingView } from './ring-view.js';
import { operatorDefaults } from '../core/defaults.js';

export { RingkvError } from './errors.js';

export interface ClientOptions extends NatsAuthSettings {
  /**
   * NATS server URL(s), comma separated. Default: NATS_URL, else nats://127.0.0.1:4222. The
   * authentication settings (user, password, token, nkeyFile, credsFile, caFile, certFile,
   * keyFile) default to the nats CLI's environment variables (NATS_USER, ...), and `inboxPrefix`
   * (where answers arrive: on a secured NATS, the inbox family this user may subscribe to) to
   * RINGKV_INBOX_PREFIX.
   */
  servers?: string;
  /** The cluster name: the subject prefix of its API (default "ringkv"). */
  cluster?: string;
  /**
   * The cluster id to accept rings and status answers from (default: RINGKV_CLUSTER_ID, else the id
   * of the first status answer, pinned from then on). A node of another cluster with the same name
   * on the same NATS (a stray) can then never hand this client its ring.
   */
  clusterId?: string;
  /** Default request deadline in ms, used by the cluster too (default 5000). */
  timeoutMs?: number;
  /** Reuse an existing NATS connection instead of opening one; close() then leaves it open. */
  connection?: NatsConnection;
  /**
   * 'client' (default): the client keeps the ring, sends writes to the key's preference list and
   * reads replicas itself, hedged. 'cluster': every request goes through the API queue group and
   * the node that takes it coordinates (or forwards it once). Default: RINGKV_COORDINATION, else
   * 'client'.
   */
  coordination?: 'client' | 'cluster';
  /** How often the ring is fetched again (default 3000 ms). */
  ringRefreshMs?: number;
  /** Hedge delay tuning for reads and for writes (see hedge-delay.ts). */
  readHedge?: Partial<HedgeDelayOptions>;
  writeHedge?: Partial<HedgeDelayOptions>;
  nodeHealth?: Partial<NodeHealthOptions>;
}

export interface ReadOptions extends RequestOptions {
  /** Send the request to this node (it coordinates), rather than choosing one from the ring. */
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

/** What the client did for its requests since it connected (for tests, benchmarks and metrics). */
export interface ClientStats {
  /** Gets answered from the replicas' own states (no coordinator). */
  clientDrivenReads: number;
  /** Client-driven gets whose replicas differed, or too few answered: a node coordinated instead. */
  readFallbacks: number;
  /** Requests sent to a further node because the first had not answered in time. */
  hedges: number;
  /** Nodes skipped because NATS had no responders for them. */
  noResponders: number;
  /** Requests sent again because the connection dropped under them. */
  lostRequests: number;
  /** Status answers (and the rings in them) ignored because they came from another cluster id. */
  foreignAnswers: number;
  ringRefreshes: number;
}

export const clientTimeoutMsDefault: number = operatorDefaults.requestTimeoutMs;
export const ringRefreshMsDefault = 3_000;
/** The client waits a little past the cluster's deadline so that a TIMEOUT answer can arrive. */
const replyGraceMs = 500;
/** An early ring fetch waits at most this long; the request then goes through the queue group. */
const ringFetchTimeoutMs = 2_000;
/** With a given cluster id, status asks at most this many times past answers of another cluster. */
const foreignStatusAttemptsMax = 8;
/** With a given cluster id and no ring yet, the pause between two ring fetches. */
const pinnedRingRetryMs = 50;
/** Refreshes the ring asks for on a hint of staleness, at most one per this many ms. */
const ringRefreshMinGapMs = 250;
/** Attempts through the API queue group of a request for any node, when the client knows no members. */
const queueAttemptsMax = 8;
/** A later attempt carries a shorter deadline only when it is shorter by more than this. */
const reencodeSlackMs = 20;
/** Errors that the same request would get from any node: report them at once. */
const definiteCodes = new Set(['BAD_REQUEST', 'TOO_LARGE', 'TOO_MANY_SIBLINGS', 'NO_CHANGES', 'UNKNOWN_NODE', 'TOO_FEW_NODES', 'TOO_MANY_NODES', 'ALREADY_MEMBER']);
/** When no node could give a good answer, which of their errors says most. */
const errorRank = ['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED', 'NOT_OWNER', 'INTERNAL', 'NOT_READY'];

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export function keyBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? text.encode(key) : key;
}

/** What a read of these merged states answers: the live siblings and the context of all of it. */
export function readResultOf(state: DvvSet): GetResult {
  const live = dvvValues(state).filter((v): v is Uint8Array => v !== null);
  return { found: !isDeleted(state) && live.length > 0, values: live, context: encode(join(state)) };
}

/** Each distinct value once, in first-seen order: a retried write may have left a duplicate sibling. */
export function distinctValues(values: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const v of values) {
    const id = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    if (!seen.has(id)) {
      seen.add(id);
      out.push(v);
    }
  }
  return out;
}

/** RINGKV_COORDINATION=cluster turns client-driven coordination off for every client of a process. */
function coordinationFromEnv(): 'client' | 'cluster' {
  return process.env.RINGKV_COORDINATION === 'cluster' ? 'cluster' : 'client';
}

/**
 * A get's values, each distinct value once. A write that was retried or hedged can leave two
 * siblings with the same bytes (two coordinators each made a dot for it); to the application they
 * are one value, and the context still covers both, so the next write supersedes both.
 */
function withDistinctValues(r: GetResult): GetResult {
  return r.values.length < 2 ? r : { found: r.found, values: distinctValues(r.values), context: r.context };
}

/** What the client routes one partition by, for one ring view (see order()). */
interface Route {
  extended: string[];
  /** The n `healthy` was made for. */
  n: number;
  healthy: { targets: string[]; order: string[] } | undefined;
}

type ApiOp = 'put' | 'del' | 'get' | 'local.get' | OperationOp;

/** The operations requests (ringkv status, hints, aae, transfers, cluster): one node answers each. */
export type OperationOp = 'status' | 'hints' | 'aae' | 'transfers' | 'cluster' | 'backup';

export interface OperationOptions {
  /** Ask this node only (it fails over to no other); otherwise any node, hedged. */
  via?: string;
  timeoutMs?: number;
  /**
   * Without `via`: ask another node too when the first has not answered after the read hedge delay.
   * Only for requests that are safe to answer twice: the default is true for reads of the state and
   * false for a cluster change (join, leave, force-remove, commit, clear), which a hedge could apply twice.
   */
  hedge?: boolean;
}

export class RingkvClient {
  readonly stats: ClientStats = { clientDrivenReads: 0, readFallbacks: 0, hedges: 0, noResponders: 0, lostRequests: 0, ringRefreshes: 0, foreignAnswers: 0 };
  /** The cluster id this client accepts rings from: given, or pinned from the first status answer. */
  private pinnedClusterId: string | undefined;
  /**
   * The cluster id was given (option or RINGKV_CLUSTER_ID), not learned from a first answer: then a
   * key operation never goes through the API queue group, which anyone on an open NATS can join and
   * answer; it waits for a ring from a node of that id and goes to the key's nodes.
   */
  private readonly clusterIdGiven: boolean;
  private seq = 0;
  private readonly name = `client-${randomBytes(4).toString('hex')}`;
  private readonly mux: RequestMux;
  private readonly readDelay: HedgeDelay;
  private readonly writeDelay: HedgeDelay;
  private readonly budget = new HedgeBudget();
  private readonly health: NodeHealth;
  private readonly clientDriven: boolean;
  private view: RingView | undefined;
  private fetching: Promise<void> | undefined;
  private lastFetchAt = Number.NEGATIVE_INFINITY;
  private routes: { view: RingView; byPartition: Route[] } | undefined;
  private readonly refreshTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly timeoutMs: number,
    private readonly ownsConnection: boolean,
    opts: ClientOptions,
  ) {
    // A connection this client made has the prefix of its settings (option or RINGKV_INBOX_PREFIX); a
    // connection handed over keeps its own unless the options name one.
    this.mux = new RequestMux(nc, opts.inboxPrefix !== undefined && opts.inboxPrefix !== '' ? checkInboxPrefix(opts.inboxPrefix) : inboxPrefixOf(nc));
    this.readDelay = new HedgeDelay({ quantile: 0.95, ...opts.readHedge });
    // A hedged write can leave a sibling the writer did not mean: both coordinators make a dot, and
    // a read between them can return a context that covers only one, so a later read-modify-write
    // sees the old value again beside the new one. Writes therefore hedge only when the node looks
    // stuck (p99, not before 200 ms: far past a healthy commit even on a loaded machine, and still
    // well inside the 500 ms a paused node may cost), not on ordinary tail latency like reads.
    this.writeDelay = new HedgeDelay({ quantile: 0.99, floorMs: 200, initialMs: 250, ...opts.writeHedge });
    this.health = new NodeHealth(opts.nodeHealth);
    this.clientDriven = (opts.coordination ?? coordinationFromEnv()) === 'client';
    const givenId = opts.clusterId ?? process.env.RINGKV_CLUSTER_ID;
    this.pinnedClusterId = givenId === undefined || givenId === '' ? undefined : givenId;
    this.clusterIdGiven = this.pinnedClusterId !== undefined;
    if (this.clientDriven) {
      this.refreshTimer = setInterval(() => void this.refreshRing(), opts.ringRefreshMs ?? ringRefreshMsDefault);
      this.refreshTimer.unref?.();
    }
  }

  static async connect(opts: ClientOptions = {}): Promise<RingkvClient> {
    const settings = mergeNatsSettings(opts, process.env);
    let nc = opts.connection;
    if (!nc) {
      try {
        nc = await connect({
          ...natsConnectionOptions(settings),
          name: 'ringkv-client',
          timeout: 3_000,
          // Reconnect quickly and for as long as the client lives: requests lost with the
          // connection are sent again as soon as it is back.
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          reconnectJitter: 100,
        });
      } catch (err) {
        // The URL and the error may carry a password or token: neither is ever shown.
        throw natsConnectFailure(err, settings);
      }
    }
    return new RingkvClient(nc, opts.cluster ?? 'ringkv', opts.timeoutMs ?? clientTimeoutMsDefault, !opts.connection, opts);
  }

  async get(key: string | Uint8Array, opts: ReadOptions = {}): Promise<GetResult> {
    const k = keyBytes(key);
    const { via, ...options } = opts;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const deadlineAt = performance.now() + timeoutMs + replyGraceMs;
    const view = via === undefined ? await this.ring() : this.view;
    if (via === undefined && view !== undefined && this.canReadReplicas(view, options)) {
      const direct = await this.readReplicas(view, k, { ...options, timeoutMs }, deadlineAt);
      if (direct !== undefined) return withDistinctValues(direct);
    }
    return withDistinctValues((await this.coordinated('get', k, { key: k, ...options, timeoutMs }, via, deadlineAt)) as ApiGetOk);
  }

  async put(key: string | Uint8Array, value: Uint8Array, opts: WriteOptions = {}): Promise<{ context: Uint8Array }> {
    const k = keyBytes(key);
    const { via, ...options } = opts;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
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
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
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
  async status(opts: { via?: string; timeoutMs?: number } = {}): Promise<ApiStatusOk> {
    let status = (await this.operation('status', {}, opts)) as ApiStatusOk;
    // With a given cluster id, an answer of another cluster through the queue group is passed over:
    // the group is asked again (another of its members answers), a few times.
    let accepted = this.acceptsCluster(status);
    for (let attempt = 1; !accepted && this.clusterIdGiven && opts.via === undefined && attempt < foreignStatusAttemptsMax; attempt++) {
      status = (await this.operation('status', {}, opts)) as ApiStatusOk;
      accepted = this.acceptsCluster(status);
    }
    if (!accepted) {
      throw new RingkvError(
        'CLUSTER_MISMATCH',
        `node ${status.nodeId} answered for another cluster named ${this.cluster} (id ${status.clusterId ?? 'none'}, not ${this.pinnedClusterId ?? '?'}): a stray cluster shares this NATS`,
      );
    }
    return status;
  }

  /** The cluster id this client has pinned (undefined before its first status answer). */
  get clusterId(): string | undefined {
    return this.pinnedClusterId;
  }

  /**
   * Whether a status answer comes from this client's cluster: the first one pins its cluster id (a
   * node of a cluster with ids always sends one), and every later one must carry the same.
   */
  private acceptsCluster(status: ApiStatusOk): boolean {
    if (typeof status.clusterId !== 'string') {
      this.stats.foreignAnswers++;
      return false;
    }
    this.pinnedClusterId ??= status.clusterId;
    if (status.clusterId === this.pinnedClusterId) return true;
    this.stats.foreignAnswers++;
    return false;
  }

  /**
   * One operations request. With `via`, to that node only: a node that is not a member is
   * UNKNOWN_NODE, a member that does not listen NO_CLUSTER. Without, like a read: to the API queue
   * group first, and after the read hedge delay (at most 250 ms) to each member the client knows
   * (or the queue group again), so one paused node costs a hedge delay, not the deadline.
   */
  async operation(op: OperationOp, body: Record<string, unknown>, opts: OperationOptions = {}): Promise<unknown> {
    const isChange = op === 'cluster' && body.op !== 'plan';
    return this.single(op, body, opts.via, opts.timeoutMs ?? this.timeoutMs, opts.hedge ?? !isChange);
  }

  /** One node's anti-entropy counters per partition; pause or resume its exchanges (`via` names the node). */
  async aae(op: AaeOp, opts: { via: string; timeoutMs?: number }): Promise<ApiAaeOk> {
    return (await this.operation('aae', { op }, opts)) as ApiAaeOk;
  }

  /**
   * A consistent, compacted copy of one node's store, written by that node (`via`) into `dir` inside
   * its backup directory (src/server/backup.ts). Answers once the copy is complete.
   */
  async backup(dir: string, opts: { via: string; timeoutMs?: number }): Promise<ApiBackupOk> {
    return (await this.operation('backup', { dir }, opts)) as ApiBackupOk;
  }

  /** One node's pending hints by target and its delivery rate (`via` names the node). */
  async hints(opts: { via: string; timeoutMs?: number }): Promise<ApiHintsOk> {
    return (await this.operation('hints', {}, opts)) as ApiHintsOk;
  }

  /** The ring the client routes by now (undefined until fetched, or with coordination 'cluster'). */
  ringView(): RingView | undefined {
    return this.view;
  }

  /** The partitions one node is handing over (ownership transfer), with progress (`via` names the node). */
  async transfers(opts: { via: string; timeoutMs?: number }): Promise<ApiTransfersOk> {
    return (await this.operation('transfers', {}, opts)) as ApiTransfersOk;
  }

  async close(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.mux.close();
    if (this.ownsConnection) await this.nc.close();
  }

  // --- the ring -----------------------------------------------------------------------------------

  /** The ring to route by: fetched first when the client has none yet (at most ringFetchTimeoutMs). */
  private async ring(): Promise<RingView | undefined> {
    if (!this.clientDriven) return undefined;
    if (this.view === undefined && this.clusterIdGiven) {
      // The queue group may answer for another cluster (a stray, an impostor): ask again until a node
      // of the given id has handed over its ring, for at most a request's deadline.
      const until = performance.now() + this.timeoutMs;
      while (this.view === undefined && performance.now() < until && !this.nc.isClosed()) {
        await this.refreshRing();
        if (this.view === undefined) await new Promise((r) => setTimeout(r, pinnedRingRetryMs));
      }
      return this.view;
    }
    if (this.view === undefined && performance.now() - this.lastFetchAt > ringRefreshMinGapMs) await this.refreshRing();
    return this.view;
  }

  /** Fetches the ring again (one fetch at a time; a caller during a fetch shares it). */
  private refreshRing(): Promise<void> {
    if (this.fetching) return this.fetching;
    this.lastFetchAt = performance.now();
    this.fetching = (async () => {
      try {
        const status = (await this.single('status', {}, undefined, ringFetchTimeoutMs, true)) as ApiStatusOk;
        if (!this.acceptsCluster(status)) return;
        const view = ringFromStatus(status);
        if (typeof view !== 'string' && supersedes(view, this.view)) {
          this.view = view;
          this.stats.ringRefreshes++;
        }
      } catch {
        // No node answered: keep the ring we have (or none: requests use the queue group).
      } finally {
        this.fetching = undefined;
      }
    })();
    return this.fetching;
  }

  /** An answer suggested the ring is stale: fetch it again soon, without holding anyone up. */
  private suspectStaleRing(): void {
    if (this.clientDriven && performance.now() - this.lastFetchAt > ringRefreshMinGapMs) void this.refreshRing();
  }

  /**
   * The nodes to ask about a key, best first: the key's targets as the client sees liveness (the
   * healthy primaries, then fallbacks standing in for the others, Dynamo §4.6), then the rest of its
   * extended preference list; nodes believed down or avoided go last (they may still be the only
   * ones left).
   */
  private order(view: RingView, key: Uint8Array, n: number): { targets: string[]; order: string[] } {
    const now = performance.now();
    const isUp = (node: string) => !view.down.has(node) && !this.health.isAvoided(node, now);
    const p = partitionOf(key, view.ring.q);
    const routes = this.routesOf(view);
    let route = routes[p];
    if (route === undefined) {
      route = { extended: preferenceList(view.ring, p, view.ring.q), n: 0, healthy: undefined };
      routes[p] = route;
    }
    const extended = route.extended;
    // The common case, every node of the list up: the answer depends only on the ring and n, so it
    // is made once per partition instead of per request (the arrays are shared: callers only read them).
    if (extended.every(isUp)) {
      if (route.healthy === undefined || route.n !== n) {
        route.n = n;
        route.healthy = { targets: extended.slice(0, n), order: extended };
      }
      return route.healthy;
    }
    const targets = chooseTargets(view.ring, p, n, isUp).targets.map((t) => t.node);
    const rest = extended.filter((node) => !targets.includes(node));
    return { targets, order: [...targets, ...rest.filter(isUp), ...rest.filter((node) => !isUp(node))] };
  }

  /** Per partition of this view: its extended preference list, and the order when all are up. */
  private routesOf(view: RingView): Route[] {
    if (this.routes?.view !== view) this.routes = { view, byPartition: new Array<Route | undefined>(view.ring.q) as Route[] };
    return this.routes.byPartition;
  }

  // --- reads from the replicas ------------------------------------------------------------------------

  /** Client-driven reads need a plain quorum read: strict quorums and pr go through a coordinator. */
  private canReadReplicas(view: RingView, o: RequestOptions): boolean {
    const n = o.n ?? view.n;
    const r = o.r ?? quorumDefault.r;
    const isWhole = (x: unknown, lo: number, hi: number) => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
    return isWhole(n, 1, defaultLimits.nMax) && isWhole(r, 1, n) && (o.pr ?? 0) === 0 && o.sloppy !== false;
  }

  /**
   * Asks R replicas for their own state of the key and merges them. Undefined when the client must
   * ask a coordinator instead: too few replicas could answer, or they differ (one is behind, and a
   * coordinated get answers their merge and repairs it).
   */
  private async readReplicas(view: RingView, key: Uint8Array, options: RequestOptions & { timeoutMs: number }, deadlineAt: number): Promise<GetResult | undefined> {
    const n = options.n ?? view.n;
    const r = options.r ?? quorumDefault.r;
    const { targets, order } = this.order(view, key, n);
    if (targets.length < r) {
      // Too few replicas believed alive: a coordinator knows the sloppy quorum and says UNAVAILABLE.
      this.stats.readFallbacks++;
      return undefined;
    }
    const body = { key, ...options };
    // Replicas that stay silent (cut off, and no failure detector has noticed yet) must not use up
    // the whole deadline: after a share of it the read goes to a coordinator, which asks spares of
    // the preference list in their place (actors/coordinator.core.ts, fallbackWait). Only the
    // key's targets answer a replica read, so the client cannot ask the spares itself.
    const now = performance.now();
    const replicasUntil = Math.min(deadlineAt, now + Math.max(fallbackWaitMsDefault, (deadlineAt - now) / 3));
    const outcome = await this.hedged<DvvSet | null>('local.get', order, r, body, deadlineAt, this.readDelay, (env) => {
      const state = (env as ApiLocalGetOk).state;
      return state === null || checkDvvSet(state) ? { kind: 'ok', value: state } : badAnswer('api.local.get');
    }, true, replicasUntil);
    if (!outcome.ok) {
      if (outcome.why === 'final') throw this.failure('get', outcome, options.timeoutMs);
      if (outcome.why === 'deadline' && replicasUntil >= deadlineAt) throw this.failure('get', outcome, options.timeoutMs);
      this.stats.readFallbacks++;
      return undefined;
    }
    const states = outcome.answers.map(([, s]) => s ?? []);
    // A replica's state is screened as a node would screen it (src/core/version-check.ts), so a
    // poisoned replica cannot hand out a context ringkv refuses; it then differs from the merge, and
    // the coordinated get below repairs it.
    const merged = states.reduce((acc, s) => sync(acc, screenState(s, defaultVersionBounds).state), [] as DvvSet);
    if (states.every((s) => equal(s, merged))) {
      this.stats.clientDrivenReads++;
      return readResultOf(merged);
    }
    // A replica is behind. A coordinated get answers the merge of what the replicas hold and sends
    // the ones that lack part of it read repair; should it fail, the merge of R answers is itself a
    // correct quorum read.
    this.stats.readFallbacks++;
    try {
      return (await this.coordinated('get', key, body, undefined, deadlineAt)) as ApiGetOk;
    } catch {
      return readResultOf(merged);
    }
  }

  // --- coordinated requests ---------------------------------------------------------------------------

  /**
   * A request a node coordinates (put, del, or a coordinated get): to the first live node of the
   * key's preference list (or `via`), hedged to the next ones; through the API queue group when the
   * client has no ring.
   */
  private async coordinated(op: 'put' | 'del' | 'get', key: Uint8Array, body: Record<string, unknown>, via: string | undefined, deadlineAt: number): Promise<unknown> {
    const view = await this.ring();
    const n = typeof body.n === 'number' ? body.n : (view?.n ?? 3);
    let candidates: string[];
    let hedge = true;
    if (via !== undefined && view !== undefined && !view.members.has(via)) {
      // Named a node the ring does not have: say so rather than quietly asking another node.
      const unknown = await this.unknownNode(via);
      if (unknown) throw unknown;
    }
    if (view === undefined && this.clusterIdGiven && via === undefined) {
      throw new RingkvError('NO_CLUSTER', `no node of cluster ${this.cluster} with id ${this.pinnedClusterId} handed this client its ring within ${this.timeoutMs} ms: it sends no ${op} through the API queue group, which other processes on this NATS may answer`);
    }
    if (view === undefined) candidates = via === undefined ? [''] : [via];
    else {
      const { order } = this.order(view, key, Number.isInteger(n) && n >= 1 ? n : 1);
      candidates = via === undefined ? order : [via, ...order.filter((node) => node !== via)];
    }
    // `via` names the coordinator: others are asked only when it is gone, never as a hedge.
    if (via !== undefined) hedge = false;
    const delay = op === 'get' ? this.readDelay : this.writeDelay;
    const outcome = await this.hedged<unknown>(op, candidates, 1, body, deadlineAt, delay, (env) => ({ kind: 'ok', value: env }), hedge);
    if (outcome.ok) return outcome.answers[0]![1];
    throw this.failure(op, outcome, typeof body.timeoutMs === 'number' ? body.timeoutMs : this.timeoutMs);
  }

  /**
   * One request that one node answers: to `via` only (it fails over only on a lost connection), or
   * to any node: the queue group, then (hedged, or at once when one cannot answer) each member the
   * client knows, healthy ones first, then the queue group again.
   */
  private async single(op: ApiOp, body: Record<string, unknown>, via: string | undefined, timeoutMs: number, hedge: boolean): Promise<unknown> {
    const candidates = via !== undefined ? [via] : this.anyNode();
    const outcome = await this.hedged<unknown>(op, candidates, 1, body, performance.now() + timeoutMs + replyGraceMs, this.readDelay, (env) => ({ kind: 'ok', value: env }), via === undefined && hedge);
    if (outcome.ok) return outcome.answers[0]![1];
    if (via !== undefined && outcome.gone.includes(via)) {
      const unknown = await this.unknownNode(via);
      if (unknown) throw unknown;
    }
    throw this.failure(op, outcome, timeoutMs);
  }

  /** Where a request for any node goes, in order (see single()). */
  private anyNode(): string[] {
    const view = this.view;
    // Without a ring, the queue group again and again: NATS picks a member at random each time, so
    // with one of k members paused, all of them landing there has odds of (1/k)^queueAttemptsMax.
    if (view === undefined) return new Array<string>(queueAttemptsMax).fill('');
    const now = performance.now();
    const members = [...view.members].sort();
    const good = members.filter((m) => !view.down.has(m) && !this.health.isAvoided(m, now));
    return ['', ...good, ...members.filter((m) => !good.includes(m)), ''];
  }

  /**
   * UNKNOWN_NODE when the cluster has no member `node` (asked of any node), else undefined: a
   * member that does not answer is NO_CLUSTER, and when nobody answers nothing can be said.
   */
  private async unknownNode(node: string): Promise<RingkvError | undefined> {
    let status: ApiStatusOk;
    try {
      status = (await this.single('status', {}, undefined, ringFetchTimeoutMs, true)) as ApiStatusOk;
    } catch {
      return undefined;
    }
    const members = status.members.map((m) => m.nodeId);
    const departed = (status.departed ?? []).map((d) => d.nodeId);
    if (members.includes(node)) return undefined;
    const left = departed.includes(node) ? ` (it has left: ${status.departed!.find((d) => d.nodeId === node)!.status})` : '';
    return new RingkvError('UNKNOWN_NODE', `cluster "${this.cluster}" has no member "${node}"${left}; members: ${members.sort().join(', ')}`);
  }

  private hedged<T>(
    op: ApiOp,
    candidates: string[],
    needed: number,
    body: Record<string, unknown>,
    deadlineAt: number,
    delay: HedgeDelay,
    accept: (body: unknown) => Judgement<T>,
    hedge = true,
    /** Stop waiting here, before the deadline the requests carry (see HedgedSpec.giveUpAt). */
    giveUpAt?: number,
  ): Promise<HedgedOutcome<T>> {
    const kind = `api.${op}`;
    const reqId = String(++this.seq);
    const first = encodeEnvelope({ v: protocolVersion, kind, from: this.name, to: '', reqId, body });
    const firstTimeoutMs = body.timeoutMs;
    const withDeadline = typeof firstTimeoutMs === 'number';
    return runHedged<T>({
      candidates,
      needed,
      deadlineAt,
      ...(giveUpAt !== undefined ? { giveUpAt } : {}),
      delay: hedge ? delay : noHedge,
      budget: this.budget,
      health: this.health,
      now: () => performance.now(),
      send: (node, remainingMs) => {
        const subject = subjectOf(this.cluster, op, node);
        // A later attempt carries what is left of the deadline, so its answer still comes in time.
        const left = Math.floor(remainingMs - replyGraceMs);
        const bytes =
          withDeadline && left < (firstTimeoutMs as number) - reencodeSlackMs
            ? encodeEnvelope({ v: protocolVersion, kind, from: this.name, to: '', reqId, body: { ...body, timeoutMs: Math.max(1, left) } })
            : first;
        return this.mux.request(subject, bytes, remainingMs, reqId);
      },
      judge: (node, bytes) => this.judge(op, node, bytes, accept),
    }).then((outcome) => {
      this.stats.hedges += outcome.hedges;
      this.stats.lostRequests = this.mux.lostRequests;
      this.stats.noResponders += outcome.gone.length;
      return outcome;
    });
  }

  private judge<T>(op: ApiOp, node: string, bytes: Uint8Array, accept: (body: unknown) => Judgement<T>): Judgement<T> {
    const env = decodeEnvelope(bytes);
    if (typeof env === 'string') return { kind: 'next', error: new RingkvError('INTERNAL', `node ${node || '(queue group)'} answered with a bad message: ${env}`) };
    if (this.view !== undefined && env.from !== '' && !this.view.members.has(env.from)) this.suspectStaleRing();
    if (env.kind === 'error') {
      const e = env.body as ErrorBody;
      const error = new RingkvError(isErrorCode(e?.code) ? e.code : 'INTERNAL', String(e?.message), e?.needed, e?.alive);
      if (definiteCodes.has(error.code)) return { kind: 'final', error };
      if (error.code === 'NOT_OWNER') this.suspectStaleRing();
      // A coordinator that timed out may have applied the write: nothing to retry, only to report.
      if (error.code === 'TIMEOUT') return { kind: 'wait', error };
      return { kind: 'next', error };
    }
    if (env.kind !== `api.${op}.ok`) return { kind: 'next', error: new RingkvError('INTERNAL', `unexpected answer kind "${env.kind}" to api.${op}`) };
    // The answer's shape, as docs/protocol.md writes it: a node that answers otherwise is not trusted.
    const check = checkers.answers[env.kind as keyof typeof checkers.answers];
    if (check !== undefined && !check.Check(env.body)) {
      return { kind: 'next', error: new RingkvError('INTERNAL', `node ${node || '(queue group)'} answered api.${op} with a malformed body: ${refusalOf(check, env.body)}`) };
    }
    return accept(env.body);
  }

  /** The error a failed operation reports: what the nodes said, else what the client saw. */
  private failure(op: ApiOp, outcome: Extract<HedgedOutcome<unknown>, { ok: false }>, timeoutMs: number): RingkvError {
    const isWrite = op === 'put' || op === 'del';
    if (outcome.why === 'final') return outcome.errors.at(-1)!;
    if (outcome.why === 'deadline') {
      const got = outcome.answers.length > 0 ? ` (${outcome.answers.length} replicas answered in time)` : '';
      return new RingkvError(
        'TIMEOUT',
        isWrite
          ? `no answer within ${timeoutMs} ms${got}; the ${op === 'del' ? 'delete' : 'write'} may or may not have been applied`
          : `no answer within ${timeoutMs} ms${got}`,
      );
    }
    // A write that a coordinator timed out on, or whose answer was lost with the connection, may
    // have been applied: saying UNAVAILABLE (not applied) for it would mislead.
    if (isWrite) {
      const timedOut = outcome.errors.filter((x) => x.code === 'TIMEOUT').at(-1);
      if (timedOut) return timedOut;
      if (outcome.lost > 0) {
        return new RingkvError('TIMEOUT', `the connection to NATS dropped while the ${op === 'del' ? 'delete' : 'write'} was in flight and no node answered it again; it may or may not have been applied`);
      }
    }
    for (const code of errorRank) {
      const e = outcome.errors.filter((x) => x.code === code).at(-1);
      if (e) return e;
    }
    if (outcome.gone.length > 0) {
      const where = outcome.gone.includes('') ? 'for its API' : `for nodes ${[...new Set(outcome.gone)].join(', ')}`;
      return new RingkvError('NO_CLUSTER', `no ringkv node is serving cluster "${this.cluster}" (NATS has no responders ${where})`);
    }
    // Only a closed connection leaves nothing to ask before the deadline; say so only when it is.
    if (this.nc.isClosed()) return new RingkvError('NO_CLUSTER', `the request could not be sent: the connection to NATS is closed`);
    return new RingkvError('NO_CLUSTER', `no ringkv node of cluster "${this.cluster}" could be asked (every candidate failed without an answer)`);
  }
}

/** Admin operations the client library also offers; they travel on the admin subjects. */
const adminOps: ReadonlySet<ApiOp> = new Set<ApiOp>(['hints', 'aae', 'transfers', 'cluster', 'backup']);

/** Where a request goes: its role's queue group (node ''), or one node's subject of that role. */
function subjectOf(cluster: string, op: ApiOp, node: string): string {
  // Each operation on a subject of its own (issue 28): a NATS permission can then name it.
  if (adminOps.has(op)) return node === '' ? adminSubject(cluster, op) : nodeOpSubject(cluster, node, 'admin', op);
  return node === '' ? apiSubject(cluster, op) : nodeOpSubject(cluster, node, 'api', op);
}

/** Hedging off: a delay past any deadline, so no hedge is ever sent. */
const noHedge = new HedgeDelay({ floorMs: 0, capMs: 2 ** 31 - 1, initialMs: 2 ** 31 - 1, samplesMin: 2 ** 30 });

function badAnswer(kind: string): Judgement<never> {
  return { kind: 'next', error: new RingkvError('INTERNAL', `a node answered ${kind} with a malformed state`) };
}
