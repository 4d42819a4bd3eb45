/**
 * Errors a ringkv client sees. Every failure carries a code: the cluster's own (DESIGN.md §7) or
 * NO_CLUSTER when no ringkv node could be reached at all. TIMEOUT is indeterminate: a write that
 * timed out may still have been stored.
 */
import type { ErrorCode } from '../protocol/errors.js';

/**
 * NATS_AUTH: NATS refused the credentials; unlike NO_CLUSTER, retrying will not help.
 * NATS_PERMISSION: NATS refused a publish or subscription of this user (a client user asking for an
 * admin operation, say): the permissions, not the cluster, say no.
 * CLUSTER_MISMATCH: a node of another cluster (same name, another cluster id) answered.
 */
export type ClientErrorCode = ErrorCode | 'NO_CLUSTER' | 'NATS_AUTH' | 'NATS_PERMISSION' | 'CLUSTER_MISMATCH';

export class RingkvError extends Error {
  override readonly name = 'RingkvError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly needed?: number,
    readonly alive?: number,
  ) {
    super(message);
  }
}
