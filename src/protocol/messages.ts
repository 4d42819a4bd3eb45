/**
 * The message kinds and their bodies. Client API kinds start with `api.`, replica traffic between
 * nodes with `replica.`. An answer's kind is the request's kind plus `.ok`, or `error`.
 */
import type { MembershipStatus, Plan, StagedChange } from '../core/cluster-state.js';
import type { DvvSet, Sibling, VersionVector } from '../core/dvv.js';
import type { ErrorBody } from './errors.js';

/** Per-request options every client operation may carry. */
export interface RequestOptions {
  n?: number;
  r?: number;
  w?: number;
  /** Primaries that must acknowledge a write (Riak's pw); default 0. */
  pw?: number;
  /** Primaries that must answer a read (Riak's pr); default 0. */
  pr?: number;
  /** false: fallbacks do not count toward W or R (default true: a sloppy quorum, Dynamo §4.6). */
  sloppy?: boolean;
  timeoutMs?: number;
}

export interface ApiPutBody extends RequestOptions {
  key: Uint8Array;
  value: Uint8Array;
  /** The opaque context of an earlier read; absent means "I have seen nothing". */
  context?: Uint8Array;
  /** Set by the node that passed the request on, so a request is forwarded at most once. */
  forwarded?: boolean;
}

export interface ApiDelBody extends RequestOptions {
  key: Uint8Array;
  context?: Uint8Array;
  forwarded?: boolean;
}

export interface ApiGetBody extends RequestOptions {
  key: Uint8Array;
  forwarded?: boolean;
}

/**
 * api.local.get: one node's own replica state of a key, without a coordinator (client-driven reads,
 * Dynamo §6.4). Only on a node's directed api subject. The client asks R replicas, merges their DVV
 * sets itself, and falls back to a coordinated api.get (which read-repairs) when they differ. `n`
 * and the other options are those of the get: the node answers NOT_OWNER when it is not one of
 * the key's targets for that n (its ring differs from the client's).
 */
export interface ApiLocalGetBody extends RequestOptions {
  key: Uint8Array;
}

/** The asked node's replica state of the key (null: it holds nothing for it), tombstones included. */
export interface ApiLocalGetOk {
  state: DvvSet | null;
}

export type ApiStatusBody = Record<string, never>;

export interface ApiPutOk {
  context: Uint8Array;
}

export interface ApiGetOk {
  found: boolean;
  /** Every live sibling, tombstones left out. */
  values: Uint8Array[];
  context: Uint8Array;
}

export interface MemberStatus {
  nodeId: string;
  /** Liveness as the answering node's failure detector sees it. */
  state: 'up' | 'down';
  /** Membership: joining, valid, leaving, exiting or removed (absent from older nodes). */
  status?: MembershipStatus;
  /** A change staged for this member and not committed yet. */
  staged?: string | null;
  partitions: number[];
}

export interface ApiStatusOk {
  cluster: string;
  partitions: number;
  n: number;
  nodeId: string;
  members: MemberStatus[];
  /** Version of the committed ring the answering node routes by. */
  ringVersion?: number;
  /** When the answering node started (ms since the epoch): its uptime. */
  startedAt?: number;
  /** Members that have left the cluster (exiting) or were removed: no longer in `members`. */
  departed?: { nodeId: string; status: MembershipStatus }[];
  /** The answering node's process memory (absent where the runtime has none to report, as in simulation). */
  memory?: ProcessMemory;
  /**
   * What an acknowledged write means on the answering node: 'committed' (the default: committed in
   * LMDB, on disk within about a second) or 'fsync' (started with --fsync: on disk). Absent where the
   * runtime does not know (simulation).
   */
  durability?: DurabilityMode;
}

export type DurabilityMode = 'committed' | 'fsync';

/**
 * A node process's memory when it answered (Node's process.memoryUsage()). Keys live in LMDB, not in
 * JavaScript maps, so heapUsed must not grow with the number of keys stored (issue 8); rss also
 * counts the LMDB pages the process has touched through its memory map, which do grow with the data.
 */
export interface ProcessMemory {
  heapUsedBytes: number;
  /**
   * Heap used just after the last full (mark-sweep) garbage collection: what the process really
   * keeps, without the garbage heapUsed also counts. Absent before the first full collection.
   */
  heapAfterGcBytes?: number;
  heapTotalBytes: number;
  /** Memory outside the JavaScript heap held by JavaScript objects (Buffers). */
  externalBytes: number;
  rssBytes: number;
}

