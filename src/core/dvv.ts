/**
 * DVV sets: dotted version vector sets (Preguiça, Baquero, Almeida et al., "Dotted Version
 * Vectors: Logical Clocks for Optimistic Replication", and Riak's dvvset.erl). One DVV set holds every
 * sibling of one key together with the causal history that explains them.
 *
 * An entry `[id, n, values]` says: every event of clock `id` up to counter `n` is known, and the
 * last `values.length` of them (counters n - len + 1 .. n, newest first) are still live siblings.
 * Entries are sorted by id, so equal states have equal encodings (the Merkle hash relies on it).
 *
 * A clock id is a node id plus that node's epoch (`node/epoch`): a node that lost its data takes a
 * new epoch, so the dots it makes afterwards can never collide with dots it made before (Riak kv679).
 *
 * There is no wall clock anywhere in here: concurrent writes are kept as siblings, never resolved by
 * time. Riak 2's DVV sets keep siblings bounded by the number of writers that really were concurrent.
 */

/** A sibling's value: the bytes a client wrote, or null for a tombstone (a delete). */
export type Sibling = Uint8Array | null;

/** [clock id, counter, live values newest first] */
export type DvvEntry = [id: string, n: number, values: Sibling[]];

/** Every sibling of one key with its causal history; entries sorted by id. */
export type DvvSet = DvvEntry[];

/** A version vector: [clock id, counter] sorted by id. What a client's context decodes to. */
export type VersionVector = [id: string, n: number][];

export const emptyDvv: DvvSet = [];

/** The version vector that summarises a DVV set: the context handed to clients. */
export function join(set: DvvSet): VersionVector {
  return set.map(([id, n]) => [id, n]);
}

/** Every live sibling, tombstones included, in a deterministic order (by clock id, newest first). */
export function values(set: DvvSet): Sibling[] {
  const out: Sibling[] = [];
  for (const [, , vals] of set) for (const v of vals) out.push(v);
  return out;
}

export function siblingCount(set: DvvSet): number {
  let count = 0;
  for (const [, , vals] of set) count += vals.length;
  return count;
}

/**
 * Merge two replicas' states. Commutative, associative and idempotent; it keeps every value that the
 * other side's history does not cover, and drops every value that it does.
 */
export function sync(a: DvvSet, b: DvvSet): DvvSet {
  const out: DvvSet = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ea = a[i]!;
    const eb = b[j]!;
    if (ea[0] < eb[0]) {
      out.push(ea);
      i++;
    } else if (ea[0] > eb[0]) {
      out.push(eb);
      j++;
    } else {
      out.push(mergeEntry(ea, eb));
      i++;
      j++;
    }
  }
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/**
 * Merge the two views of one clock id. The side with the larger counter knows every event the
 * other knows; of its values it keeps those the other side has not already seen superseded, that is
 * those with counters above the other side's first live counter minus one.
 */
function mergeEntry(a: DvvEntry, b: DvvEntry): DvvEntry {
  const [id, n1, l1] = a;
  const [, n2, l2] = b;
  if (n1 >= n2) {
    // b's oldest live counter is n2 - len(l2) + 1; a keeps values that b has not discarded.
    if (n1 - l1.length >= n2 - l2.length) return [id, n1, l1];
    return [id, n1, l1.slice(0, n1 - n2 + l2.length)];
  }
  if (n2 - l2.length >= n1 - l1.length) return [id, n2, l2];
  return [id, n2, l2.slice(0, n2 - n1 + l1.length)];
}

/**
 * A client write at the coordinating replica: `value` supersedes exactly what `context` covers, and
 * gets a new dot of clock `id` (the coordinator's node and epoch). Values the context does not cover
 * stay as siblings.
 */
export function update(stored: DvvSet, context: VersionVector, id: string, value: Sibling): DvvSet {
  // Discard what the client saw: sync the stored state with the context as a DVV set with no values.
  const merged = sync(clamp(context, stored), stored);
  return event(merged, id, value);
}

/**
 * The part of a client's context that the stored state can vouch for, as a DVV set with no values:
 * each clock id's counter cut to the stored one, and ids the stored state does not know left out.
 * A context is opaque to clients but not secret, so a client can forge one; cut this way, a forged
 * context can at most supersede what it could have seen, and the new dot stays the stored counter
 * plus one, whatever the context claims. An honest context that knows more than this replica (it
 * was read from replicas this one has not caught up with) loses nothing either: what this replica
 * cannot vouch for stays a sibling, to be merged by the next read.
 */
export function clamp(context: VersionVector, stored: DvvSet): DvvSet {
  const out: DvvSet = [];
  let i = 0;
  let j = 0;
  while (i < context.length && j < stored.length) {
    const [cid, cn] = context[i]!;
    const [sid, sn] = stored[j]!;
    if (cid < sid) i++;
    else if (cid > sid) j++;
    else {
      out.push([cid, Math.min(cn, sn), []]);
      i++;
      j++;
    }
  }
  return out;
}

/** Add a new dot of clock `id` carrying `value`. */
function event(set: DvvSet, id: string, value: Sibling): DvvSet {
  const out: DvvSet = [];
  let placed = false;
  for (const entry of set) {
    if (!placed && entry[0] === id) {
      out.push([id, entry[1] + 1, [value, ...entry[2]]]);
      placed = true;
    } else if (!placed && entry[0] > id) {
      out.push([id, 1, [value]]);
      out.push(entry);
      placed = true;
    } else {
      out.push(entry);
    }
  }
  if (!placed) out.push([id, 1, [value]]);
  return out;
}

/** True when `a`'s history is strictly contained in `b`'s (b descends a and they differ). */
export function less(a: DvvSet | VersionVector, b: DvvSet | VersionVector): boolean {
  return dominates(b, a, false);
}

/** True when every counter of `a` is at least `b`'s; `strict` says whether one was already larger. */
function dominates(a: ReadonlyArray<readonly [string, number, ...unknown[]]>, b: ReadonlyArray<readonly [string, number, ...unknown[]]>, strict: boolean): boolean {
  let i = 0;
  let j = 0;
  while (j < b.length) {
    if (i >= a.length) return false;
    const [ia, na] = a[i]!;
    const [ib, nb] = b[j]!;
    if (ia < ib) {
      strict = true;
      i++;
    } else if (ia > ib) {
      return false;
    } else {
      if (na < nb) return false;
      if (na > nb) strict = true;
      i++;
      j++;
    }
  }
  return strict || i < a.length;
}

/** True when both states hold the same history and the same live siblings. */
export function equal(a: DvvSet, b: DvvSet): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) {
    const [ia, na, la] = a[k]!;
    const [ib, nb, lb] = b[k]!;
    // Within one clock id the counter fixes which dots are live, so equal counters and equal
    // lengths mean the same values.
    if (ia !== ib || na !== nb || la.length !== lb.length) return false;
  }
  return true;
}

/** True when every live value is a tombstone (the key reads as not found). */
export function isDeleted(set: DvvSet): boolean {
  for (const [, , vals] of set) for (const v of vals) if (v !== null) return false;
  return true;
}
