/**
 * Test support: a cluster on real processes with its two clients, for every test file that runs
 * against `ringkv node` processes (membership, faults, anti-entropy, causality, hostile input) and
 * would otherwise repeat the same set-up and tear-down. One nats-server of its own, `ringkv node` processes on real LMDB in a
 * temporary directory, a RingkvClient and a ClusterAdmin; started before the tests of the file (or
 * of the describe block) that calls `useAdminCluster`, stopped and removed after them, with the
 * nodes' output printed when a test fails.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { ClusterAdmin } from '../../src/client/admin.js';
import { RingkvClient } from '../../src/client/client.js';
import { type Cluster, printNodeOutputOnFailure, startCluster } from './cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from './nats-server.js';

export interface AdminClusterOptions {
  nodes: number;
  /** The ringkv cluster name; also names the data directory. */
  cluster: string;
  /** Extra arguments for every `ringkv node`. */
  args?: string[];
  /** The clients' request timeout (default 3000 ms); the admin's may differ. */
  timeoutMs?: number;
  adminTimeoutMs?: number;
  /** How much of the nodes' output a failed test prints (default: printNodeOutputOnFailure's). */
  outputChars?: number;
  /** Give each node a /metrics port (Cluster.httpPort). */
  httpPorts?: boolean;
}

export interface AdminCluster {
  readonly nats: NatsServerHandle;
  readonly cluster: Cluster;
  readonly client: RingkvClient;
  readonly admin: ClusterAdmin;
}

/** Registers the set-up and tear-down; the fields can be read once the tests run. */
export function useAdminCluster(opts: AdminClusterOptions): AdminCluster {
  let nats: NatsServerHandle | undefined;
  let cluster: Cluster | undefined;
  let client: RingkvClient | undefined;
  let admin: ClusterAdmin | undefined;
  let dataRoot: string | undefined;
  const timeoutMs = opts.timeoutMs ?? 3000;

  beforeAll(async () => {
    nats = await startNatsServer();
    dataRoot = tempDir(`ringkv-${opts.cluster}-`);
    cluster = await startCluster({ nodes: opts.nodes, natsUrl: nats.url, dataRoot, cluster: opts.cluster, args: opts.args, httpPorts: opts.httpPorts });
    client = await RingkvClient.connect({ servers: nats.url, cluster: opts.cluster, timeoutMs });
    admin = await ClusterAdmin.connect({ servers: nats.url, cluster: opts.cluster, timeoutMs: opts.adminTimeoutMs ?? timeoutMs });
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await cluster?.stopAll();
    await nats?.stop();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  printNodeOutputOnFailure(() => cluster, opts.outputChars);

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the test cluster's ${what} is not started (did its beforeAll fail?)`);
    return value;
  };
  return {
    get nats() {
      return started(nats, 'nats-server');
    },
    get cluster() {
      return started(cluster, 'nodes');
    },
    get client() {
      return started(client, 'client');
    },
    get admin() {
      return started(admin, 'admin client');
    },
  };
}
