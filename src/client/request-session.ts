/**
 * The request machinery a RingkvClient and a ClusterAdmin share (internal): one NATS connection,
 * the request multiplexer, the hedge delays and budget, node health, the ring (ring-keeper.ts), and
 * the envelope each request travels in. It sends a request to candidate nodes, hedged
 * (hedged-request.ts), judges each answer (a bad or malformed one is not trusted), and says what
 * failed when nothing good came back. Which operations exist is the callers' business: the client's
 * key operations (client.ts) and the admin operations (node-operations.ts).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { checkInboxPrefix, inboxPrefixOf, mergeNatsSettings, natsConnectionOptions } from '../adapters/nats/connection-options.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { isErrorCode, type ErrorBody } from '../protocol/errors.js';
import type { ApiStatusOk } from '../protocol/messages.js';
import { checkers, refusalOf } from '../protocol/schemas.js';
import { adminSubject, apiSubject, nodeOpSubject } from '../protocol/subjects.js';
import { clientTimeoutMsDefault, coordinationFromEnv, ringRefreshMsDefault, type ClientOptions, type ClientStats } from './client-options.js';
import { natsConnectFailure } from './connect-failure.js';
import { RingkvError } from './errors.js';
import { HedgeBudget, HedgeDelay } from './hedge-delay.js';
import { type HedgedOutcome, type Judgement, runHedged } from './hedged-request.js';
import { NodeHealth } from './node-health.js';
import { RequestMux } from './request-mux.js';
import { failureOf } from './request-failure.js';
import { RingKeeper } from './ring-keeper.js';

/** The operations requests (ringkv status, hints, aae, transfers, cluster, backup): one node answers each. */
export type OperationOp = 'status' | 'hints' | 'aae' | 'transfers' | 'cluster' | 'backup';
export type ApiOp = 'put' | 'del' | 'get' | 'local.get' | OperationOp;

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

/** The client waits a little past the cluster's deadline so that a TIMEOUT answer can arrive. */
export const replyGraceMs = 500;
/** An early ring fetch waits at most this long; the request then goes through the queue group. */
const ringFetchTimeoutMs = 2_000;
/** With a given cluster id, status asks at most this many times past answers of another cluster. */
const foreignStatusAttemptsMax = 8;
/** Attempts through the API queue group of a request for any node, when the client knows no members. */
const queueAttemptsMax = 8;
/** A later attempt carries a shorter deadline only when it is shorter by more than this. */
const reencodeSlackMs = 20;
/** Errors that the same request would get from any node: report them at once. */
const definiteCodes = new Set(['BAD_REQUEST', 'TOO_LARGE', 'TOO_MANY_SIBLINGS', 'NO_CHANGES', 'UNKNOWN_NODE', 'TOO_FEW_NODES', 'TOO_MANY_NODES', 'ALREADY_MEMBER']);

export class RequestSession {
  readonly stats: ClientStats = { clientDrivenReads: 0, readFallbacks: 0, hedges: 0, noResponders: 0, lostRequests: 0, ringRefreshes: 0, foreignAnswers: 0 };
  readonly readDelay: HedgeDelay;
  readonly writeDelay: HedgeDelay;
  readonly health: NodeHealth;
  readonly ring: RingKeeper;
  private seq = 0;
  private readonly name = `client-${randomBytes(4).toString('hex')}`;
  private readonly mux: RequestMux;
  private readonly budget = new HedgeBudget();

  private constructor(
    private readonly nc: NatsConnection,
    readonly cluster: string,
    readonly timeoutMs: number,
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
    this.ring = new RingKeeper({
      clientDriven: (opts.coordination ?? coordinationFromEnv()) === 'client',
      clusterId: opts.clusterId ?? process.env.RINGKV_CLUSTER_ID,
      refreshMs: opts.ringRefreshMs ?? ringRefreshMsDefault,
      timeoutMs,
      fetchStatus: async () => (await this.single('status', {}, undefined, ringFetchTimeoutMs, true)) as ApiStatusOk,
      isClosed: () => nc.isClosed(),
      stats: this.stats,
    });
  }

  static async open(opts: ClientOptions = {}): Promise<RequestSession> {
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
    return new RequestSession(nc, opts.cluster ?? 'ringkv', opts.timeoutMs ?? clientTimeoutMsDefault, !opts.connection, opts);
  }

  /** The cluster's members and partition ownership, as the answering node sees them (hedged across nodes without `via`). */
  async status(opts: { via?: string; timeoutMs?: number } = {}): Promise<ApiStatusOk> {
    let status = (await this.operation('status', {}, opts)) as ApiStatusOk;
    // With a given cluster id, an answer of another cluster through the queue group is passed over:
    // the group is asked again (another of its members answers), a few times.
    let accepted = this.ring.accepts(status);
    for (let attempt = 1; !accepted && this.ring.clusterIdGiven && opts.via === undefined && attempt < foreignStatusAttemptsMax; attempt++) {
      status = (await this.operation('status', {}, opts)) as ApiStatusOk;
      accepted = this.ring.accepts(status);
    }
    if (!accepted) {
      throw new RingkvError(
        'CLUSTER_MISMATCH',
        `node ${status.nodeId} answered for another cluster named ${this.cluster} (id ${status.clusterId ?? 'none'}, not ${this.ring.clusterId ?? '?'}): a stray cluster shares this NATS`,
      );
    }
    return status;
  }

