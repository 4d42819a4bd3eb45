/**
 * The dashboard's HTTP routes, mounted on every node's HTTP server (http-server.ts):
 *
 *   GET /dashboard                  the page (page.ts): one self-contained HTML document
 *   GET /api/cluster                the whole cluster, gathered over NATS (cluster-view.ts)
 *   GET /api/actors[?node=ID]       every live actor of a node (its inspection snapshot); another
 *                                   node's is asked for on its inspect role
 *   GET /api/statechart?machine=M   a machine's statechart as SVG (src/diagram/statechart-svg.ts)
 *   GET /api/status                 this node's members, liveness and partition ownership
 *   GET /api/metrics                this node's request counters and Prometheus latency buckets
 *
 * The NATS-backed routes answer 503 until the node is connected and running (`attach`).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ServerResponse } from 'node:http';
import type { AnyStateMachine } from 'xstate';
import { type NodeContext, statusOf } from '../../../actors/node.machine.js';
import { loadMachines } from '../../diagram/machines.js';
import { type StatechartSvg, statechartSvg } from '../../diagram/statechart-svg.js';
import type { Log } from '../../ports/log.js';
import { namePattern } from '../../protocol/subjects.js';
import type { SealKey } from '../../protocol/seal.js';
import { InspectClient, InspectError } from '../../runtime/inspect-client.js';
import type { RouteHandler } from '../http-server.js';
import type { NodeMetrics } from '../metrics.js';
import { ClusterView } from './cluster-view.js';
import { dashboardHtml } from './page.js';

function json(res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function queryOf(url: string | undefined): URLSearchParams {
  const i = (url ?? '').indexOf('?');
  return new URLSearchParams(i < 0 ? '' : (url ?? '').slice(i + 1));
}

interface MetricValues {
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export class Dashboard {
  private view: ClusterView | undefined;
  private inspector: InspectClient | undefined;
  private machines: Promise<Map<string, AnyStateMachine>> | undefined;
  private readonly charts = new Map<string, StatechartSvg>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly metrics: NodeMetrics,
    private readonly log: Log,
  ) {}

  /**
   * The node's NATS connection, once the node runs: the cluster view and other nodes' actors need it.
   * `seal`: the cluster's key; other nodes grant their inspection snapshots only to sealed requests.
   */
  attach(o: { nc: NatsConnection; cluster: string; seal: SealKey }): void {
    const node = this.metrics.attachedNode;
    if (!node) throw new Error('attach the node to the metrics first');
    this.view = new ClusterView({ nc: o.nc, cluster: o.cluster, node, log: this.log });
    this.inspector = new InspectClient(o.nc, o.cluster, o.seal);
  }

  async close(): Promise<void> {
    await this.view?.close();
  }

  routes(): Record<string, RouteHandler> {
    return {
      '/dashboard': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(dashboardHtml) });
        res.end(dashboardHtml);
      },
      '/api/cluster': async (_req, res) => {
        if (!this.view) return json(res, { error: 'the node is starting' }, 503);
        json(res, await this.view.snapshot());
      },
      '/api/actors': async (req, res) => {
        const node = this.metrics.attachedNode;
        if (!node) return json(res, { error: 'the node is starting' }, 503);
        const asked = queryOf(req.url).get('node');
        if (asked === null || asked === node.identity.nodeId) return json(res, node.inspect.tap.snapshot());
        if (!namePattern.test(asked)) return json(res, { error: `"${asked}" is not a node id`, code: 'BAD_REQUEST' }, 400);
        if (!this.inspector) return json(res, { error: 'the node is starting' }, 503);
        try {
          json(res, await this.inspector.snapshot(asked));
        } catch (err) {
          const code = err instanceof InspectError ? err.code : 'INTERNAL';
          json(res, { error: `node ${asked} did not answer: ${(err as Error).message}`, code }, 502);
        }
      },
      '/api/statechart': async (req, res) => {
        const name = queryOf(req.url).get('machine') ?? '';
        const chart = await this.statechart(name);
        if (!chart) return json(res, { error: `no machine named "${name}"`, code: 'BAD_REQUEST' }, 404);
        json(res, chart);
      },
      '/api/status': (_req, res) => {
        const node = this.metrics.attachedNode;
        if (!node) return json(res, { error: 'the node is starting' }, 503);
        const context = node.actor.getSnapshot().context as NodeContext;
        json(res, { ...statusOf(context), epoch: node.identity.epoch, health: this.metrics.health(), uptimeMs: Date.now() - this.startedAt, now: Date.now() });
      },
      '/api/metrics': async (_req, res) => {
        const registry = this.metrics.registry;
        const get = async (name: string) => ((await registry.getSingleMetric(name)?.get()) as MetricValues | undefined)?.values ?? [];
        const requests = (await get('ringkv_requests_total')).map((v) => ({ op: v.labels.op, outcome: v.labels.outcome, count: v.value }));
        const buckets = (await get('ringkv_request_duration_seconds'))
          .filter((v) => v.metricName === 'ringkv_request_duration_seconds_bucket')
          .map((v) => ({ op: v.labels.op, outcome: v.labels.outcome, le: v.labels.le, count: v.value }));
        const inFlight = (await get('ringkv_requests_in_flight'))[0]?.value ?? 0;
        json(res, { now: Date.now(), requests, buckets, inFlight, ops: this.metrics.opFigures(), api: this.metrics.api });
      },
    };
  }

  /** The drawn chart of a machine, by its id (what an actor's `machine` says) or its file's name. */
  private async statechart(name: string): Promise<StatechartSvg | undefined> {
    const cached = this.charts.get(name);
    if (cached) return cached;
    this.machines ??= loadMachines().then((sources) => {
      const byName = new Map<string, AnyStateMachine>();
      for (const s of sources) byName.set(s.name, s.machine);
      // An actor's machine is its machine id; it wins over a file name that happens to match.
      for (const s of sources) byName.set(s.machine.id, s.machine);
      return byName;
    });
    const machine = (await this.machines).get(name);
    if (!machine) return undefined;
    const chart = statechartSvg(machine);
    this.charts.set(name, chart);
    return chart;
  }
}
