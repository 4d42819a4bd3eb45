/**
 * What a client (RingkvClient, ClusterAdmin) is configured with, and what it counts. Apart from the
 * client class so that the request machinery they share (request-session.ts) can take them too.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsAuthSettings } from '../adapters/nats/connection-options.js';
import { operatorDefaults } from '../core/defaults.js';
import type { HedgeDelayOptions } from './hedge-delay.js';
import type { NodeHealthOptions } from './node-health.js';

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

/** RINGKV_COORDINATION=cluster turns client-driven coordination off for every client of a process. */
export function coordinationFromEnv(): 'client' | 'cluster' {
  return process.env.RINGKV_COORDINATION === 'cluster' ? 'cluster' : 'client';
}
