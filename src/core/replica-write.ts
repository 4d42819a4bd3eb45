/**
 * What a replica does to one stored object, as a pure function the store runs inside its
 * read-modify-write transaction. Two kinds of write reach a replica:
 * - coordinate: a client write at the coordinating replica; it makes the new dot (dvv.update) with
 *   the node's current clock id, which the caller passes (it changes when the epoch does);
 * - sync: another replica's state (replication, read repair, hinted handoff); merged (dvv.sync),
 *   never overwritten, and never refused for its sibling count: refusing a repair would lose data.
 * Either way the stored state and an incoming one are first screened (src/core/version-check.ts):
 * entries ringkv could not have issued are refused, and the history stays within its bound, so a
 * poisoned version (from a peer, or already on disk) never leaves the key stuck. A stored state that
 * screening changed is written back even when the merge adds nothing, so the store heals.
 */
import { type DvvSet, type Sibling, type VersionVector, emptyDvv, equal, siblingCount, sync, update } from './dvv.js';
import { type VersionBounds, boundHistory, screenState } from './version-check.js';
import { storedBytesBound } from './stored-size.js';

/** The bounds every replica screens versions with (Limits carries the same numbers). */
export const defaultVersionBounds: VersionBounds = { counterMax: 2 ** 48, historyEntriesMax: 128 };

export type ReplicaWrite =
  /** storedBytesMax: the key's stored size a client write may not take it past (stored-size.ts); absent, no bound. */
  | { kind: 'coordinate'; context: VersionVector; value: Sibling; siblingsMax: number; storedBytesMax?: number }
  /** `encoded`: the bytes `state` arrived as, kept as they are when the merge is that state itself. */
  | { kind: 'sync'; state: DvvSet; encoded?: Uint8Array };

export type WriteOutcome =
  | { ok: true; state: DvvSet; siblings: number }
  | { ok: false; code: 'TOO_MANY_SIBLINGS' | 'TOO_LARGE'; message: string; siblings: number };

/** Applies a replica write; `dotId` is the clock id a coordinate write makes its dot with. */
export function applyWrite(
  current: DvvSet | undefined,
  write: ReplicaWrite,
  dotId: string,
  bounds: VersionBounds = defaultVersionBounds,
): { next: DvvSet | null; result: WriteOutcome } {
  if (write.kind === 'sync') return applySync(current, write.state, bounds);
  const stored = current === undefined ? emptyDvv : screenState(current, bounds).state;
  // The context is cut to the stored state (dvv.clamp), so only this node's own new entry can
  // lengthen the history; bounding it again keeps it within historyEntriesMax.
  const next = boundHistory(update(stored, write.context, dotId, write.value), bounds.historyEntriesMax).state;
  const siblings = siblingCount(next);
  if (siblings > write.siblingsMax) {
    return {
      next: null,
      result: {
        ok: false,
        code: 'TOO_MANY_SIBLINGS',
        siblings,
        message: `this put would leave ${siblings} siblings (the limit is ${write.siblingsMax}); read the key, merge its siblings and write back with the context`,
      },
    };
  }
  if (write.storedBytesMax !== undefined) {
    // Refused only when this write grows the key past its bound: a key already beyond it (an older
    // build stored it) stays readable, and a write that merges its siblings away still shrinks it.
    const bytes = storedBytesBound(next);
    if (bytes > write.storedBytesMax && bytes > storedBytesBound(stored)) {
      return {
        next: null,
        result: {
          ok: false,
          code: 'TOO_LARGE',
          siblings,
          message: `this put would make the key about ${bytes} bytes with all its siblings (the limit is ${write.storedBytesMax}, well under what NATS can carry); read the key, merge its siblings and write back with the context, or write a smaller value`,
        },
      };
    }
  }
  return { next, result: { ok: true, state: next, siblings } };
}

/** Merges another replica's state into the stored one (never an overwrite). */
/**
 * Merges another replica's state into the stored one (never an overwrite). `refused` counts the
 * entries of the incoming state that screening refused; the caller counts and logs them.
 */
export function applySync(
  current: DvvSet | undefined,
  state: DvvSet,
  bounds: VersionBounds = defaultVersionBounds,
): { next: DvvSet | null; result: WriteOutcome & { ok: true }; refused: number } {
  const own = current === undefined ? undefined : screenState(current, bounds);
  const stored = own?.state ?? emptyDvv;
  const incoming = screenState(state, bounds);
  const merged = boundHistory(sync(stored, incoming.state), bounds.historyEntriesMax).state;
  // Writing an unchanged state would only cost a commit; a stored state that screening changed is
  // written back, so a poisoned object heals (and its Merkle segment with it).
  const next = current !== undefined && own!.refused === 0 && equal(merged, stored) ? null : merged;
  return { next, result: { ok: true, state: merged, siblings: siblingCount(merged) }, refused: incoming.refused };
}

/** A stored state as a replica answers it: screened, so that no read hands out what ringkv refuses. */
export function screenStored(current: DvvSet | undefined, bounds: VersionBounds = defaultVersionBounds): DvvSet | null {
  return current === undefined ? null : screenState(current, bounds).state;
}
