/**
 * The process entry of one node (`ringkv node`): connects to NATS, opens LMDB, builds the node with
 * the production ports, and stops cleanly on SIGINT or SIGTERM. A crash (kill -9) loses nothing that
 * was acknowledged: acks wait for the LMDB commit.
 *
 * A graceful stop (SIGTERM, SIGINT), in order: /readyz turns false; the node leaves the api queue
 * group and refuses new puts, deletes and coordinated gets with NOT_READY (the client asks the
 * key's next node), while it keeps serving replica traffic and client-driven reads; it waits until
 * every request it coordinates has been answered (each ends by its deadline, so at most the longest
 * request deadline, bounded by `drainMsMax`); then it stops gossip and the actors, lets the last
 * group commit land and syncs LMDB (markCleanStop: the next start keeps its epoch), and closes NATS.
 * Hints it holds stay in LMDB and are delivered after it restarts; a node that goes for good leaves
 * the cluster first (`ringkv cluster leave`), which hands over its partitions and hints before it
 * exits. A second signal during the stop ends the process at once (Node's default).
 */
import { defaultLimits, keyStoredBytesBound } from '../protocol/limits.js';
import { rateLimitedLog } from '../runtime/log-limiter.js';
import { randomBytes } from 'node:crypto';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { connectNats } from '../adapters/nats/nats-transport.js';
import { NatsTransport } from '../adapters/nats/nats-transport.js';
import path from 'node:path';
import { LmdbStore, scrubBytesPerSecDefault } from '../adapters/lmdb/lmdb-store.js';
import { markRestored, storedClusterId } from '../runtime/identity.js';
import { type BackupManifest, BackupRequestError, defaultBackupRoot, restoreDataDir, takeBackup } from './backup.js';
import { namePattern } from '../protocol/subjects.js';
import type { ProcessMemory } from '../protocol/messages.js';
import { systemClock } from '../ports/clock.js';
import { createNode, requestTimeoutMsDefault } from '../runtime/create-node.js';
import { jsonLog, type LogLevel } from './json-log.js';
import { Dashboard } from './dashboard/routes.js';
import { startHttpServer } from './http-server.js';
import { NodeMetrics } from './metrics.js';
import { startServiceDiscovery } from './service-discovery.js';
import { requireClusterSecret, sealKeyOf } from './cluster-secret.js';
import { refuseOtherCluster } from './cluster-probe.js';
import { operatorDefaults } from '../core/defaults.js';
import { restoreProblem } from '../core/reap.js';

export interface NodeProcessOptions {
  nodeId: string;
  dataDir: string;
  /** The members of a new cluster (each forms the same first ring); empty when joining through seeds. */
  members: string[];
  /** Members to join through: a node with no stored cluster state learns the cluster from one. */
  seeds?: string[];
  cluster: string;
  server: string;
  partitions?: number;
  n?: number;
  valueBytesMax?: number;
  /** The configured bound on a key's stored size (limits.ts), before it is lowered to fit the NATS max_payload. */
  keyStoredBytesMax?: number;
  requestTimeoutMs?: number;
  fallbackWaitMs?: number;
  /** Gossip round in ms (failure detection takes about five rounds). */
  gossipRoundMs?: number;
  /** Hinted handoff delivery rate limit, bytes per second. */
  handoffRateBytesPerSec?: number;
  /** Anti-entropy: how often a round of Merkle exchanges starts (0: never), its byte rate, and exchanges at once. */
  aaeIntervalMs?: number;
  aaeBytesPerSec?: number;
  aaeExchangesMax?: number;
  /** Ownership transfer: partitions handed over at once, inbound transfers taken at once, and the byte rate. */
  transfersMax?: number;
  transfersInboundMax?: number;
  transferRateBytesPerSec?: number;
  /** Make an ack mean "on disk" rather than "committed in LMDB, on disk within a second". */
  fsync?: boolean;
  /** Bytes of stored objects the scrub checks against their checksums per second (0: off). */
  scrubRateBytesPerSec?: number;
  /** Where `ringkv backup` may write this node's backups (default: backups/ beside the data directory). */
  backupDir?: string;
  /** Start from this backup (the data directory must be empty), with a new epoch. */
  restoreFrom?: string;
  /** Restore a backup older than the tombstone grace period anyway (deleted values may come back). */
  restoreOlderThanGrace?: boolean;
  /** Tombstone reaping: a sweep at most this often (0: never), and the grace period. */
  reapIntervalMs?: number;
  reapGraceMs?: number;
  logLevel?: LogLevel;
  /** Serve /metrics, /livez and /readyz on this port (0: any free port); no HTTP server when absent. */
  httpPort?: number;
  /** The address the HTTP server binds (default 0.0.0.0). */
  httpHost?: string;
  /** Stream the actors' inspection events to the Stately inspector at this ws:// URL (stately-inspector.ts). */
  statelyInspect?: string;
  /** A graceful stop waits at most this long for the requests in flight (default: the request deadline + 1 s). */
  drainMsMax?: number;
}

