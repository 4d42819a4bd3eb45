/**
 * A node's metrics, in Prometheus text via prom-client (served on /metrics by http-server.ts), and
 * its health (/livez, /readyz).
 *
 * Request metrics come from createNode's RequestObserver port: a request is timed from the moment
 * the router hands it to the node actor until this node answers it; a request this node forwards is
 * counted as forwarded and timed by the node that answers. Everything else (actors, router drops,
 * NATS drops, inspection) is read from the node when Prometheus scrapes, so it costs nothing between
 * scrapes. Every metric carries the node and cluster as labels.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ScrubStats } from '../adapters/lmdb/lmdb-store.js';
import type { HintTargetSummary } from '../protocol/messages.js';
import type { RequestObserver, RunningNode } from '../runtime/create-node.js';
import { countActors } from '../runtime/inspect-tap.js';
import { LatencyDigest, type SparseCounts } from './latency-digest.js';

/** Requests timed at once; beyond this, requests are counted but not timed (a leak guard). */
export const requestsTimedMax = 65_536;
/** Latency buckets, seconds: from a local read (well under 1 ms) to the longest deadline. */
export const requestSecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const knownOps = new Set(['put', 'del', 'get', 'status', 'hints', 'aae', 'transfers', 'cluster']);
/** Codes that mean the quorum could not be had: too few replicas believed alive, or answering in time. */
const quorumFailureCodes = new Set(['UNAVAILABLE', 'TIMEOUT']);

export interface TransportCounters {
  droppedSends: number;
  droppedReceives: number;
  heldSends?: number;
  refusedReplies?: number;
}

export interface Health {
  live: boolean;
  ready: boolean;
  /** Why not ready (or not live), for people reading /readyz. */
  reason: string;
}

/**
 * The operation a request counts under. A client-driven read (api.local.get: the client asks R
 * replicas and merges) is a get like a coordinated one; `path` tells them apart.
 */
function opLabel(op: string): string {
  if (op === 'local.get') return 'get';
  return knownOps.has(op) ? op : 'other';
}

/** coordinated: this node coordinated the request (or answered it itself); replica: a client-driven read its replica answered. */
function pathLabel(op: string): 'coordinated' | 'replica' {
  return op === 'local.get' ? 'replica' : 'coordinated';
}

/** One operation's figures since the node started, as the dashboard's cluster view reads them. */
export interface OpFigures {
  /** Requests answered, and of those answered with an error. */
  count: number;
  errors: number;
  /** Cumulative latency histogram of the timed ones (latency-digest.ts). */
  latency: SparseCounts;
}

/** Running totals of the client API, as NATS service discovery ($SRV.STATS) reports them. */
export interface ApiTotals {
  requests: number;
  errors: number;
  /** Summed time from arrival to answer, nanoseconds (timed requests only). */
  processingNs: number;
  timed: number;
  lastError: string;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly api: ApiTotals = { requests: 0, errors: 0, processingNs: 0, timed: 0, lastError: '' };
  readonly requests: RequestObserver;
  private node: RunningNode | undefined;
  private transport: TransportCounters | undefined;
  private serving = false;
  private connected: (() => boolean) | undefined;
  private scrub: (() => ScrubStats) | undefined;
  private stopping = false;
  private readonly timed = new Map<string, { op: string; startedAt: number }>();
  /** Per operation: answers, errors and a fine latency histogram (what real percentiles are read from). */
  private readonly ops = new Map<string, { count: number; errors: number; latency: LatencyDigest }>();

