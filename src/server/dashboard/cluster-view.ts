/**
 * The whole cluster as one node's dashboard shows it (GET /api/cluster). The node serving the page
 * gathers the other nodes' figures over NATS, rather than the page asking each node's HTTP server:
 * a person needs to reach one node's port only (a port-forward, a load balancer), nodes need not
 * know each other's HTTP addresses, no cross-origin requests are needed, and the figures travel on
 * subjects NATS permissions already govern. Once a second, while someone watches, it asks:
 *
 * - its own node actor: members, who is down (as this node's failure detector sees it), the ring;
 *   fallbacks are computed from them as the coordinator picks them (core/targets.ts);
 * - every member, on its own api subject: api.hints (hinted handoff), api.transfers (ownership
 *   transfer), api.aae (anti-entropy per partition), as `ringkv hints|transfers|aae` do;
 * - `$SRV.STATS.ringkv` (service discovery): each node's answers, errors and latency histogram per
 *   operation. Successive readings are subtracted and the nodes' histograms merged, so each point of
 *   the charts is the cluster's rate and its real p50 and p99 over that second (latency-digest.ts).
 *
 * Cost: nothing while nobody watches. Sampling starts with the first request for /api/cluster and
 * stops idleStopMs after the last; each sample costs one small request per member and kind.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { type NodeContext, statusOf } from '../../../actors/node.machine.js';
import { aaeOperation, hintsOperation, transfersOperation } from '../../client/node-operations.js';
import { RequestSession } from '../../client/request-session.js';
import { chooseTargets } from '../../core/targets.js';
import type { Log } from '../../ports/log.js';
import type { ApiAaeOk } from '../../protocol/aae-messages.js';
import type { ApiHintsOk, ApiStatusOk, ApiTransfersOk } from '../../protocol/messages.js';
import type { RunningNode } from '../../runtime/create-node.js';
import { mergeCounts, quantileMs, type SparseCounts, subtractCounts, totalOf } from '../latency-digest.js';
import type { OpFigures } from '../metrics.js';

/** How often figures are gathered while someone watches. */
export const sampleIntervalMs = 1_000;
/** Points kept per chart: five minutes at one a second. */
export const seriesPointsMax = 300;
/** Sampling stops this long after the last request for the cluster view. */
export const idleStopMs = 30_000;
/** How long one member may take to answer one question before it counts as unreachable. */
export const askTimeoutMs = 800;
/** How long the STATS answers are collected: until none came for statsStallMs, at most statsWaitMs. */
export const statsWaitMs = 1_000;
export const statsStallMs = 300;
/** The operations charted. */
export const chartedOps = ['put', 'get', 'del'] as const;

export interface OpPoint {
  /** Answers per second, and error answers per second, over the point's interval. */
  rate: number;
  errorRate: number;
  /** Real percentiles over the interval in ms (interpolated in fine buckets); null without requests. */
  p50: number | null;
  p99: number | null;
}

export interface SeriesPoint {
  t: number;
  ops: Record<string, OpPoint>;
}

export interface NodeFigures {
  nodeId: string;
  /** Answered every question of the last sample. */
  reachable: boolean;
  error?: string;
  hints?: ApiHintsOk;
  transfers?: ApiTransfersOk;
  aae?: ApiAaeOk;
}

export interface PartitionAae {
  p: number;
  /** The newest exchange any node finished for p (ms since the epoch), or null. */
  lastExchangeAt: number | null;
  exchanges: number;
  failed: number;
  keysRepaired: number;
}

export interface ClusterSnapshot {
  t: number;
  /** The node that gathered this (the one serving the page). */
  via: string;
  status: ApiStatusOk;
  /** owners[p]: the node that owns partition p. */
  owners: string[];
  /** Partitions whose primary is down, and who stands in for it (null: no spare node, the coordinator keeps the hint). */
  fallbacks: { p: number; primary: string; fallback: string | null }[];
  nodes: NodeFigures[];
  aae: PartitionAae[];
  series: SeriesPoint[];
  /** Members whose $SRV.STATS answer did not come in the last sample. */
  statsMissing: string[];
}