/** How a node process ended: stopped by a signal, or it left the cluster (its data is of no more use here). */
export interface NodeProcessEnd {
  left: boolean;
  reason: string;
}

/** Beyond the drain, what closing NATS and LMDB may take before the process gives up on a clean stop. */
export const stopCloseMsMax = 5_000;

/** The drain bound when none is given: a request in flight ends by its deadline, plus a margin for its answer. */
export function drainMsDefault(requestTimeoutMs: number = requestTimeoutMsDefault): number {
  return requestTimeoutMs + operatorDefaults.stopDrainMarginMs;
}

export class ConfigError extends Error {}

/** A restore's refusals (not a whole backup, another node's, a data directory that holds data) are configuration errors. */
function restoreFrom(from: string, dataDir: string, nodeId: string, graceMs: number | undefined): BackupManifest | undefined {
  try {
    // A backup older than the grace period may hold values whose tombstones are reaped (src/core/reap.ts).
    const check = graceMs === undefined ? undefined : (m: BackupManifest) => {
      const problem = restoreProblem(Date.parse(m.takenAt), Date.now(), graceMs);
      if (problem) throw new BackupRequestError(`cannot restore ${from}: ${problem}`);
    };
    return restoreDataDir(from, dataDir, nodeId, check);
  } catch (err) {
    if (err instanceof BackupRequestError) throw new ConfigError(err.message);
    throw err;
  }
}

/** The fields that were given, so that the defaults apply to the rest. */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function checkNodeOptions(o: NodeProcessOptions): void {
  if (!namePattern.test(o.nodeId)) throw new ConfigError(`node id "${o.nodeId}" must be 1-64 letters, digits, - or _`);
  if (!namePattern.test(o.cluster)) throw new ConfigError(`cluster name "${o.cluster}" must be 1-64 letters, digits, - or _`);
  for (const m of [...o.members, ...(o.seeds ?? [])]) if (!namePattern.test(m)) throw new ConfigError(`member id "${m}" must be 1-64 letters, digits, - or _`);
  if (o.members.length > 0 && !o.members.includes(o.nodeId)) throw new ConfigError(`--members (${o.members.join(',')}) must include this node (${o.nodeId})`);
  if (o.members.length > 0 && (o.seeds ?? []).length > 0) throw new ConfigError('give --members (a new cluster) or --seeds (join one), not both');
  if (o.statelyInspect !== undefined && !/^wss?:\/\/[^/\s]+/.test(o.statelyInspect)) throw new ConfigError(`--stately-inspect needs a ws:// or wss:// URL (e.g. ws://127.0.0.1:8080), not "${o.statelyInspect}"`);
}

