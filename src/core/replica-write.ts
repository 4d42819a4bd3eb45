/**
 * What a replica does to one stored object, as a pure function the store runs inside its
 * read-modify-write transaction. Two kinds of write reach a replica:
 * - coordinate: a client write at the coordinating replica; it makes the new dot (dvv.update) with
 *   the node's current clock id, which the caller passes (it changes when the epoch does);
 * - sync: another replica's state (replication, read repair, hinted handoff); merged (dvv.sync),
 *   never overwritten, and never refused for its sibling count: refusing a repair would lose data.
 */
import { type DvvSet, type Sibling, type VersionVector, emptyDvv, equal, siblingCount, sync, update } from './dvv.js';

export type ReplicaWrite =
  | { kind: 'coordinate'; context: VersionVector; value: Sibling; siblingsMax: number }
  | { kind: 'sync'; state: DvvSet };

export type WriteOutcome =
  | { ok: true; state: DvvSet; siblings: number }
  | { ok: false; code: 'TOO_MANY_SIBLINGS'; message: string; siblings: number };

/** Applies a replica write; `dotId` is the clock id a coordinate write makes its dot with. */
export function applyWrite(current: DvvSet | undefined, write: ReplicaWrite, dotId: string): { next: DvvSet | null; result: WriteOutcome } {
  if (write.kind === 'sync') return applySync(current, write.state);
  const stored = current ?? emptyDvv;
  const next = update(stored, write.context, dotId, write.value);
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
  return { next, result: { ok: true, state: next, siblings } };
}

/** Merges another replica's state into the stored one (never an overwrite). */
export function applySync(current: DvvSet | undefined, state: DvvSet): { next: DvvSet | null; result: WriteOutcome & { ok: true } } {
  const stored = current ?? emptyDvv;
  const merged = sync(stored, state);
  // Writing an unchanged state would only cost a commit.
  const next = current !== undefined && equal(merged, stored) ? null : merged;
  return { next, result: { ok: true, state: merged, siblings: siblingCount(merged) } };
}
