/**
 * The message kinds and their bodies. Client API kinds start with `api.`, replica traffic between
 * nodes with `replica.`. An answer's kind is the request's kind plus `.ok`, or `error`.
 */
import type { DvvSet, Sibling, VersionVector } from '../core/dvv.js';
import type { ErrorBody } from './errors.js';

/** Per-request options every client operation may carry. */
export interface RequestOptions {
  n?: number;
  r?: number;
  w?: number;
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
  state: 'up' | 'down';
  partitions: number[];
}

export interface ApiStatusOk {
  cluster: string;
  partitions: number;
  n: number;
  nodeId: string;
  members: MemberStatus[];
}

/** Coordinator to its own node's replica: make a new dot for this client write. */
export interface ReplicaCoordinateBody {
  p: number;
  key: Uint8Array;
  context: VersionVector;
  value: Sibling;
}

/** Coordinator to the other replicas: sync this state into yours. */
export interface ReplicaPutBody {
  p: number;
  key: Uint8Array;
  state: DvvSet;
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

export const clientKinds = ['api.put', 'api.del', 'api.get', 'api.status'] as const;
export type ClientKind = (typeof clientKinds)[number];

export const replicaRequestKinds = ['replica.coordinate', 'replica.put', 'replica.get'] as const;
export const replicaAnswerKinds = ['replica.coordinate.ok', 'replica.put.ok', 'replica.get.ok', 'replica.error'] as const;
