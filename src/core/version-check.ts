/**
 * What a replica accepts of a version (a DVV set, src/core/dvv.ts) that it did not make itself: the
 * state another replica sends (replication, read repair, hinted handoff, ownership transfer,
 * anti-entropy), or the state it finds in its own store. One rule everywhere, so that every replica
 * keeps the same part of a version and replicas still converge on it.
 *
 * - An entry whose counter is not a whole number from its live values' count to counterMax is
 *   refused: it says nothing ringkv could have issued (a counter near 2^53 would stop being a safe
 *   integer at the next dot), and keeping it would leave the key unreadable or unwritable for good.
 *   The rest of the version is kept: one bad entry never costs the others.
 * - A history longer than historyEntriesMax entries forgets its entries without live values, the
 *   smallest counters first (then by clock id, so every replica forgets the same ones). Forgetting
 *   history never loses a write: a value elsewhere that the forgotten entry had superseded can only
 *   come back as a sibling, which the next read-modify-write merges.
 *
 * Pure: the caller counts what was refused (ringkv_versions_refused_total) and logs it.
 */
import type { DvvEntry, DvvSet } from './dvv.js';

export interface VersionBounds {
  /** Largest counter a dot may have (Limits.counterMax). */
  counterMax: number;
  /** Most entries a key's history may hold (Limits.historyEntriesMax). */
  historyEntriesMax: number;
}

export interface Screened {
  /** What is kept: the input itself when nothing was refused. */
  state: DvvSet;
  /** Entries refused or forgotten. */
  refused: number;
  /** Why, for the log; null when nothing was refused. */
  reason: string | null;
}

/** True when an entry says something ringkv could have issued. */
export function isAcceptableEntry(entry: DvvEntry, counterMax: number): boolean {
  const n = entry[1];
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= entry[2].length && n <= counterMax;
}

/** The part of a version a replica keeps (see the file comment). */
export function screenState(state: DvvSet, bounds: VersionBounds): Screened {
  let refused = 0;
  let reason: string | null = null;
  // Made only once an entry is refused: every version a replica screens (each write, each read
  // answer) is almost always whole, and then the state itself is kept.
  let acceptable: DvvSet | undefined;
  for (let i = 0; i < state.length; i++) {
    const entry = state[i]!;
    if (isAcceptableEntry(entry, bounds.counterMax)) acceptable?.push(entry);
    else {
      acceptable ??= state.slice(0, i);
      refused++;
      reason = `a counter outside ${entry[2].length}..${bounds.counterMax} (clock id ${JSON.stringify(entry[0])}, counter ${String(entry[1])})`;
    }
  }
  const kept = acceptable ?? state;
  const bounded = boundHistory(kept, bounds.historyEntriesMax);
  if (bounded.forgotten > 0) {
    refused += bounded.forgotten;
    reason = `a history of ${kept.length} entries (the limit is ${bounds.historyEntriesMax})`;
  }
  return { state: bounded.state, refused, reason };
}

/**
 * Cuts a history to at most `max` entries by forgetting entries without live values, the smallest
 * counters first, then by clock id. Entries with live values are always kept (a client put that
 * would leave more than siblingsMax siblings is refused, so they fit below historyEntriesMax).
 */
export function boundHistory(state: DvvSet, max: number): { state: DvvSet; forgotten: number } {
  if (state.length <= max) return { state, forgotten: 0 };
  const candidates = state
    .filter((e) => e[2].length === 0)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const drop = new Set(candidates.slice(0, state.length - max).map((e) => e[0]));
  if (drop.size === 0) return { state, forgotten: 0 };
  return { state: state.filter((e) => !drop.has(e[0])), forgotten: drop.size };
}