  /**
   * One operations request. With `via`, to that node only: a node that is not a member is
   * UNKNOWN_NODE, a member that does not listen NO_CLUSTER. Without, like a read: to the API queue
   * group first, and after the read hedge delay (at most 250 ms) to each member the client knows
   * (or the queue group again), so one paused node costs a hedge delay, not the deadline.
   */
  operation(op: OperationOp, body: Record<string, unknown>, opts: OperationOptions = {}): Promise<unknown> {
    const isChange = op === 'cluster' && body.op !== 'plan';
    return this.single(op, body, opts.via, opts.timeoutMs ?? this.timeoutMs, opts.hedge ?? !isChange);
  }

  /**
   * One request that one node answers: to `via` only (it fails over only on a lost connection), or
   * to any node: the queue group, then (hedged, or at once when one cannot answer) each member the
   * client knows, healthy ones first, then the queue group again.
   */
  async single(op: ApiOp, body: Record<string, unknown>, via: string | undefined, timeoutMs: number, hedge: boolean): Promise<unknown> {
    const candidates = via !== undefined ? [via] : this.anyNode();
    const outcome = await this.hedged<unknown>(op, candidates, 1, body, performance.now() + timeoutMs + replyGraceMs, this.readDelay, (env) => ({ kind: 'ok', value: env }), via === undefined && hedge);
    if (outcome.ok) return outcome.answers[0]![1];
    if (via !== undefined && outcome.gone.includes(via)) {
      const unknown = await this.unknownNode(via);
      if (unknown) throw unknown;
    }
    throw failureOf(op, outcome, timeoutMs, this.cluster, this.nc.isClosed());
  }

  /**
   * UNKNOWN_NODE when the cluster has no member `node` (asked of any node), else undefined: a
   * member that does not answer is NO_CLUSTER, and when nobody answers nothing can be said.
   */
  async unknownNode(node: string): Promise<RingkvError | undefined> {
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

  /** The error a failed request reports (request-failure.ts). */
  failure(op: ApiOp, outcome: Extract<HedgedOutcome<unknown>, { ok: false }>, timeoutMs: number): RingkvError {
    return failureOf(op, outcome, timeoutMs, this.cluster, this.nc.isClosed());
  }

  hedged<T>(
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

  async close(): Promise<void> {
    this.ring.stop();
    this.mux.close();
    if (this.ownsConnection) await this.nc.close();
  }

  /** Where a request for any node goes, in order (see single()). */
  private anyNode(): string[] {
    const view = this.ring.view;
    // Without a ring, the queue group again and again: NATS picks a member at random each time, so
    // with one of k members paused, all of them landing there has odds of (1/k)^queueAttemptsMax.
    if (view === undefined) return new Array<string>(queueAttemptsMax).fill('');
    const now = performance.now();
    const members = [...view.members].sort();
    const good = members.filter((m) => !view.down.has(m) && !this.health.isAvoided(m, now));
    return ['', ...good, ...members.filter((m) => !good.includes(m)), ''];
  }

  private judge<T>(op: ApiOp, node: string, bytes: Uint8Array, accept: (body: unknown) => Judgement<T>): Judgement<T> {
    const env = decodeEnvelope(bytes);
    if (typeof env === 'string') return { kind: 'next', error: new RingkvError('INTERNAL', `node ${node || '(queue group)'} answered with a bad message: ${env}`) };
    const view = this.ring.view;
    if (view !== undefined && env.from !== '' && !view.members.has(env.from)) this.ring.suspectStale();
    if (env.kind === 'error') {
      const e = env.body as ErrorBody;
      const error = new RingkvError(isErrorCode(e?.code) ? e.code : 'INTERNAL', String(e?.message), e?.needed, e?.alive);
      if (definiteCodes.has(error.code)) return { kind: 'final', error };
      if (error.code === 'NOT_OWNER') this.ring.suspectStale();
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
}

/** Admin operations: they travel on the admin subjects. */
const adminOps: ReadonlySet<ApiOp> = new Set<ApiOp>(['hints', 'aae', 'transfers', 'cluster', 'backup']);

/** Where a request goes: its role's queue group (node ''), or one node's subject of that role. */
function subjectOf(cluster: string, op: ApiOp, node: string): string {
  // Each operation on a subject of its own (issue 28): a NATS permission can then name it.
  if (adminOps.has(op)) return node === '' ? adminSubject(cluster, op) : nodeOpSubject(cluster, node, 'admin', op);
  return node === '' ? apiSubject(cluster, op) : nodeOpSubject(cluster, node, 'api', op);
}

/** Hedging off: a delay past any deadline, so no hedge is ever sent. */
const noHedge = new HedgeDelay({ floorMs: 0, capMs: 2 ** 31 - 1, initialMs: 2 ** 31 - 1, samplesMin: 2 ** 30 });