  constructor(
    labels: { node: string; cluster: string },
    private readonly now: () => number = () => performance.now(),
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });

    const requestsTotal = new Counter({
      name: 'ringkv_requests_total',
      help: 'Client requests this node answered, by operation, path (coordinated; replica: a client-driven read, one per replica asked) and outcome (ok, or the error code).',
      labelNames: ['op', 'path', 'outcome'],
      registers,
    });
    const requestSeconds = new Histogram({
      name: 'ringkv_request_duration_seconds',
      help: 'Time from a client request reaching this node to its answer, by operation, path and outcome.',
      labelNames: ['op', 'path', 'outcome'],
      buckets: requestSecondsBuckets,
      registers,
    });
    const quorumFailures = new Counter({
      name: 'ringkv_quorum_failures_total',
      help: 'Client requests answered UNAVAILABLE (too few replicas alive) or TIMEOUT (too few answered in time), by operation and code.',
      labelNames: ['op', 'code'],
      registers,
    });
    const forwarded = new Counter({
      name: 'ringkv_requests_forwarded_total',
      help: 'Client requests this node passed on to a node of the preference list (which answers and counts them).',
      labelNames: ['op'],
      registers,
    });
    const untimed = new Counter({
      name: 'ringkv_requests_untimed_total',
      help: `Client requests not timed because ${requestsTimedMax} were already being timed.`,
      registers,
    });
    const self = this;
    new Gauge({
      name: 'ringkv_requests_in_flight',
      help: 'Client requests this node has received and not yet answered or forwarded.',
      registers,
      collect() {
        this.set(self.timed.size);
      },
    });

    this.requests = {
      received: (op, from, reqId) => {
        const key = `${from}\u0000${reqId}`;
        if (this.timed.size >= requestsTimedMax && !this.timed.has(key)) {
          untimed.inc();
          return;
        }
        this.timed.set(key, { op, startedAt: this.now() });
      },
      answered: (from, reqId, kind, code) => {
        const key = `${from}\u0000${reqId}`;
        const started = this.timed.get(key);
        this.timed.delete(key);
        const raw = started?.op ?? (kind.startsWith('api.') ? kind.slice(4).replace(/\.ok$/, '') : 'other');
        const op = opLabel(raw);
        const path = pathLabel(raw);
        const outcome = kind === 'error' ? (code ?? 'INTERNAL') : 'ok';
        requestsTotal.inc({ op, path, outcome });
        const figures = this.opFiguresOf(op);
        figures.count++;
        if (kind === 'error') figures.errors++;
        this.api.requests++;
        if (kind === 'error') {
          this.api.errors++;
          this.api.lastError = outcome;
        }
        if (started) {
          const ms = this.now() - started.startedAt;
          requestSeconds.observe({ op, path, outcome }, ms / 1000);
          figures.latency.record(ms);
          this.api.processingNs += Math.round(ms * 1e6);
          this.api.timed++;
        }
        if (code !== undefined && quorumFailureCodes.has(code)) quorumFailures.inc({ op, code });
      },
      forwarded: (from, reqId) => {
        const key = `${from}\u0000${reqId}`;
        const started = this.timed.get(key);
        this.timed.delete(key);
        forwarded.inc({ op: opLabel(started?.op ?? 'other') });
      },
    };

    new Gauge({
      name: 'ringkv_actors',
      help: 'Live actors on this node, by machine (node, coordinator, replica, gossip, ...).',
      labelNames: ['machine'],
      registers,
      collect() {
        this.reset();
        for (const [machine, n] of countActors(self.node?.actor)) this.set({ machine }, n);
      },
    });
    const fromStats = (name: string, help: string, read: () => number | undefined) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const value = read();
          this.reset();
          if (value !== undefined) this.inc(value);
        },
      });
    fromStats('ringkv_router_received_total', 'Messages the router decoded (client and internal).', () => self.node?.stats.received);
    fromStats('ringkv_router_dropped_invalid_total', 'Internal messages dropped because they failed validation.', () => self.node?.stats.droppedInvalid);
    // Members only (src/runtime/member-gate.ts): what the gate dropped, by role and reason.
    new Counter({
      name: 'ringkv_messages_unauthenticated_total',
      help: 'Messages dropped because they were not sealed by a member of this cluster, by role and reason (unsigned, bad-mac, other-cluster, stale, malformed).',
      labelNames: ['role', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [slot, n] of Object.entries(self.node?.stats.gate.unauthenticated ?? {})) {
          const [role, reason] = slot.split('/');
          this.inc({ role, reason }, n);
        }
      },
    });
    // Replay-proof (src/core/replay-guard.ts): members' sealed messages dropped as possible replays.
    new Counter({
      name: 'ringkv_messages_replayed_total',
      help: "Members' sealed messages dropped before decoding as possible replays, by role and reason (replayed: its id was taken before; before-start: sealed before this node started; reply-unbound: a forward whose reply subject is not sealed; replay-full: the replay guard was full).",
      labelNames: ['role', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [slot, n] of Object.entries(self.node?.stats.gate.replayed ?? {})) {
          const [role, reason] = slot.split('/');
          this.inc({ role, reason }, n);
        }
      },
    });
    new Gauge({
      name: 'ringkv_replay_guard_senders',
      help: 'Sender incarnations the replay guard remembers now (at most replaySendersMax, src/core/replay-guard.ts).',
      registers,
      collect() {
        this.set(self.node?.stats.gate.replaySenders ?? 0);
      },
    });
    fromStats(
      'ringkv_messages_foreign_cluster_total',
      'Messages sealed with another cluster id: another cluster with this name shares this NATS, or a node has the wrong secret.',
      () => self.node?.stats.gate.foreignCluster,
    );
    fromStats('ringkv_messages_authenticated_total', 'Messages that passed the member gate as sealed by a member (a batch counts once).', () => self.node?.stats.gate.authenticated);
    fromStats('ringkv_inspect_unauthenticated_total', 'Inspect requests refused (UNAUTHENTICATED) because they were not sealed with the cluster secret.', () => self.node?.inspect.stats.unauthenticated);
    fromStats(
      'ringkv_versions_refused_total',
      'Entries of versions from peers refused (a counter ringkv could not have issued, or a history past its bound); the rest of each version was kept.',
      () => self.node?.stats.versionsRefused ?? 0,
    );
    fromStats('ringkv_router_rejected_total', 'Client requests the router answered BAD_REQUEST, TOO_LARGE or WRONG_SUBJECT.', () => self.node?.stats.rejected);
    // Stored objects that failed their checksum (src/adapters/lmdb/lmdb-store.ts), and what the scrub has read.
    fromStats('ringkv_objects_corrupt_total', 'Stored objects that failed their checksum (found by a read, the scrub, or at open): dropped here, fetched again from the other replicas by anti-entropy.', () => self.node?.stats.objectsCorrupt);
    fromStats('ringkv_reads_refused_corrupt_total', 'Reads of a key whose copy here failed its checksum, refused so that the asker takes another replica.', () => self.node?.stats.corruptReadsRefused);
    fromStats('ringkv_scrub_objects_checked_total', 'Stored objects the scrub has checked against their checksum.', () => self.scrub?.().objectsChecked);
    fromStats('ringkv_scrub_bytes_checked_total', 'Bytes of stored objects the scrub has checked.', () => self.scrub?.().bytesChecked);
    fromStats('ringkv_scrub_passes_total', 'Whole passes of the scrub over every stored object.', () => self.scrub?.().passes);
    fromStats(
      'ringkv_router_wrong_subject_total',
      'Requests whose kind belongs to another role than their subject (an admin operation on a client subject): answered WRONG_SUBJECT, or dropped on node subjects.',
      () => self.node?.stats.wrongSubject ?? 0,
    );
    fromStats('ringkv_late_answers_total', 'Replica answers that arrived after their coordinator had finished.', () => self.node?.stats.lateAnswers);
    fromStats('ringkv_action_failures_total', 'I/O actions that threw (logged; the actor kept running).', () => self.node?.stats.actionFailures);
    fromStats('ringkv_nats_dropped_sends_total', 'Publishes that failed and were dropped (connection closed, payload too large, too much held while reconnecting).', () => self.transport?.droppedSends);
    fromStats('ringkv_nats_held_sends_total', 'Publishes held while the NATS connection was down, to go out once it was back.', () => self.transport?.heldSends);
    fromStats(
      'ringkv_nats_refused_replies_total',
      'Answers not sent because the request named a reply subject that is no inbox (_INBOX...): a request that tried to make this node publish on a cluster subject.',
      () => self.transport?.refusedReplies,
    );
    fromStats('ringkv_nats_dropped_receives_total', 'Inbound NATS messages ignored (unknown role, or a handler that threw).', () => self.transport?.droppedReceives);
    fromStats('ringkv_inspect_records_total', 'Inspection records sent to people watching.', () => self.node?.inspect.tap.stats.records);
    fromStats('ringkv_inspect_dropped_total', 'Inspection records dropped by the per-session rate limit.', () => self.node?.inspect.tap.stats.dropped);
    new Gauge({
      name: 'ringkv_inspect_sessions',
      help: 'Inspection follow sessions open on this node (0: the tap is off and costs nothing).',
      registers,
      collect() {
        this.set(self.node?.inspect.tap.sessionCount ?? 0);
      },
    });
    // Hinted handoff: what `ringkv hints` shows, read at each scrape.
    const hintGauge = (name: string, help: string, read: (t: HintTargetSummary) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['target'],
        registers,
        collect() {
          this.reset();
          for (const t of self.node?.hints().targets ?? []) this.set({ target: t.target }, read(t));
        },
      });
    hintGauge('ringkv_hints_pending', 'Hints this node keeps for a replica that was down, by target.', (t) => t.count);
    hintGauge('ringkv_hints_pending_bytes', 'Bytes of the objects those hints will deliver, by target.', (t) => t.bytes);
    hintGauge('ringkv_hints_oldest_age_seconds', 'Age of the oldest pending hint, by target.', (t) => t.oldestAgeMs / 1000);
    fromStats('ringkv_hints_delivered_total', 'Hints delivered to their target and removed.', () => self.node?.hints().delivered);
    fromStats('ringkv_hints_dropped_total', 'Hints dropped because their target departed (exiting or removed): they can never be delivered.', () => self.node?.hints().dropped);
    // Anti-entropy: what `ringkv aae` sums up.
    fromStats('ringkv_aae_exchanges_total', 'Merkle exchanges this node finished.', () => self.node?.aae.totals.exchanges);
    fromStats('ringkv_aae_exchanges_failed_total', 'Merkle exchanges that ended without completing (deadline, refusal).', () => self.node?.aae.totals.failed);
    fromStats('ringkv_aae_keys_repaired_total', 'Keys anti-entropy merged on either side of this node\'s exchanges.', () => self.node?.aae.totals.keysRepaired);
    fromStats('ringkv_aae_bytes_sent_total', 'Bytes this node sent in Merkle exchanges.', () => self.node?.aae.totals.bytesSent);
    // Ownership transfer: what `ringkv transfers` shows, summed up.
    new Gauge({
      name: 'ringkv_transfers',
      help: 'Partition transfers (ownership transfer) on this node, by state: running, or waiting (found, not started).',
      labelNames: ['state'],
      registers,
      collect() {
        const t = self.node?.transfers();
        this.set({ state: 'running' }, t?.running ?? 0);
        this.set({ state: 'waiting' }, t?.waiting ?? 0);
      },
    });
    fromStats('ringkv_transfer_objects_sent_total', 'Objects this node handed over and every new owner confirmed.', () => self.node?.transfers().objectsSent);
    fromStats('ringkv_transfer_bytes_sent_total', 'Bytes on the wire of confirmed transfer batches (object bytes times targets).', () => self.node?.transfers().bytesSent);
    fromStats('ringkv_transfer_objects_dropped_total', 'Objects this node deleted after their new owners confirmed them.', () => self.node?.transfers().objectsDropped);
    fromStats('ringkv_transfer_objects_received_total', 'Objects received from other nodes\' transfers and committed here.', () => self.node?.transfers().objectsReceived);
    fromStats('ringkv_transfer_bytes_received_total', 'Bytes of objects received from other nodes\' transfers.', () => self.node?.transfers().bytesReceived);
    // Tombstone reaping: what `ringkv status` shows per node.
    new Gauge({
      name: 'ringkv_tombstones_kept',
      help: 'Tombstones in the partitions this node reaps (it is their first primary: each key counted once in the cluster), at its last sweep.',
      registers,
      collect() {
        this.set(self.node?.tombstones().kept ?? 0);
      },
    });
    fromStats('ringkv_tombstones_reaped_total', 'Tombstones this node deleted by reaping (each replica counts its own).', () => self.node?.tombstones().reaped);
    fromStats('ringkv_reap_sweeps_total', 'Tombstone reaping sweeps this node finished.', () => self.node?.tombstones().sweeps);
    // A counter, not a rate: Prometheus takes rate() over whatever window the reader wants.
    fromStats('ringkv_hints_delivered_bytes_total', 'Bytes of the objects hinted handoff delivered to their targets.', () => self.node?.hints().deliveredBytes);
    new Gauge({
      name: 'ringkv_node_ready',
      help: '1 once the node serves (the same as /readyz), else 0.',
      registers,
      collect() {
        this.set(self.health().ready ? 1 : 0);
      },
    });
  }

  private opFiguresOf(op: string): { count: number; errors: number; latency: LatencyDigest } {
    let f = this.ops.get(op);
    if (!f) {
      f = { count: 0, errors: 0, latency: new LatencyDigest() };
      this.ops.set(op, f);
    }
    return f;
  }

  /** Every operation's answers, errors and latency histogram since start (cumulative: readers subtract). */
  opFigures(): Record<string, OpFigures> {
    const out: Record<string, OpFigures> = {};
    for (const [op, f] of this.ops) out[op] = { count: f.count, errors: f.errors, latency: f.latency.sparse() };
    return out;
  }

  /** The running node, its transport's counters and its NATS connection state: read at each scrape. */
  attach(node: RunningNode, transport?: TransportCounters, connected?: () => boolean, scrub?: () => ScrubStats): void {
    this.node = node;
    this.transport = transport;
    this.connected = connected;
    this.scrub = scrub;
  }

  /** The node attached, once it runs (the dashboard reads it). */
  get attachedNode(): RunningNode | undefined {
    return this.node;
  }

  setServing(serving: boolean): void {
    this.serving = serving;
  }

  /** The node is shutting down: not ready any more, so that traffic goes elsewhere. */
  setStopping(): void {
    this.stopping = true;
  }

  health(): Health {
    const status = this.node?.actor.getSnapshot().status;
    if (this.node && status !== 'active') return { live: false, ready: false, reason: `the node actor is ${String(status)}` };
    if (this.stopping) return { live: true, ready: false, reason: 'the node is stopping' };
    if (!this.node || !this.serving) return { live: true, ready: false, reason: 'the node is starting' };
    if (this.connected && !this.connected()) return { live: true, ready: false, reason: 'the NATS connection is closed' };
    return { live: true, ready: true, reason: 'serving' };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
