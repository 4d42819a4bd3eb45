/**
 * Error codes (DESIGN.md §7). Expected outcomes are data: a code, a human sentence, and for
 * UNAVAILABLE the quorum that was needed and the replicas believed alive. TIMEOUT means "unknown":
 * the operation may or may not have taken effect.
 */
export const errorCodes = [
  'BAD_REQUEST',
  'TOO_LARGE',
  'TOO_MANY_SIBLINGS',
  'UNAVAILABLE',
  'TIMEOUT',
  'NOT_OWNER',
  'OVERLOADED',
  'INTERNAL',
  // Membership admin (ringkv cluster): nothing staged, a node the cluster does not know, a change
  // that would leave fewer than N nodes, a join of a node that is already a member, a node that has
  // not learned the ring yet; a plan with more nodes than partitions (some would own none).
  'NO_CHANGES',
  'UNKNOWN_NODE',
  'TOO_FEW_NODES',
  'TOO_MANY_NODES',
  'ALREADY_MEMBER',
  'NOT_READY',
  // An admin request that needs the cluster secret came unsealed (or sealed with another secret):
  // inspect snapshots and follow sessions are for members and admins holding the secret.
  'UNAUTHENTICATED',
  // A request kind on the subject of another role (an admin operation on a client subject): the
  // subject decides what its sender may do (src/protocol/subjects.ts).
  'WRONG_SUBJECT',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  needed?: number;
  alive?: number;
}

export function errorBody(code: ErrorCode, message: string, extra: { needed?: number; alive?: number } = {}): ErrorBody {
  return { code, message, ...extra };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (errorCodes as readonly string[]).includes(value);
}
