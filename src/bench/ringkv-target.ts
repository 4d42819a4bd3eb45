/**
 * The `ringkv` bench target: a RingkvClient against a running cluster (--server), or against a
 * throwaway local cluster that it starts with the local cluster launcher (up()) on a free loopback
 * port, in a temporary data directory, and stops (and deletes) at close.
 *
 * Updates carry a context, as a Dynamo application's writes do: the target keeps the last context
 * it saw for each key (from reads, puts and merges of any worker), so an update supersedes what this
 * client last saw of the key. A blind put would add a sibling every time, and a hot key would soon
 * reach the sibling limit. Two workers that update one key at once still leave siblings; reads
 * report them, and the next update with a fresh context folds them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RingkvClient } from '../client/client.js';
import { partitionCountDefault } from '../core/ring.js';
import { up, type LocalCluster } from '../server/local-cluster.js';
import { ringkvDurability } from './durability.js';
import { freePort, sleep } from './free-port.js';
import { readClusterMemory } from './memory.js';
import { readEachNode } from './node-status.js';
import { ringkvFaultControl } from './ringkv-faults.js';
import { divertProcessOutput, type Diversion } from './output-diversion.js';
import type { BenchTarget, CartOutcome, ReadOutcome } from './target.js';

export interface RingkvTargetOptions {
  /** Start a local cluster of `nodes` for the run. */
  local: boolean;
  /** NATS URL of an existing cluster (ignored with local unless given explicitly). */
  server?: string;
  /** Cluster name of an existing cluster. */
  cluster: string;
  n: number;
  r: number;
  w: number;
  /** Nodes of a local cluster (default 3). */
  nodes?: number;
  /** How long a local cluster may take to serve a quorum write and read. */
  readyTimeoutMs?: number;
  /** Called with lines for people while the cluster starts (stderr in the CLI). */
  say?: (text: string) => void;
  /** A local cluster's nodes run with --fsync (an ack means on disk). */
  fsync?: boolean;
}

/** The most per-key contexts the target remembers; past it the oldest are forgotten. */
export const contextCacheMax = 1_000_000;
export const localNodesDefault = 3;
/** What one machine's ports and cores sensibly hold; a larger cluster is a test of the machine. */
export const localNodesMax = 32;
const readyTimeoutMsDefault = 60_000;
/** Left for the last lines of the stopped processes to reach the log before it closes. */
const logDrainMs = 300;

