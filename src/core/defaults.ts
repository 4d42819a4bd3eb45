/**
 * The defaults an operator meets, in one place: the code that applies each one imports it from
 * here, and the CLI's help texts print them from here, so the help can never say another number
 * than the one that runs (issue 18, item 6).
 */
const mib = 1024 * 1024;

export const operatorDefaults = {
  /** Partitions Q of a new cluster's ring (a power of two, fixed at creation). */
  partitions: 64,
  /** Replicas per key, and the read and write quorums. */
  n: 3,
  r: 2,
  w: 2,
  /** Primaries that must answer a read / acknowledge a write (Riak's PR/PW). */
  pr: 0,
  pw: 0,
  /** Fallbacks count toward R and W (sloppy quorum). */
  sloppy: true,
  /** A client request's deadline, at the client and at the node. */
  requestTimeoutMs: 5_000,
  /** Largest value a put may carry. */
  valueBytesMax: mib,
  /** One gossip round; a dead node is judged down after about five. */
  gossipRoundMs: 1_000,
  /** Hinted handoff delivery, bytes per second. */
  handoffRateBytesPerSec: 8 * mib,
  /** Anti-entropy: a round of Merkle exchanges at most this often, its byte rate, exchanges at once. */
  aaeIntervalMs: 60_000,
  aaeBytesPerSec: mib,
  aaeExchangesMax: 1,
  /** Ownership transfer: partitions handed over at once, transfers taken at once, bytes per second. */
  transfersMax: 2,
  transfersInboundMax: 4,
  transferRateBytesPerSec: 8 * mib,
  /**
   * Tombstone reaping: a sweep at most this often, and how long a tombstone must have been held the
   * same by every primary (and nothing else) before it goes: longer than any message is delayed and
   * than the age of a backup a node may be restored from (src/core/reap.ts).
   */
  reapIntervalMs: 30_000,
  reapGraceMs: 3_600_000,
  /** A graceful stop waits for the requests in flight this long past the request deadline. */
  stopDrainMarginMs: 1_000,
} as const;

/** A byte count for a help text: 8388608 (8 MiB). */
export function bytesText(bytes: number): string {
  if (bytes >= mib && bytes % mib === 0) return `${bytes} (${bytes / mib} MiB)`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes} (${bytes / 1024} KiB)`;
  return String(bytes);
}
