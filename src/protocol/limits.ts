/**
 * Size and count limits with their defaults. Every queue, map and batch in ringkv has a named
 * maximum; the ones a client can meet are here.
 */
import { defaultVersionBounds } from '../core/replica-write.js';
import { operatorDefaults } from '../core/defaults.js';

export interface Limits {
  /** User keys are 1..keyBytesMax bytes of UTF-8 or raw bytes. */
  keyBytesMax: number;
  /** Largest value one put may carry. */
  valueBytesMax: number;
  /** A client put that would leave more siblings than this is refused (TOO_MANY_SIBLINGS). */
  siblingsMax: number;
  /** From this many siblings a put is logged as a warning: the application is not merging. */
  siblingsWarn: number;
  /** Largest N a request may ask for. */
  nMax: number;
  /** Largest deadline a request may ask for. */
  requestTimeoutMsMax: number;
  /**
   * Most entries (clock ids) a context or a key's history may hold. A client context with more is
   * refused (BAD_REQUEST); a stored history that would grow past it forgets its oldest entries
   * without live values (src/core/version-check.ts). Above siblingsMax + 1, so entries that carry a
   * live sibling always fit.
   */
  historyEntriesMax: number;
  /**
   * Largest counter a dot may have. A context claiming more is refused; a version arriving from a
   * peer with more is refused entry by entry. Far below 2^53 so that no counter ever stops being a
   * safe integer, and far above what any clock id makes (2^48 writes at a million a second is nine
   * years, and a node takes a new epoch, so a new clock id, at every unclean stop).
   */
  counterMax: number;
}

export const defaultLimits: Limits = {
  keyBytesMax: 1024,
  valueBytesMax: operatorDefaults.valueBytesMax,
  siblingsMax: 100,
  siblingsWarn: 25,
  nMax: 7,
  requestTimeoutMsMax: 60_000,
  historyEntriesMax: defaultVersionBounds.historyEntriesMax,
  counterMax: defaultVersionBounds.counterMax,
};
