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