export interface ClusterViewDeps {
  nc: NatsConnection;
  cluster: string;
  node: RunningNode;
  log: Log;
  now?: () => number;
}

interface StatsAnswer {
  metadata?: { cluster?: string; node?: string };
  endpoints?: { name: string; data?: { ops?: Record<string, OpFigures> } }[];
}

export class ClusterView {
  private readonly now: () => number;
  private session: RequestSession | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastAskedAt = 0;
  private latest: ClusterSnapshot | undefined;
  private first: Promise<void> | undefined;
  private readonly series: SeriesPoint[] = [];
  /** Each node's previous cumulative figures, and when they were read. */
  private previous = new Map<string, Record<string, OpFigures>>();
  private previousAt = 0;

  constructor(private readonly deps: ClusterViewDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The newest snapshot; starts sampling if it was idle (and waits for its first sample then). */
  async snapshot(): Promise<ClusterSnapshot> {
    this.lastAskedAt = this.now();
    if (this.timer === undefined && this.first === undefined) {
      this.first = this.sample().finally(() => {
        this.first = undefined;
        this.schedule();
      });
    }
    if (this.first) await this.first;
    return this.latest!;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.first?.catch(() => undefined);
    await this.session?.close().catch(() => undefined);
    this.session = undefined;
  }

  private schedule(): void {
    if (this.now() - this.lastAskedAt > idleStopMs) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(() => {
      this.sample()
        .catch((err: unknown) => this.deps.log.warn('dashboard: a cluster sample failed', { err: String(err) }))
        .finally(() => this.schedule());
    }, sampleIntervalMs);
  }

  private async sample(): Promise<void> {
    const { node } = this.deps;
    const context = node.actor.getSnapshot().context as NodeContext;
    const status = statusOf(context);
    const down = context.down ?? {};
    const ids = status.members.map((m) => m.nodeId);
    this.session ??= await RequestSession.open({ connection: this.deps.nc, cluster: this.deps.cluster, coordination: 'cluster', timeoutMs: askTimeoutMs });
    const session = this.session;
    const [nodes, stats] = await Promise.all([Promise.all(ids.map((id) => this.askNode(session, id))), this.readStats(ids)]);
    const t = this.now();
    this.addPoint(t, stats);
    const owners = context.ring.owners;
    const fallbacks: ClusterSnapshot['fallbacks'] = [];
    for (let p = 0; p < context.ring.q; p++) {
      const targets = chooseTargets(context.ring, p, status.n, (id) => !down[id]);
      for (const tg of targets.targets) if (tg.hintFor !== undefined) fallbacks.push({ p, primary: tg.hintFor, fallback: tg.node });
      for (const orphan of targets.orphans) fallbacks.push({ p, primary: orphan, fallback: null });
    }
    this.latest = {
      t,
      via: status.nodeId,
      status,
      owners,
      fallbacks,
      nodes,
      aae: aaeByPartition(context.ring.q, nodes),
      series: this.series.slice(),
      statsMissing: ids.filter((id) => !stats.has(id)),
    };
  }

  private async askNode(session: RequestSession, nodeId: string): Promise<NodeFigures> {
    const opts = { via: nodeId, timeoutMs: askTimeoutMs };
    const [hints, transfers, aae] = await Promise.allSettled([hintsOperation(session, opts), transfersOperation(session, opts), aaeOperation(session, 'status', opts)]);
    const failed = [hints, transfers, aae].find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    return {
      nodeId,
      reachable: failed === undefined,
      ...(failed ? { error: String((failed.reason as Error)?.message ?? failed.reason) } : {}),
      ...(hints.status === 'fulfilled' ? { hints: hints.value } : {}),
      ...(transfers.status === 'fulfilled' ? { transfers: transfers.value } : {}),
      ...(aae.status === 'fulfilled' ? { aae: aae.value } : {}),
    };
  }

  /**
   * Every node of this cluster's cumulative op figures, from service discovery. Other clusters on
   * the same NATS answer too (and are skipped), so the answers are read until every member has
   * answered, or none came for statsStallMs.
   */
  private async readStats(members: string[]): Promise<Map<string, Record<string, OpFigures>>> {
    const out = new Map<string, Record<string, OpFigures>>();
    try {
      const answers = await this.deps.nc.requestMany('$SRV.STATS.ringkv', new Uint8Array(), { strategy: 'stall', stall: statsStallMs, maxWait: statsWaitMs });
      for await (const m of answers) {
        let a: StatsAnswer;
        try {
          a = JSON.parse(new TextDecoder().decode(m.data)) as StatsAnswer;
        } catch {
          continue;
        }
        const nodeId = a.metadata?.node;
        if (a.metadata?.cluster !== this.deps.cluster || typeof nodeId !== 'string') continue;
        const ops = a.endpoints?.find((e) => e.name === 'api')?.data?.ops;
        if (ops && typeof ops === 'object') out.set(nodeId, ops);
        if (members.every((id) => out.has(id))) break;
      }
    } catch (err) {
      this.deps.log.debug('dashboard: $SRV.STATS gave no answer', { err: String(err) });
    }
    return out;
  }

  /** One chart point: what every node answered since the previous sample, merged. */
  private addPoint(t: number, stats: Map<string, Record<string, OpFigures>>): void {
    const dtS = this.previousAt > 0 ? (t - this.previousAt) / 1000 : 0;
    if (dtS > 0) {
      const ops: Record<string, OpPoint> = {};
      for (const op of chartedOps) {
        let count = 0;
        let errors = 0;
        const latencies: SparseCounts[] = [];
        for (const [nodeId, figures] of stats) {
          const now = figures[op];
          if (!now) continue;
          let before = this.previous.get(nodeId)?.[op];
          // A node that restarted counts from zero again.
          if (before && before.count > now.count) before = undefined;
          count += now.count - (before?.count ?? 0);
          errors += now.errors - (before?.errors ?? 0);
          latencies.push(subtractCounts(now.latency, before?.latency));
        }
        const merged = mergeCounts(latencies);
        const timed = totalOf(merged);
        ops[op] = { rate: count / dtS, errorRate: errors / dtS, p50: timed > 0 ? quantileMs(merged, 0.5)! : null, p99: timed > 0 ? quantileMs(merged, 0.99)! : null };
      }
      this.series.push({ t, ops });
      if (this.series.length > seriesPointsMax) this.series.shift();
    }
    // A node whose answer did not come this time keeps its previous reading, so its next answer is
    // subtracted from what was last seen and nothing is counted twice.
    for (const [nodeId, figures] of stats) this.previous.set(nodeId, figures);
    this.previousAt = t;
  }
}

/** Per partition: the newest exchange any node finished, and the sums of every node's counters. */
function aaeByPartition(q: number, nodes: NodeFigures[]): PartitionAae[] {
  const out: PartitionAae[] = Array.from({ length: q }, (_, p) => ({ p, lastExchangeAt: null, exchanges: 0, failed: 0, keysRepaired: 0 }));
  for (const n of nodes) {
    for (const s of n.aae?.partitions ?? []) {
      const row = out[s.p];
      if (!row) continue;
      if (s.lastExchangeAt !== null && (row.lastExchangeAt === null || s.lastExchangeAt > row.lastExchangeAt)) row.lastExchangeAt = s.lastExchangeAt;
      row.exchanges += s.exchanges;
      row.failed += s.failed;
      row.keysRepaired += s.keysRepaired;
    }
  }
  return out;
}
