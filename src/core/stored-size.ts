/**
 * A key's stored size, bounded without encoding it (issue 28, item 3). A key's DVV set travels whole:
 * in every replica write, read answer, hint, transfer and anti-entropy batch, so a key larger than
 * the NATS max_payload can be neither replicated nor read. A client put that would take a key past
 * `keyStoredBytesMax` (src/protocol/limits.ts) is refused with TOO_LARGE before anything is stored.
 *
 * Why an upper bound and not the encoded length: a put encodes its new state once (the same bytes
 * stored, sent and hashed, DESIGN.md §3); encoding it again only to measure it would double that
 * cost on every write. This sums what MessagePack can take at most for each part (a bin's or
 * str's 5-byte header, a float64 counter, array headers), so it is never below the encoded size
 * and exceeds it by a few dozen bytes per entry and sibling.
 */
import type { DvvSet } from './dvv.js';

/** Most bytes MessagePack spends around one entry [id, counter, values]: array header 5, str header 5, float64 9. */
const entryOverheadBytes = 5 + 5 + 9 + 5;
/** Around one sibling: a bin32 header, or nil. */
const siblingOverheadBytes = 5;

/** At least the encoded size of `set` (utf-8 ids count 3 bytes per UTF-16 unit: never under). */
export function storedBytesBound(set: DvvSet): number {
  let bytes = 5;
  for (const [id, , values] of set) {
    bytes += entryOverheadBytes + id.length * 3;
    for (const v of values) bytes += siblingOverheadBytes + (v === null ? 0 : v.length);
  }
  return bytes;
}