/** `ringkv cluster <op>`: staged membership changes (Riak's plan and commit). */
export const clusterOps = ['join', 'leave', 'force-remove', 'plan', 'commit', 'clear'] as const;
export type ClusterOp = (typeof clusterOps)[number];

export interface ApiClusterBody {
  op: ClusterOp;
  /** The node to join, leave or remove; for leave, absent means the node asked. */
  node?: string;
}

/**
 * gossip.claim: a node forwards an api.cluster request to the claimant (src/core/claimant.ts), with
 * its view (a digest's heartbeats and cluster state), so the claimant knows what the node asked knew
 * (a joining node it heard from) before it applies the request. The claimant answers the client at
 * `replyTo` itself.
 */
export interface ClusterClaimRequest {
  op: ClusterOp;
  node?: string;
  /** The client's reply address, its name and its request id: where and how the claimant answers. */
  replyTo: string;
  client: string;
  reqId: string;
}

export interface ApiClusterOk {
  op: ClusterOp;
  /** The node that answered: for every op but plan, the claimant (the request is forwarded to it). */
  nodeId: string;
  /** The node joined, left or removed (for leave without a node: the node that was asked). */
  node?: string;
  /** The changes staged after this operation (empty after commit or clear). */
  changes: StagedChange[];
  ringVersion: number;
  /** For plan (and commit: what was committed): the moves and the shares before and after. */
  plan?: Plan;
}

/** Coordinator to its own node's replica: make a new dot for this client write. */
export interface ReplicaCoordinateBody {
  p: number;
  key: Uint8Array;
  context: VersionVector;
  value: Sibling;
  /** Down primaries this node keeps hints for, written with the object. */
  hints?: string[];
}

/** Coordinator to the other replicas: sync this state into yours. */
export interface ReplicaPutBody {
  p: number;
  key: Uint8Array;
  state: DvvSet;
  /** Set on a fallback: the down primary it keeps this write for (a hint). */
  hint?: string;
}

export interface ReplicaGetBody {
  p: number;
  key: Uint8Array;
}

export interface ReplicaStateOk {
  state: DvvSet | null;
}

export type ReplicaPutOk = Record<string, never>;

export type { ErrorBody };

export const clientKinds = ['api.put', 'api.del', 'api.get', 'api.local.get', 'api.status', 'api.hints', 'api.aae', 'api.cluster', 'api.transfers'] as const;

/** api.transfers: one partition this node is handing over (ownership transfer). */
export interface TransferRow {
  p: number;
  from: string;
  to: string[];
  /** waiting (queued, or a target judged down), collecting, sending, dropping or pacing. */
  state: string;
  objectsSent: number;
  bytesSent: number;
  /** Objects found in the partition when the transfer started (an estimate: writes keep arriving). */
  objectsTotal: number;
  /** ms since the transfer started, or null while waiting. */
  elapsedMs: number | null;
  objectsPerSec: number;
  bytesPerSec: number;
  /** Estimated ms to finish at the current rate, or null when unknown. */
  etaMs: number | null;
  passes: number;
}

export interface ApiTransfersOk {
  nodeId: string;
  transfers: TransferRow[];
  /** Inbound transfers this node is taking now. */
  inbound: number;
  /** Partition transfers this node finished since it started. */
  completed: number;
}

/** api.hints: one node's pending hints, per target. */
export interface HintTargetSummary {
  target: string;
  count: number;
  bytes: number;
  oldestAgeMs: number;
}

export interface ApiHintsOk {
  nodeId: string;
  targets: HintTargetSummary[];
  /** Hints delivered (acknowledged by their target) since this node started. */
  delivered: number;
  /** Delivery rate over the last few seconds. */
  deliveredPerSec: number;
  deliveredBytesPerSec: number;
  /** Hints dropped since this node started because their target departed (exiting or removed). */
  dropped: number;
}
export type ClientKind = (typeof clientKinds)[number];

export const replicaRequestKinds = ['replica.coordinate', 'replica.put', 'replica.get'] as const;
export const replicaAnswerKinds = ['replica.coordinate.ok', 'replica.put.ok', 'replica.get.ok', 'replica.error'] as const;
