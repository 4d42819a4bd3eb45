/**
 * Tombstone reaping messages (src/core/reap.ts decides, src/runtime/reaper-io.ts sends). Directed
 * subjects, role aae (node-to-node, sealed like every internal message):
 *
 *   reap.check {ring, items: [[p, key], ...]}       the reaper's tombstones: what do you hold?
 *     -> reap.check.ok {ring, staged, moving, states, hinted}
 *                                                    per item in order: the stored DVV set or null,
 *                                                    and whether a hint for it is pending; staged: a
 *                                                    ring change is staged; moving: an ownership
 *                                                    transfer runs or waits on the answering node
 *   reap.drop {items: [[p, key, state], ...]}        delete each key if its stored state is still
 *     -> reap.drop.ok {dropped}                      exactly `state` and no hint for it is pending;
 *                                                    answered after commit
 *
 * One message per peer per step holds at most reapItemsMax items and about reapMessageBytesMax
 * bytes of keys and states.
 */
import type { DvvSet } from '../core/dvv.js';

export type ReapCheckItem = [p: number, key: Uint8Array];
export type ReapDropItem = [p: number, key: Uint8Array, state: DvvSet];

export interface ReapCheckBody {
  /** The asker's ring version: an answer from another one does not count. */
  ring: number;
  items: ReapCheckItem[];
}

export interface ReapCheckOk {
  ring: number;
  staged: boolean;
  moving: boolean;
  states: (DvvSet | null)[];
  hinted: boolean[];
}

export interface ReapDropBody {
  items: ReapDropItem[];
}

export interface ReapDropOk {
  dropped: number;
}

export const reapKinds = ['reap.check', 'reap.check.ok', 'reap.drop', 'reap.drop.ok'] as const;
export type ReapKind = (typeof reapKinds)[number];

/** Items in one reap message. */
export const reapItemsMax = 1024;
/** Bytes of keys (and states) one reap message carries, about: the reaper stops adding items there. */
export const reapMessageBytesMax = 256 * 1024;