export async function openRingkvTarget(opts: RingkvTargetOptions): Promise<BenchTarget> {
  const say = opts.say ?? (() => undefined);
  let cluster: LocalCluster | undefined;
  let diversion: Diversion | undefined;
  let tempRoot: string | undefined;
  let servers = opts.server;
  let clusterName = opts.cluster;
  const nodes = opts.nodes ?? localNodesDefault;

  const cleanup = async (keepLog: boolean) => {
    if (cluster) await cluster.stop();
    if (diversion) {
      await sleep(logDrainMs);
      await diversion.restore();
    }
    if (tempRoot && !keepLog) rmSync(tempRoot, { recursive: true, force: true });
    else if (tempRoot) rmSync(path.join(tempRoot, 'data'), { recursive: true, force: true });
  };

  if (opts.local) {
    tempRoot = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-'));
    servers = opts.server ?? `nats://127.0.0.1:${await freePort()}`;
    clusterName = `bench-${randomBytes(3).toString('hex')}`;
    say(`starting a local ringkv cluster: ${nodes} nodes on ${servers} (log: ${path.join(tempRoot, 'cluster.log')})\n`);
    diversion = divertProcessOutput(path.join(tempRoot, 'cluster.log'));
    try {
      cluster = await up({ nodes, dataDir: path.join(tempRoot, 'data'), server: servers, cluster: clusterName, partitions: partitionCountDefault, ...(opts.fsync ? { nodeArgs: ['--fsync'] } : {}) });
    } catch (err) {
      await cleanup(true);
      throw err;
    }
  }

  let client: RingkvClient;
  try {
    client = await RingkvClient.connect({ ...(servers ? { servers } : {}), cluster: clusterName });
  } catch (err) {
    await cleanup(true);
    throw err;
  }

  const quorum = { n: opts.n, r: opts.r, w: opts.w };
  if (cluster) {
    try {
      await waitUntilServing(client, quorum, opts.readyTimeoutMs ?? readyTimeoutMsDefault);
    } catch (err) {
      await client.close().catch(() => undefined);
      await cleanup(true);
      throw new Error(`${(err as Error).message} (the cluster's log: ${path.join(tempRoot!, 'cluster.log')})`);
    }
  }

  const contexts = new Map<string, Uint8Array>();
  const remember = (key: string, context: Uint8Array) => {
    if (contexts.size >= contextCacheMax && !contexts.has(key)) contexts.delete(contexts.keys().next().value!);
    contexts.set(key, context);
  };
  // A cluster the bench did not start may hold the keys already: load with a read-merge-write
  // so that a second run does not pile siblings onto the first one's values.
  const fresh = cluster !== undefined;
  let closed: Promise<void> | undefined;
  // What an ack means, as the nodes say (api.status); a node that does not answer says nothing.
  const members = await client.status().then((s) => s.members.map((m) => m.nodeId)).catch(() => [] as string[]);
  const modes = await Promise.all(members.map((via) => client.status({ via }).then((s) => s.durability).catch(() => undefined)));
  const durability = ringkvDurability(modes);

  return {
    name: 'ringkv',
    endpoint: cluster
      ? `local cluster "${clusterName}" of ${nodes} nodes on ${servers} (started for this run)`
      : `cluster "${clusterName}" on ${servers ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222'}`,
    durability,
    settings: { N: opts.n, R: opts.r, W: opts.w, ...(cluster ? { nodes } : {}) },
    ...(cluster ? { faults: ringkvFaultControl(cluster, client, { ...(servers ? { servers } : {}), cluster: clusterName }, quorum) } : {}),
    ...(cluster ? { processes: () => cluster!.processes().map((p) => ({ role: p.isNode ? `node ${p.label}` : 'nats-server', pid: p.pid })) } : {}),
    async load(key, value) {
      if (fresh) {
        const { context } = await client.put(key, value, quorum);
        remember(key, context);
      } else {
        const { context } = await client.merge(key, () => value, quorum);
        remember(key, context);
      }
    },
    async read(key): Promise<ReadOutcome> {
      const result = await client.get(key, { n: quorum.n, r: quorum.r });
      remember(key, result.context);
      return { found: result.found, siblings: result.values.length };
    },
    async update(key, value) {
      const context = contexts.get(key);
      const { context: next } = await client.put(key, value, context ? { ...quorum, context } : quorum);
      remember(key, next);
    },
    async cart(key, value): Promise<CartOutcome> {
      let siblings = 0;
      const { context } = await client.merge(
        key,
        (values) => {
          siblings = values.length;
          return value;
        },
        quorum,
      );
      remember(key, context);
      return { retries: 0, siblings };
    },
    memory: (onMissing) => readClusterMemory(client, onMissing),
    costs: (onMissing) => readEachNode(client, (status) => status.costs, onMissing),
    close() {
      closed ??= (async () => {
        await client.close().catch(() => undefined);
        await cleanup(false);
      })();
      return closed;
    },
  };
}

/** Waits until a quorum write and read of a probe key succeed: every node has joined. */
async function waitUntilServing(client: RingkvClient, quorum: { n: number; r: number; w: number }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const probe = `ringkv-bench-probe-${randomBytes(4).toString('hex')}`;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await client.put(probe, new Uint8Array([1]), { ...quorum, timeoutMs: 2_000 });
      await client.get(probe, { n: quorum.n, r: quorum.r, timeoutMs: 2_000 });
      return;
    } catch (err) {
      last = err;
      await sleep(200);
    }
  }
  throw new Error(`the local cluster did not serve N=${quorum.n} R=${quorum.r} W=${quorum.w} within ${timeoutMs} ms: ${(last as Error)?.message ?? 'no answer'}`);
}
