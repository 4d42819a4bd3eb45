/**
 * The ring a client routes by, and the cluster id it accepts rings from. The ring is fetched from
 * the nodes (api.status), again every few seconds, and at once when an answer suggests it is stale
 * (NOT_OWNER, an answer from a node it does not know). A status answer of another cluster id (a
 * stray cluster with the same name on the same NATS) never hands over its ring.
 */
import { performance } from 'node:perf_hooks';
import type { ApiStatusOk } from '../protocol/messages.js';
import type { ClientStats } from './client-options.js';
import { ringFromStatus, supersedes, type RingView } from './ring-view.js';

/** With a given cluster id and no ring yet, the pause between two ring fetches. */
const pinnedRingRetryMs = 50;
/** Refreshes the ring asks for on a hint of staleness, at most one per this many ms. */
const ringRefreshMinGapMs = 250;

export interface RingKeeperOptions {
  /** Keep a ring at all: false with coordination 'cluster' (every request through the queue group). */
  clientDriven: boolean;
  /** The cluster id given (option or RINGKV_CLUSTER_ID), if any. */
  clusterId: string | undefined;
  refreshMs: number;
  /** How long a first fetch may keep trying, with a given cluster id (the request deadline). */
  timeoutMs: number;
  /** One status answer of any node (the fetch). */
  fetchStatus: () => Promise<ApiStatusOk>;
  /** Whether the connection is closed: a closed one ends the wait for a first ring. */
  isClosed: () => boolean;
  stats: ClientStats;
}

export class RingKeeper {
  /** The cluster id this client accepts rings from: given, or pinned from the first status answer. */
  private pinnedClusterId: string | undefined;
  /**
   * The cluster id was given, not learned from a first answer: then a key operation never goes
   * through the API queue group, which anyone on an open NATS can join and answer; it waits for a
   * ring from a node of that id and goes to the key's nodes.
   */
  readonly clusterIdGiven: boolean;
  private current: RingView | undefined;
  private fetching: Promise<void> | undefined;
  private lastFetchAt = Number.NEGATIVE_INFINITY;
  private readonly refreshTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly o: RingKeeperOptions) {
    this.pinnedClusterId = o.clusterId === undefined || o.clusterId === '' ? undefined : o.clusterId;
    this.clusterIdGiven = this.pinnedClusterId !== undefined;
    if (o.clientDriven) {
      this.refreshTimer = setInterval(() => void this.refresh(), o.refreshMs);
      this.refreshTimer.unref?.();
    }
  }

  /** The ring as last fetched (undefined until then, or with coordination 'cluster'). */
  get view(): RingView | undefined {
    return this.current;
  }

  /** The cluster id accepted (undefined before the first status answer when none was given). */
  get clusterId(): string | undefined {
    return this.pinnedClusterId;
  }

  /** The ring to route by: fetched first when the client has none yet. */
  async ring(): Promise<RingView | undefined> {
    if (!this.o.clientDriven) return undefined;
    if (this.current === undefined && this.clusterIdGiven) {
      // The queue group may answer for another cluster (a stray, an impostor): ask again until a node
      // of the given id has handed over its ring, for at most a request's deadline.
      const until = performance.now() + this.o.timeoutMs;
      while (this.current === undefined && performance.now() < until && !this.o.isClosed()) {
        await this.refresh();
        if (this.current === undefined) await new Promise((r) => setTimeout(r, pinnedRingRetryMs));
      }
      return this.current;
    }
    if (this.current === undefined && performance.now() - this.lastFetchAt > ringRefreshMinGapMs) await this.refresh();
    return this.current;
  }

  /** Fetches the ring again (one fetch at a time; a caller during a fetch shares it). */
  refresh(): Promise<void> {
    if (this.fetching) return this.fetching;
    this.lastFetchAt = performance.now();
    this.fetching = (async () => {
      try {
        const status = await this.o.fetchStatus();
        if (!this.accepts(status)) return;
        const view = ringFromStatus(status);
        if (typeof view !== 'string' && supersedes(view, this.current)) {
          this.current = view;
          this.o.stats.ringRefreshes++;
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
  suspectStale(): void {
    if (this.o.clientDriven && performance.now() - this.lastFetchAt > ringRefreshMinGapMs) void this.refresh();
  }

  /**
   * Whether a status answer comes from this client's cluster: the first one pins its cluster id (a
   * node of a cluster with ids always sends one), and every later one must carry the same.
   */
  accepts(status: ApiStatusOk): boolean {
    if (typeof status.clusterId !== 'string') {
      this.o.stats.foreignAnswers++;
      return false;
    }
    this.pinnedClusterId ??= status.clusterId;
    if (status.clusterId === this.pinnedClusterId) return true;
    this.o.stats.foreignAnswers++;
    return false;
  }

  stop(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
  }
}
