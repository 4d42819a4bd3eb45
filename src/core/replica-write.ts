/**
 * What a replica does to one stored object, as a pure function the store runs inside its
 * read-modify-write transaction. Two kinds of write reach a replica:
 * - coordinate: a client write at the coordinating replica; it makes the new dot (dvv.update);
 * - sync: another replica's state (replication, read repair, hinted handoff); merged (dvv.sync),
 *   never overwritten, and never refused for its sibling count: refusing a repair would lose data.
 */
import { type DvvSet, type Sibling, type VersionVector, emptyDvv, equal, siblingCount, sync, update } from './dvv.js';

export type ReplicaWrite =
  | { kind: 'coordinate'; context: VersionVector; value: Sibling; dotId: string; siblingsMax: number }
  | { kind: 'sync'; state: DvvSet };

export type WriteOutcome =
  | { ok: true; state: DvvSet; siblings: number }
  | { ok: false; code: 'TOO_MANY_SIBLINGS'; message: string; siblings: number };

export function applyWrite(current: DvvSet | undefined, write: ReplicaWrite): { next: DvvSet | null; result: WriteOutcome } {
  const stored = current ?? emptyDvv;
  if (write.kind === 'sync') {
    const merged = sync(stored, write.state);
    // Writing an unchanged state would only cost a commit.
    const next = current !== undefined && equal(merged, stored) ? null : merged;
    return { next, result: { ok: true, state: merged, siblings: siblingCount(merged) } };
  }
  const next = update(stored, write.context, write.dotId, write.value);
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
