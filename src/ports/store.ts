/**
 * Store: a node's durable state (DESIGN.md §6). Production is one LMDB environment with named
 * databases (objects, hints, meta, merkle); the simulator keeps the same shape in memory.
 *
 * Contract:
 * - Reads are synchronous and see every update whose promise has been created, committed or not:
 *   a replica's later read must never go back in time behind its own earlier write.
 * - `update` is an atomic read-modify-write of one object. Its promise resolves only after the
 *   transaction that holds the write has committed; only then may anyone be told "stored".
 *   If `mutate` throws, nothing is written and the promise rejects with that error.
 * - Updates of one key apply in the order they were issued.
 * - After a crash, every update whose promise resolved is still there; others may or may not be.
 */
import type { DvvSet } from '../core/dvv.js';

/** One write of Store.updateMany. */
export interface WriteRequest {
  partition: number;
  key: Uint8Array;
  /** Hints for down primaries, written with the object. */
  hints?: HintWrite;
}

/** Store.updateMany where the store has it, else one `update` per write (the same results). */
export function updateMany<T>(store: Store, writes: readonly WriteRequest[], mutate: (index: number, current: DvvSet | undefined) => Mutation<T>): Promise<(T | Error)[]> {
  if (store.updateMany) return store.updateMany(writes, mutate);
  // A mutate that throws fails only its own write (MutateError); the store's failure rejects them all.
  const guarded = (i: number) => (current: DvvSet | undefined) => {
    try {
      return mutate(i, current);
    } catch (err) {
      throw new MutateError(err);
    }
  };
  return Promise.all(
    writes.map((w, i) =>
      store.update(w.partition, w.key, guarded(i), w.hints).catch((err: unknown) => {
        if (err instanceof MutateError) return err.cause instanceof Error ? err.cause : new Error(String(err.cause));
        throw err;
      }),
    ),
  );
}

/** What a mutate threw, told apart from the store's own failure (updateMany above). */
class MutateError extends Error {
  constructor(cause: unknown) {
    super(String(cause), { cause });
  }
}

/** What `mutate` decides: the new state to write (or null to leave the object alone) and a result. */
export interface Mutation<T> {
  next: DvvSet | null;
  result: T;
  /**
   * The encoded form of `next`, when the caller has it already (a state is encoded once and the same
   * bytes are stored, sent and hashed: DESIGN.md §3). Bytes that decode to `next`; the store keeps
   * them as they are instead of encoding `next` again.
   */
  nextEncoded?: Uint8Array;
}

/**
 * A hint (Dynamo §4.6): this node holds a write on behalf of `target`, a replica that was down, and
 * owes it the key's state. `seq` changes whenever the hint is written again, so a delivery removes
 * the hint only if no newer write re-hinted the key meanwhile.
 */
export interface Hint {
  target: string;
  partition: number;
  key: Uint8Array;
  seq: number;
  /** When the hint was first written (Clock ms); its age is what `ringkv hints` shows. */
  since: number;
}

/** Hints to write together with an object. */
export interface HintWrite {
  targets: readonly string[];
  now: number;
}

/** An object whose stored copy failed its checksum (found by a read, the scrub, or at open). */
export interface CorruptObject {
  partition: number;
  key: Uint8Array;
  where: 'read' | 'scrub' | 'open';
}

export interface Store {
  /** The current state of one object, or undefined when the key was never stored here. */
  get(partition: number, key: Uint8Array): DvvSet | undefined;
  /**
   * The same state as `get`, still encoded (src/protocol/codec.ts: the MessagePack of the DVV set, as
   * stored): a replica answering a read copies these bytes into its answer instead of decoding the
   * state and encoding it again. The caller must not modify the bytes.
   */
  getEncoded(partition: number, key: Uint8Array): Uint8Array | undefined;
  /**
   * Atomic read-modify-write of one object; resolves after commit. With `hints`, a hint for each
   * target is written in the same transaction as the object (a hint is never without its data).
   */
  update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T>;
  /**
   * Several updates in one call, each as `update` would make it (in order, each atomic on its own),
   * resolved once all have committed: a result per write, or the Error its mutate threw (nothing
   * written for it). Rejects when the commit fails (none of them is written). Optional: stores
   * without it are driven one update per write (updateMany below).
   */
  updateMany?<T>(writes: readonly WriteRequest[], mutate: (index: number, current: DvvSet | undefined) => Mutation<T>): Promise<(T | Error)[]>;
  /** Every pending hint, oldest first. */
  hints(): Iterable<Hint>;
  hintCount(): number;
  /** True when a hint for this object is pending (hinted handoff still owes its state to a replica). */
  hintPending(partition: number, key: Uint8Array): boolean;
  /** Removes a delivered hint, unless it was written again since (its seq changed). */
  removeHint(hint: Hint): Promise<boolean>;
  /** Node metadata (node id, epoch, membership): small values, read at start. */
  getMeta<T>(name: string): T | undefined;
  putMeta(name: string, value: unknown): Promise<void>;
  /**
   * Ownership transfer: deletes one object, but only if its state is still `expected` (an equal DVV
   * set: nothing was written to the key since that state was sent to its new owners) and no hint is
   * pending for the key (hinted handoff still owes it to a replica). The object's Merkle segment
   * folds it out in the same transaction, so the tree stays exact. Resolves true after the commit,
   * or false (at once) when it deleted nothing. Reads see the deletion at the call, as they see an
   * update.
   */
  removeIfUnchanged(partition: number, key: Uint8Array, expected: DvvSet): Promise<boolean>;
  /** Every key held for one partition, in key order (anti-entropy and ownership transfer). */
  keys(partition: number): Iterable<Uint8Array>;
  /**
   * Anti-entropy (src/core/merkle.ts): S, the number of segments (Merkle leaves) of every
   * partition's tree in this store. Fixed for a data directory.
   */
  readonly segmentCount: number;
  /**
   * The segment hashes of one partition's Merkle tree (S of them; a copy). Every `update` folds its
   * object into its segment (seg ^= hash(before) ^ hash(after)) and writes that segment in the same
   * transaction as the object, so the tree on disk never drifts from the objects. Like `get`, the
   * answer includes every update whose promise exists, committed or not. Memory is S * 8 bytes per
   * partition, never per key.
   */
  segments(partition: number): BigUint64Array;
  /** The keys of one partition that fall in the given segment (or set of segments), as `keys` has them. */
  keysInSegment(partition: number, segment: number | ReadonlySet<number>): Iterable<Uint8Array>;
  /**
   * Stores that checksum their objects (LmdbStore): true when this store found its copy of the key
   * corrupt and has stored no good copy since. Such a key reads as absent (get, getEncoded), drops
   * out of its Merkle segment, and takes the next good state written or synced into it; a replica
   * must not answer a read of it as "not found". Stores without checksums (in memory) leave it out.
   */
  isCorrupt?(partition: number, key: Uint8Array): boolean;
  /**
   * Registers the one watcher told of every object found corrupt, synchronously, before the read
   * that found it returns (so a new epoch can be taken before any dot is made on what is left);
   * what was found before registration is told at once.
   */
  watchCorruption?(watcher: (found: CorruptObject) => void): void;
  /**
   * Stores that group-commit a turn's writes (LmdbStore): `hook` runs just before each group commit.
   * The node flushes the turn's network sends there (Transport.flush), so a coordinated write's state
   * is on its way to the other replicas while this node commits, not after.
   */
  beforeCommit?(hook: () => void): void;
  close(): Promise<void>;
}
