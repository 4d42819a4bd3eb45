/**
 * Tombstone reaping, the pure decisions (Riak's delete_mode, Cassandra's gc_grace). A tombstone is
 * kept after a delete so that an older copy of the key (on a replica that missed the delete, in a
 * hint, in an ownership transfer) is superseded instead of coming back. It may go once nothing can
 * bring such a copy back:
 *
 * - every primary of the key holds the tombstone (an equal DVV set: the tombstone and nothing newer);
 * - every other live member holds no copy of the key at all and no member holds a hint for it (a
 *   hint or a transfer in flight could carry an older state);
 * - every member answered (a member that does not answer, or is judged down, could hold anything),
 *   from the same ring version, with no staged ring change (the primaries are about to move) and no
 *   ownership transfer running or waiting on it;
 * - and all of this has held, unchanged, for the grace period (a message in flight, a node restored
 *   from a backup taken within the grace period, cannot bring an older state back after it).
 *
 * The reaper (src/runtime/reaper-io.ts) asks, decides here, then tells each primary to delete the
 * key only if its state is still that exact tombstone (Store.removeIfUnchanged): a write that races
 * the reap wins.
 */
import { type DvvSet, equal, isDeleted } from './dvv.js';

/** One member's answer about one key. */
export interface KeyAnswer {
  /** Its stored state of the key, or null when it holds none. */
  state: DvvSet | null;
  /** True when it holds a hint for the key (it still owes the key's state to a replica). */
  hinted: boolean;
}

/** One member's answer about a batch of keys, as reap.check.ok carries it. */
export interface MemberAnswer {
  ringVersion: number;
  /** True when the member knows of a staged ring change. */
  staged: boolean;
  /** True when an ownership transfer runs or waits on the member. */
  moving: boolean;
  keys: readonly KeyAnswer[];
}

export interface ReapView {
  /** The ring version this node routes by. */
  ringVersion: number;
  /** This node's view: a staged change is known. */
  staged: boolean;
  /** An ownership transfer runs or waits on this node. */
  moving: boolean;
  /** Every member that is not departed (joining, valid, leaving), this node included. */
  members: readonly string[];
  /** Members this node's failure detector judges down. */
  down: ReadonlySet<string>;
}

/** Why a reap pass, or one key, waits: named so that status and tests can tell. */
export type WaitReason = 'transfer' | 'staged-change' | 'member-down' | 'no-answer' | 'ring-version' | 'not-equal' | 'copy-elsewhere' | 'hinted' | 'grace';

/** A pass may go ahead only when the cluster is still: no staged change, every member up. */
export function passBlocked(view: ReapView): WaitReason | null {
  if (view.staged) return 'staged-change';
  if (view.moving) return 'transfer';
  for (const m of view.members) if (view.down.has(m)) return 'member-down';
  return null;
}

/**
 * Whether the tombstone `local` (this node's state of the key at index `i` of the batch) is held the
 * same by every primary and by nothing else. `answers` has one entry per member asked (every member
 * but this node); a missing one (no answer by the deadline) blocks.
 */
export function keyVerdict(
  local: DvvSet,
  localHinted: boolean,
  i: number,
  primaries: readonly string[],
  asked: readonly string[],
  answers: ReadonlyMap<string, MemberAnswer>,
  view: ReapView,
): WaitReason | null {
  if (!isDeleted(local) || local.length === 0) return 'not-equal';
  if (localHinted) return 'hinted';
  for (const m of asked) {
    const a = answers.get(m);
    if (a === undefined) return 'no-answer';
    if (a.ringVersion !== view.ringVersion) return 'ring-version';
    if (a.staged) return 'staged-change';
    if (a.moving) return 'transfer';
    const k = a.keys[i];
    if (k === undefined) return 'no-answer';
    if (k.hinted) return 'hinted';
    if (primaries.includes(m)) {
      if (k.state === null || !equal(k.state, local)) return 'not-equal';
    } else if (k.state !== null) {
      return 'copy-elsewhere';
    }
  }
  return null;
}

/**
 * The grace clock: when each tombstone was first seen agreed everywhere, kept in memory (soft state:
 * a restart starts every clock again, which only delays). A key whose agreement is broken, or whose
 * tombstone changed, starts again. At most `entriesMax` keys are watched; others wait for room.
 */
export class GraceWatch {
  private readonly since = new Map<string, { state: DvvSet; at: number }>();

  constructor(private readonly entriesMax: number) {}

  get size(): number {
    return this.since.size;
  }

  /** Records the verdict of one key at `now`; true when it may be reaped now. */
  observe(id: string, state: DvvSet, agreed: boolean, now: number, graceMs: number): boolean {
    if (!agreed) {
      this.since.delete(id);
      return false;
    }
    const seen = this.since.get(id);
    if (seen === undefined || !equal(seen.state, state)) {
      if (seen === undefined && this.since.size >= this.entriesMax) return false;
      this.since.set(id, { state, at: now });
      return graceMs <= 0;
    }
    return now - seen.at >= graceMs;
  }

  /** Forgets a key (reaped, or no longer a tombstone here). */
  forget(id: string): void {
    this.since.delete(id);
  }

  /** Forgets every key not in `present` (a sweep found them gone). */
  retain(present: ReadonlySet<string>): void {
    for (const id of this.since.keys()) if (!present.has(id)) this.since.delete(id);
  }
}

/**
 * Whether a backup taken at `takenAtMs` may be restored at `nowMs` (both wall-clock ms). A backup
 * older than the grace period may hold a value whose tombstone every replica has since reaped:
 * restored, it would bring that value back, and nothing left in the cluster remembers the delete.
 * Within the grace period no tombstone deleted after the backup was taken can have been reaped yet
 * (reaping waits the grace period after the tombstone is everywhere), and the restored node's older
 * copy blocks the reap until anti-entropy has brought it the tombstone. Returns why not, or null.
 */
export function restoreProblem(takenAtMs: number, nowMs: number, graceMs: number): string | null {
  const ageMs = nowMs - takenAtMs;
  if (ageMs <= graceMs) return null;
  return (
    `the backup was taken ${Math.round(ageMs / 1000)} s ago, longer than the tombstone grace period (${Math.round(graceMs / 1000)} s): ` +
    'a value deleted since then may have had its tombstone reaped, and the restore would bring it back. ' +
    'Start the node with an empty data directory instead (anti-entropy and read repair rebuild it from the replicas), ' +
    'or pass --restore-older-than-grace to accept that deleted values may come back'
  );
}
