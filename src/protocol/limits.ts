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
  /**
   * Largest stored size of one key, all its siblings and their history (src/core/stored-size.ts): a
   * client put that would take a key past it is refused (TOO_LARGE) before anything is stored. A
   * node lowers it to half the max_payload of its NATS server (keyStoredBytesBound), so that every
   * key can always be replicated, handed off and read in one message.
   */
  keyStoredBytesMax: number;
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
  keyStoredBytesMax: 4 * 1024 * 1024,
  siblingsMax: 100,
  siblingsWarn: 25,
  nMax: 7,
  requestTimeoutMsMax: 60_000,
  historyEntriesMax: defaultVersionBounds.historyEntriesMax,
  counterMax: defaultVersionBounds.counterMax,
};

/**
 * The key size bound a node uses: the configured one, lowered to half the largest message its NATS
 * server takes (`max_payload` of the server's INFO at connect). Half: a key's state travels inside
 * an envelope, beside other items of a batch, and as a read answer with its context; at half the
 * payload there is always room for all of that.
 */
export function keyStoredBytesBound(configured: number, maxPayloadBytes: number | undefined): number {
  if (maxPayloadBytes === undefined || !(maxPayloadBytes > 0)) return configured;
  return Math.min(configured, Math.floor(maxPayloadBytes / 2));
}