export async function runNodeProcess(o: NodeProcessOptions): Promise<NodeProcessEnd> {
  checkNodeOptions(o);
  // Before anything else: a node without the secret can neither be heard nor hear (NO_SECRET, exit 9).
  const found = requireClusterSecret(process.env, (o.seeds ?? []).length > 0 ? 'a node joining through --seeds' : 'a node');
  const seal = sealKeyOf(found.secret, o.cluster);
  // Warnings and errors at most once per text per 10 s (src/runtime/log-limiter.ts), the process's own too.
  const log = rateLimitedLog(jsonLog(o.logLevel ?? 'info', { node: o.nodeId }), Date.now);
  // Where the secret came from and the id it gives, never the secret itself.
  log.info('cluster secret loaded', { source: found.source, clusterId: seal.clusterId });
  if (found.loose) log.warn('the cluster secret file can be read by other users of this machine: chmod 600 it', { source: found.source });
  const metrics = new NodeMetrics({ node: o.nodeId, cluster: o.cluster });
  // Loaded only when asked for: without the flag neither the module nor @statelyai/inspect is imported.
  const stately = o.statelyInspect === undefined ? undefined : (await import('./stately-inspector.js')).startStatelyInspector(o.statelyInspect, log);
  const dashboard = new Dashboard(metrics, log);
  const http = o.httpPort === undefined ? undefined : await startHttpServer({ port: o.httpPort, host: o.httpHost, metrics, log, routes: dashboard.routes() });
  const restored = o.restoreFrom === undefined ? undefined : restoreFrom(o.restoreFrom, o.dataDir, o.nodeId, o.restoreOlderThanGrace === true ? undefined : (o.reapGraceMs ?? operatorDefaults.reapGraceMs));
  const nc = await connectNats(o.server, `ringkv-node-${o.nodeId}`);
  const store = LmdbStore.open(o.dataDir, { sync: o.fsync ?? false, scrubBytesPerSec: o.scrubRateBytesPerSec ?? scrubBytesPerSecDefault });
  try {
    // Only members' proved answers count; a node whose data says it is a member is not turned away
    // by answers it cannot check (cluster-probe.ts).
    const probe = await refuseOtherCluster(nc, o.cluster, seal, storedClusterId(store) === seal.clusterId);
    if (probe.others.length > 0 || probe.impostors.length > 0) {
      log.warn(`nodes answer $SRV.PING for cluster ${o.cluster} without a member's proof: another cluster of this name, or an impostor (an open NATS cannot stop one: use --secure)`, {
        members: probe.members,
        otherClusters: probe.others.map((a) => `${a.node}:${a.clusterId ?? 'none'}`).slice(0, 16),
        claimingThisCluster: probe.impostors.map((a) => a.node).slice(0, 16),
      });
    }
  } catch (err) {
    await store.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await http?.close();
    throw err;
  }
  if (restored) {
    await markRestored(store);
    log.info('restored from a backup: this start takes a new epoch; anti-entropy brings the data up to date', { from: o.restoreFrom, backupEpoch: restored.epoch, takenAt: restored.takenAt });
  }
  const backupRoot = path.resolve(o.backupDir ?? defaultBackupRoot(o.dataDir));
  const transport = new NatsTransport({ nc, cluster: o.cluster, nodeId: o.nodeId, seal });
  // What the NATS server says it carries at most, from its INFO at connect: every key must fit.
  const maxPayload = nc.info?.max_payload;
  const keyStoredBytesMax = keyStoredBytesBound(o.keyStoredBytesMax ?? defaultLimits.keyStoredBytesMax, maxPayload);
  log.info('key size bound', { keyStoredBytesMax, natsMaxPayload: maxPayload });
  const node = await createNode(
    {
      nodeId: o.nodeId,
      cluster: o.cluster,
      members: o.members,
      seeds: o.seeds,
      partitions: o.partitions,
      quorum: o.n === undefined ? undefined : { n: o.n },
      limits: { keyStoredBytesMax, ...(o.valueBytesMax === undefined ? {} : { valueBytesMax: o.valueBytesMax }) },
      requestTimeoutMs: o.requestTimeoutMs,
      fallbackWaitMs: o.fallbackWaitMs,
      gossipRoundMs: o.gossipRoundMs,
      handoff: o.handoffRateBytesPerSec === undefined ? undefined : { rateBytesPerSec: o.handoffRateBytesPerSec },
      antiEntropy: definedOnly({ intervalMs: o.aaeIntervalMs, bytesPerSec: o.aaeBytesPerSec, exchangesMax: o.aaeExchangesMax }),
      transfer: definedOnly({ transfersMax: o.transfersMax, inboundMax: o.transfersInboundMax, rateBytesPerSec: o.transferRateBytesPerSec }),
      reap: definedOnly({ intervalMs: o.reapIntervalMs, graceMs: o.reapGraceMs }),
    },
    { transport, seal, store, clock: systemClock, log, newEpoch: () => randomBytes(4).toString('hex'), requests: metrics.requests, memory: processMemoryReader(), durability: o.fsync ? 'fsync' : 'committed', inspect: stately?.inspect, backup: (dir, identity) => takeBackup(store, backupRoot, dir, identity, o.cluster) },
  );
  metrics.attach(node, transport, () => !nc.isClosed(), () => store.scrubStats);
  dashboard.attach({ nc, cluster: o.cluster, seal });
  metrics.setServing(true);
  const service = await startServiceDiscovery({ nc, cluster: o.cluster, clusterId: seal.clusterId, seal, nodeId: o.nodeId, epoch: () => node.identity.epoch, metrics, log });

  const end = await new Promise<NodeProcessEnd>((resolve) => {
    // A node that has left the cluster (leave, after handing everything over; or force-remove)
    // stops as if told to, and says so in its exit code (the caller's), so that a supervisor does
    // not start it again and again.
    void node.exited.then((reason) => stop({ left: true, reason: `left the cluster: ${reason}` }));
    const stop = (e: NodeProcessEnd) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(e);
    };
    const onInt = () => stop({ left: false, reason: 'SIGINT' });
    const onTerm = () => stop({ left: false, reason: 'SIGTERM' });
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  const drainMs = o.drainMsMax ?? drainMsDefault(o.requestTimeoutMs);
  log.info('stopping', { signal: end.reason, left: end.left, drainMsMax: drainMs });
  metrics.setStopping();
  // The stop is bounded: should closing NATS or LMDB hang, the process ends anyway (exit 1, unexpected).
  const watchdog = setTimeout(() => {
    log.error('the stop took too long; exiting without a clean stop', { afterMs: drainMs + stopCloseMsMax });
    process.exit(1);
  }, drainMs + stopCloseMsMax);
  watchdog.unref();
  const drained = await node.drain(drainMs);
  if (drained.inFlight > 0) log.warn('stopping with requests still in flight: they get no answer from this node', drained);
  else log.info('drained', drained);
  await service.stop();
  await dashboard.close();
  await node.stop();
  await store.close();
  await nc.close();
  stately?.stop();
  await http?.close();
  clearTimeout(watchdog);
  log.info('stopped', { left: end.left });
  return end;
}

/**
 * This process's memory, as api.status reports it. Starts watching full garbage collections (an
 * observer that runs after each one, nothing per request) to know the heap used just after the
 * newest one (ProcessMemory.heapAfterGcBytes).
 */
function processMemoryReader(): () => ProcessMemory {
  let heapAfterGcBytes: number | undefined;
  const observer = new PerformanceObserver((list) => {
    const major = list.getEntries().some((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    if (major) heapAfterGcBytes = process.memoryUsage().heapUsed;
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    const m = process.memoryUsage();
    return {
      heapUsedBytes: m.heapUsed,
      ...(heapAfterGcBytes !== undefined ? { heapAfterGcBytes } : {}),
      heapTotalBytes: m.heapTotal,
      externalBytes: m.external,
      rssBytes: m.rss,
    };
  };
}
