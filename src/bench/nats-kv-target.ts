/**
 * The `nats-kv` bench target: NATS JetStream KV, what a NATS user would reach for instead of
 * ringkv. A bucket with `replicas` (N, default 3) on a JetStream cluster: one the bench starts on
 * loopback (three nats-servers, stores in a temporary directory) or an existing one (--kv-server).
 *
 *   read    kv.get (direct get, which any replica may answer, when the server allows it: KV's default)
 *   update  kv.put (last writer wins)
 *   cart    kv.get, then kv.update(key, value, revision): JetStream's optimistic concurrency, the
 *           nearest thing to a read-merge-write with a context. A wrong revision (another writer
 *           got there first) means get and update again; the retries are counted.
 *
 * R and W have no counterpart: a put is acked after the stream's Raft quorum, a get reads one replica.
 */
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { mergeNatsSettings, natsConnectionOptions, redactUrl } from '../adapters/nats/connection-options.js';
import { natsConnectFailure } from '../client/connect-failure.js';
import { Kvm, type KV } from '@nats-io/kv';
import { jetStreamDurability } from './durability.js';
import { sleep } from './free-port.js';
import { natsKvFaultControl } from './nats-kv-faults.js';
import { startNatsJsCluster, type NatsJsCluster } from './nats-js-cluster.js';
import type { BenchTarget, CartOutcome, ReadOutcome } from './target.js';

export interface NatsKvTargetOptions {
  /** An existing JetStream cluster; without it the bench starts one. */
  kvServer?: string;
  /** The bucket's replicas. */
  replicas: number;
  bucket?: string;
  /** How long a new cluster may take to elect its JetStream leader and make the bucket. */
  readyTimeoutMs?: number;
  say?: (text: string) => void;
}

export const bucketDefault = 'ringkv_bench';
/** Gets and updates one cart operation may try before it counts as an error. */
export const cartRetriesMax = 100;
/** Same as the ringkv client's default deadline, so both sides give up alike. */
const requestTimeoutMs = 5_000;
const readyTimeoutMsDefault = 60_000;
/** JetStream's API error codes for a put whose expected last revision did not match. */
const wrongLastSequenceCodes = new Set([10071, 10164]);

export class CartRetriesExhaustedError extends Error {
  override readonly name = 'CartRetriesExhausted';
  readonly code = 'CART_RETRIES_EXHAUSTED';
}

export async function openNatsKvTarget(opts: NatsKvTargetOptions): Promise<BenchTarget> {
  const say = opts.say ?? (() => undefined);
  const bucketName = opts.bucket ?? bucketDefault;
  let cluster: NatsJsCluster | undefined;
  // An existing server is reached with the same credentials and TLS as every ringkv process (flags
  // moved into the nats CLI's environment); the bench's own loopback cluster needs none.
  let connection: ConnectionOptions;
  let settings = {};
  let servers: string[];
  if (opts.kvServer) {
    settings = mergeNatsSettings({ servers: opts.kvServer }, process.env);
    connection = natsConnectionOptions(settings);
    servers = redactUrl(opts.kvServer).split(',').map((s) => s.trim());
  } else {
    say('starting a local JetStream cluster: 3 nats-servers\n');
    cluster = await startNatsJsCluster();
    servers = cluster.urls;
    connection = natsConnectionOptions({ servers: servers.join(',') });
  }

  const failed = async (err: unknown): Promise<never> => {
    await cluster?.stop({ keepLog: true });
    throw cluster ? new Error(`${(err as Error).message} (the servers' log: ${cluster.logPath})`) : err;
  };
  let nc: NatsConnection;
  try {
    // One connection to the first server, as ringkv's client has one to its NATS server.
    nc = await connect({ ...connection, noRandomize: true, name: 'ringkv-bench', timeout: requestTimeoutMs });
  } catch (err) {
    return failed(natsConnectFailure(err, settings));
  }
  let kv: KV;
  try {
    kv = await createBucket(nc, bucketName, opts.replicas, cluster ? (opts.readyTimeoutMs ?? readyTimeoutMsDefault) : 0);
  } catch (err) {
    await nc.close().catch(() => undefined);
    return failed(err);
  }

  let closed: Promise<void> | undefined;
  return {
    name: 'nats-kv',
    endpoint: cluster
      ? `local JetStream cluster of 3 servers on ${servers.join(',')} (started for this run), bucket ${bucketName}`
      : `JetStream on ${servers.join(',')}, bucket ${bucketName}`,
    durability: jetStreamDurability(nc.info?.version, cluster !== undefined),
    settings: { replicas: opts.replicas },
    ...(cluster ? { faults: natsKvFaultControl(cluster, kv) } : {}),
    ...(cluster ? { processes: () => cluster!.processes().map((p) => ({ role: `nats-server ${p.name}`, pid: p.pid })) } : {}),
    async load(key, value) {
      await kv.put(key, value);
    },
    async read(key): Promise<ReadOutcome> {
      const entry = await kv.get(key);
      const found = entry !== null && entry.operation === 'PUT';
      return { found, siblings: found ? 1 : 0 };
    },
    async update(key, value) {
      await kv.put(key, value);
    },
    async cart(key, value): Promise<CartOutcome> {
      for (let retries = 0; retries <= cartRetriesMax; retries++) {
        const entry = await kv.get(key);
        try {
          if (entry === null) await kv.create(key, value);
          else await kv.update(key, value, entry.revision);
          return { retries, siblings: entry !== null && entry.operation === 'PUT' ? 1 : 0 };
        } catch (err) {
          if (!isWrongRevision(err)) throw err;
        }
      }
      throw new CartRetriesExhaustedError(`${cartRetriesMax} updates of ${key} in a row met a newer revision`);
    },
    close() {
      closed ??= (async () => {
        await nc.close().catch(() => undefined);
        await cluster?.stop();
      })();
      return closed;
    },
  };
}

function isWrongRevision(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' && wrongLastSequenceCodes.has(code);
}

/** Creates (or opens) the bucket, retrying while a new cluster has no JetStream leader yet. */
async function createBucket(nc: NatsConnection, bucket: string, replicas: number, retryForMs: number): Promise<KV> {
  const deadline = Date.now() + retryForMs;
  for (;;) {
    try {
      return await new Kvm(nc).create(bucket, { replicas, history: 1 });
    } catch (err) {
      if (Date.now() >= deadline) throw new Error(`could not create the JetStream KV bucket ${bucket} (replicas ${replicas}): ${(err as Error).message}`);
      await sleep(250);
    }
  }
}
