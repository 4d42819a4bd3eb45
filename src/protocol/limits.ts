/**
 * Size and count limits with their defaults. Every queue, map and batch in ringkv has a named
 * maximum; the ones a client can meet are here.
 */
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
}

export const defaultLimits: Limits = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  siblingsMax: 100,
  siblingsWarn: 25,
  nMax: 7,
  requestTimeoutMsMax: 60_000,
};
