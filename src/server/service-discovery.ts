/**
 * NATS service discovery: a node answers the micro-services protocol's `$SRV.PING`, `$SRV.INFO` and
 * `$SRV.STATS` (also `.ringkv` and `.ringkv.<id>` after each), so that `nats micro ls`, `nats micro
 * info ringkv` and `nats micro stats ringkv` list every node with its cluster, node id and epoch.
 *
 * Written against the protocol (JSON types io.nats.micro.v1.*_response) rather than with
 * @nats-io/services, because the endpoints it describes are already served elsewhere: the client and admin APIs
 * by the transport's queue subscriptions, the inspect role by the node's own subscription. A services
 * library would subscribe to them a second time. The API endpoint's statistics come from the node's
 * metrics, and its `data` carries each operation's latency histogram (metrics.ts opFigures).
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../ports/log.js';
import type { SealKey } from '../protocol/seal.js';
import { isPingNonce, pingProof } from '../protocol/ping-proof.js';
import { isInboxSubject } from '../adapters/nats/connection-options.js';
import { adminQueueGroup, adminWildcard, apiQueueGroup, apiWildcard, nodeOpWildcard, nodeSubject } from '../protocol/subjects.js';
import { packageRoot } from './package-root.js';
import type { NodeMetrics } from './metrics.js';

export const serviceName = 'ringkv';
const verbs = ['PING', 'INFO', 'STATS'] as const;

export interface ServiceDiscoveryOptions {
  nc: NatsConnection;
  cluster: string;
  /** Published so that a node starting beside another cluster of the same name can tell (cluster-probe.ts). */
  clusterId: string;
  nodeId: string;
  /** The node's epoch now: it changes while the node runs (renewEpoch), and the metadata must follow. */
  epoch: () => string;
  metrics: NodeMetrics;
  log: Log;
  /**
   * The cluster's seal key: a PING whose payload is a probe's nonce is answered with a member's
   * proof for it in the metadata (src/protocol/ping-proof.ts), so a starting node can tell members
   * from impostors. Without one, no proof.
   */
  seal?: SealKey;
  /** Defaults to the package version. */
  version?: string;
  /** Defaults to a fresh random id (the protocol wants one per running instance). */
  id?: string;
}

export interface ServiceDiscovery {
  id: string;
  stop(): Promise<void>;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export async function startServiceDiscovery(o: ServiceDiscoveryOptions): Promise<ServiceDiscovery> {
  const id = o.id ?? randomBytes(11).toString('hex').toUpperCase();
  const version = o.version ?? packageVersion();
  const started = new Date().toISOString();
  // Made at each answer, not once at start: the epoch changes while the node runs.
  const base = () => ({ name: serviceName, id, version, metadata: { cluster: o.cluster, clusterId: o.clusterId, node: o.nodeId, epoch: o.epoch() } });
  const endpoints = [
    { name: 'api', subject: apiWildcard(o.cluster), queue_group: apiQueueGroup, metadata: { description: 'the client API: put, get, del, status' } },
    { name: 'node-api', subject: nodeOpWildcard(o.cluster, o.nodeId, 'api'), queue_group: '', metadata: { description: 'the client API of this node only' } },
    { name: 'admin', subject: adminWildcard(o.cluster), queue_group: adminQueueGroup, metadata: { description: 'admin operations: cluster, aae, hints, transfers' } },
    { name: 'node-admin', subject: nodeOpWildcard(o.cluster, o.nodeId, 'admin'), queue_group: '', metadata: { description: 'admin operations of this node only' } },
    { name: 'inspect', subject: nodeSubject(o.cluster, o.nodeId, 'inspect'), queue_group: '', metadata: { description: 'inspection: snapshots and follow sessions' } },
  ];

  const answers: Record<(typeof verbs)[number], () => unknown> = {
    PING: () => ({ type: 'io.nats.micro.v1.ping_response', ...base() }),
    INFO: () => ({
      type: 'io.nats.micro.v1.info_response',
      ...base(),
      description: `ringkv node ${o.nodeId} of cluster ${o.cluster}: a Dynamo-style key-value store`,
      endpoints,
    }),
    STATS: () => {
      const api = o.metrics.api;
      return {
        type: 'io.nats.micro.v1.stats_response',
        ...base(),
        started,
        endpoints: endpoints.map((e) => {
          const isApi = e.name === 'api';
          const processing = isApi ? api.processingNs : 0;
          return {
            name: e.name,
            subject: e.subject,
            queue_group: e.queue_group,
            num_requests: isApi ? api.requests : 0,
            num_errors: isApi ? api.errors : 0,
            last_error: isApi ? api.lastError : '',
            processing_time: processing,
            average_processing_time: isApi && api.timed > 0 ? Math.round(processing / api.timed) : 0,
            // Endpoint-specific statistics, as the micro protocol allows: per operation, answers,
            // errors and a fine latency histogram, so that any node's dashboard can chart the
            // whole cluster's rates and real percentiles (dashboard/cluster-view.ts).
            ...(isApi ? { data: { ops: o.metrics.opFigures() } } : {}),
          };
        }),
      };
    },
  };

  const subs: Subscription[] = [];
  const encoder = new TextEncoder();
  for (const verb of verbs) {
    for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${serviceName}`, `$SRV.${verb}.${serviceName}.${id}`]) {
      subs.push(
        o.nc.subscribe(subject, {
          callback: (err, msg) => {
            // Inboxes only, as every answer of a node (src/adapters/nats/nats-transport.ts, reply).
            if (err || !msg.reply || !isInboxSubject(msg.reply)) return;
            try {
              const answer = answers[verb]() as { metadata?: Record<string, unknown> };
              // A probe's nonce: answer with a member's proof for it (ping-proof.ts).
              if (verb === 'PING' && o.seal !== undefined && msg.data.length > 0) {
                const nonce = new TextDecoder().decode(msg.data);
                if (isPingNonce(nonce)) answer.metadata = { ...answer.metadata, proof: pingProof(o.seal, o.nodeId, nonce) };
              }
              msg.respond(encoder.encode(JSON.stringify(answer)));
            } catch (e) {
              o.log.warn('service discovery answer failed', { verb, err: e });
            }
          },
        }),
      );
    }
  }
  await o.nc.flush();
  return {
    id,
    async stop() {
      for (const s of subs) s.unsubscribe();
    },
  };
}
