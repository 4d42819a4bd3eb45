/**
 * The message kinds and their bodies. Client API kinds start with `api.`, replica traffic between
 * nodes with `replica.`. An answer's kind is the request's kind plus `.ok`, or `error`.
 */
import type { Plan, StagedChange } from '../core/cluster-state.js';
import type { DvvSet, Sibling, VersionVector } from '../core/dvv.js';
import type { Static } from '@sinclair/typebox';
import type { ErrorBody } from './errors.js';
import type {
  ApiDelBodySchema,
  ApiGetBodySchema,
  ApiGetOkSchema,
  ApiLocalGetBodySchema,
  ApiLocalGetOkSchema,
  ApiPutBodySchema,
  ApiPutOkSchema,
  ApiStatusOkSchema,
  DepartureStatusSchema,
  MemberStatusSchema,
  ProcessMemorySchema,
} from './schemas.js';

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

/**
 * The request bodies as they travel (src/protocol/schemas.ts defines them; these types are derived
 * from the schemas). Options may be nil, as MessagePack clients often send for "none".
 */
export type ApiPutBody = Static<typeof ApiPutBodySchema>;
export type ApiDelBody = Static<typeof ApiDelBodySchema>;
export type ApiGetBody = Static<typeof ApiGetBodySchema>;
/**
 * api.local.get: one node's own replica state of a key, without a coordinator (client-driven reads,
 * Dynamo §6.4). Only on a node's directed api subject. The client asks R replicas, merges their DVV
 * sets itself, and falls back to a coordinated api.get (which read-repairs) when they differ. `n`
 * and the other options are those of the get: the node answers NOT_OWNER when it is not one of
 * the key's targets for that n (its ring differs from the client's).
 */
export type ApiLocalGetBody = Static<typeof ApiLocalGetBodySchema>;

/** The asked node's replica state of the key (null: it holds nothing for it), tombstones included. */
export interface ApiLocalGetOk {
  state: DvvSet | null;
}

export type ApiStatusBody = Record<string, never>;

export type ApiPutOk = Static<typeof ApiPutOkSchema>;
/** Every live sibling (tombstones left out), found, and the context of all of it. */
export type ApiGetOk = Static<typeof ApiGetOkSchema>;
/** One member as the answering node sees it (liveness, membership, staged change, partitions). */
export type MemberStatus = Static<typeof MemberStatusSchema>;
/**
 * api.status.ok: the answering node's view (schemas.ts says what each field means). `memory` is the
 * process's memory when it answered: keys live in LMDB, not in JavaScript maps, so heapUsed must not
 * grow with the number of keys stored (issue 8); rss also counts the LMDB pages the process touched.
 * `durability` is what an acknowledged write means there: 'committed' (in LMDB, on disk within about
 * a second) or 'fsync' (started with --fsync: on disk); absent where the runtime does not know.
 */
export type ApiStatusOk = Static<typeof ApiStatusOkSchema>;
export type DepartureStatus = Static<typeof DepartureStatusSchema>;
export type DurabilityMode = NonNullable<ApiStatusOk['durability']>;
export type ProcessMemory = Static<typeof ProcessMemorySchema>;

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
  /** On the wire, the encoded DVV set (bin) or the set itself (older nodes); routed as the set. */
  state: DvvSet;
  /**
   * The bytes the state arrived as: set by the router alone (never taken from the wire), when the
   * state came encoded and screening left it whole, so the replica can store them as they are.
   */
  encoded?: Uint8Array;
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

// What the TypeScript client sends and what nodes answer must fit the schemas: these fail to compile
// when a hand-written type and its schema part.
type Fits<A, B extends A> = B;
export type RequestOptionsFitSchema = Fits<Static<typeof ApiGetBodySchema>, RequestOptions & { key: Uint8Array }>;
export type LocalGetOkFitsSchema = Fits<Static<typeof ApiLocalGetOkSchema>, ApiLocalGetOk>;

/**
 * Request kinds by the role of the subject they must arrive on (src/protocol/subjects.ts). Client
 * kinds read and write keys, and read the ring (api.status: the client library routes by it, so it
 * is a client operation, read-only); admin kinds change or inspect how the cluster runs. A node
 * refuses a kind on another role's subject with WRONG_SUBJECT, so a NATS permission on the subjects
 * is a permission on the operations.
 */
export const clientKinds = ['api.put', 'api.del', 'api.get', 'api.local.get', 'api.status'] as const;
export const adminKinds = ['api.hints', 'api.aae', 'api.cluster', 'api.transfers', 'api.backup'] as const;
/**
 * What one node passes on to another (the forward role): the requests a coordinator runs, and the
 * status a node that has not learned the ring yet passes on to its seed.
 */
export const forwardKinds = ['api.put', 'api.del', 'api.get', 'api.status'] as const;
export const requestKinds = [...clientKinds, ...adminKinds] as const;

/** The longest backup directory an api.backup may name. */
export const backupDirCharsMax = 4096;

/**
 * api.backup {dir} to one node: a consistent, compacted copy of its LMDB environment, written on
 * the node's own host into `dir` (relative to the node's backup directory, or inside it).
 */
export interface ApiBackupOk {
  nodeId: string;
  /** The directory the copy was written to, as the node resolved it. */
  dir: string;
  /** Size of the copy (data.mdb). */
  bytes: number;
  /** The epoch the node ran with when the copy was taken (a restore takes a new one). */
  epoch: string;
  tookMs: number;
}

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
  /** Bytes of the objects those hints delivered (absent from nodes older than issue 18). */
  deliveredBytes?: number;
  /** Delivery rate over the last few seconds. */
  deliveredPerSec: number;
  deliveredBytesPerSec: number;
  /** Hints dropped since this node started because their target departed (exiting or removed). */
  dropped: number;
}
export type ClientKind = (typeof requestKinds)[number];

/**
 * replica.puts {items: [[reqId, p, key, state, hint], ...]}: a turn's replica.put requests from one
 * coordinator to one replica in one envelope, each item the fields of one replica.put (state: the
 * encoded DVV set, bin; hint: a node id or nil). The router hands the replica one replica.put per
 * item, each checked on its own. Against a batch of replica.put envelopes it spares each item the
 * envelope's fields (v, kind, from, to, the body's keys: about 70 bytes), its encode and its decode.
 */
export const replicaRequestKinds = ['replica.coordinate', 'replica.put', 'replica.puts', 'replica.get'] as const;

/** Items one replica.puts carries at most (the router refuses a longer list). */
export const replicaPutsItemsMax = 1024;

/** One item of replica.puts: [reqId, p, key, state (encoded), hint or null]. */
export type ReplicaPutsItem = [string, number, Uint8Array, Uint8Array, string | null];
/** Requests one replica.put.acks acknowledges at most (the router refuses a longer list). */
export const replicaAcksMax = 1024;

/**
 * replica.put.acks {reqIds}: replica.put.ok for each of the requests it names, from one group commit
 * (actors/replica.core.ts answersOf); the router hands the coordinator one replica.put.ok per request.
 */
export const replicaAnswerKinds = ['replica.coordinate.ok', 'replica.put.ok', 'replica.put.acks', 'replica.get.ok', 'replica.error'] as const;
