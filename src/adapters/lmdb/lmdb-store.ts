/**
 * LmdbStore: the production Store (DESIGN.md §6). One LMDB environment per node with the named
 * databases `objects`, `hints`, `meta`, `merkle` and `corrupt`.
 * Object keys are the partition as 4 big-endian bytes followed by the user key bytes, so one
 * partition's objects are one contiguous key range. An object's value is a record (format 2):
 *
 *   u8 2 | u32 BE crc32 of everything after it | u64 BE object hash (src/core/merkle.ts) | the codec-encoded DVV set
 *
 * Checksums. LMDB does not checksum its pages, so bytes that change on the disk or in memory would
 * be served as if they were the value. Every record read from LMDB is checked against its crc32
 * (native zlib: about 0.5 µs for a small record, 0.35 µs per KiB beyond; the Merkle hash
 * would cost 5 µs per KiB). A record that fails is a
 * corrupt object: it reads as absent at once, is deleted in the next group commit together with its
 * Merkle segment (recomputed from the records left in it, so the tree no longer vouches for bytes
 * the store does not hold) and a `corrupt` entry for its key, and the watcher (createNode) is told:
 * it takes a new epoch (the record may have carried dots of this node), counts it and logs it.
 * The segment now differs from the other replicas' trees, so the next exchange fetches their copy;
 * until a good copy is written the key stays in `corrupt` (isCorrupt), so a replica refuses to
 * answer a read of it rather than say "not found". A scrub (scrubBytesPerSec) reads every record in
 * turn, so a corrupt object is found even when nobody reads it. The object hash kept in the record
 * means a write hashes only its new state: the old one's hash is read, not recomputed.
 *
 * Upgrade: a data directory written before records had checksums (meta `objects` absent) has every
 * object rewritten as a record at open (10,000 per transaction, resumable after a crash), and its
 * trees rebuilt, since the object hash now covers the value bytes; meta `objects` then records the
 * format.
 *
 * Merkle trees (src/core/merkle.ts): `merkle` holds each partition's segment hashes, key = the
 * partition as u32 BE then the segment as u16 BE, value = the 8-byte hash BE (absent = 0). A
 * SegmentTable caches the segments of each partition used (S * 8 bytes each) and already includes
 * uncommitted writes, as `get` does. Every object write marks its segment in the batch that carries
 * it, and the batch's transaction writes each marked segment once, from the table: the tree on disk
 * always equals the tree of the objects on disk. A data directory without trees of this segment
 * count (older, or opened with another count) gets them rebuilt from its objects at open; meta
 * `merkle` records the count.
 *
 * Group commit. Every write this class issues (update, removeIfUnchanged, putHint, removeHint,
 * putMeta) is queued into the current batch; the first write of a batch schedules its commit with
 * setImmediate, so every write of the event-loop turn (and of its microtasks) joins it. The commit
 * applies the whole batch, in issue order, inside ONE synchronous `env.transactionSync`, and then
 * settles every promise of the batch together. A synchronous transaction costs a few µs per write on
 * this thread, where lmdb-js's async puts cost a round trip through its writer thread (~180 µs of
 * latency for one put, measured: see store-bench.ts) that a replicated put pays twice in sequence.
 *
 * How `update` keeps the Store contract (reads see every update already issued; atomic
 * read-modify-write; per-key order; resolve after commit): `mutate` runs synchronously, at the call,
 * against the newest state of the key, and its result goes into `pending` (an overlay that `get`,
 * `keys` and later updates read first) and into the batch. Node runs one callback at a time and this
 * object is the environment's only writer, so no other write can slip in between the read and the
 * write; the batch applies writes in issue order, so the last write of a key wins. lmdb-js renews its
 * read snapshot when a transactionSync commits, so once the batch's overlay entries leave, LMDB's
 * read path holds the same state. The object, its Merkle segment and its hints are in one batch, so
 * they commit together or not at all. A failed transaction (LMDB refused a write, or the commit
 * failed) writes nothing: every write of its batch rejects, its overlay entries leave, and the
 * trees and the hint index of what it touched are rebuilt from what LMDB holds.
 *
 * Durability: an ack means committed in LMDB (survives kill -9 of the process); flushed to disk
 * within about a second; `sync: true` makes an ack mean on disk. With the default (`sync: false`) the
 * environment runs with `noSync`: a commit is written into the OS page cache, which outlives the
 * process but not the machine, and a timer forces an fdatasync every second when something was
 * committed since the last one. With `sync: true` the environment runs with lmdb-js's
 * `overlappingSync` (its Linux default): a batch commits without syncing (the event loop never waits
 * for the disk; the meta page marks that transaction unsynced, so a machine crash falls back to the
 * last synced one), then its writes wait for one fdatasync on libuv's thread pool. Syncs are
 * coalesced: one that starts after a batch committed serves that batch and every earlier one, and
 * batches that commit while it runs share the next one.
 */
import { mkdirSync } from 'node:fs';
import zlib from 'node:zlib';
import { open, TransactionFlags, type Database, type RootDatabase } from 'lmdb';
import { type DvvSet, equal } from '../../core/dvv.js';
import { SegmentTable, keysInSegments, segmentOf, segmentsDefault, shapeProblem, writeObjectHash } from '../../core/merkle.js';
import { decode, encode } from '../../protocol/codec.js';
import { costs } from '../../protocol/cost-counters.js';
import type { CorruptObject, Hint, HintWrite, Mutation, Store, WriteRequest } from '../../ports/store.js';

export interface LmdbStoreOptions {
  /** true: an ack means fdatasync'd. false (default): an ack means committed; flushed within ~1 s. */
  sync?: boolean;
  /** Segments (Merkle leaves) per partition; a power of two up to 65536 (default 1024). */
  segments?: number;
  /** Bytes of records the scrub checks per second (0: no scrub; reads still check what they read). */
  scrubBytesPerSec?: number;
}

/** What the store has checked and found (the metrics show it). */
export interface ScrubStats {
  /** Records the scrub checked. */
  objectsChecked: number;
  bytesChecked: number;
  /** Whole passes over every record. */
  passes: number;
  /** Corrupt objects found, by reads and by the scrub. */
  corruptFound: number;
}

/** The record format this store writes (the first byte of every object's value). */
export const recordFormat = 2;
/** u8 format, u32 crc32, u64 object hash. */
const recordHeaderBytes = 13;
const hashOffset = 5;
/** Corruption reports kept for a watcher that has not registered yet (open and the first scrub run before createNode). */
const corruptReportsMax = 1024;
/** How often the scrub runs, each time checking scrubBytesPerSec * scrubIntervalMs / 1000 bytes. */
const scrubIntervalMs = 1000;
export const scrubBytesPerSecDefault = 8 * 1024 * 1024;
/**
 * A finished pass waits this long before the next starts. Without it a small store was read whole
 * several times a second, forever (2-3 % of a busy node's time under load); bit rot is a matter of
 * days, and every read checks what it reads anyway.
 */
export const scrubPassPauseMsDefault = 10 * 60_000;

/** How often a noSync environment is forced to disk. */
const flushIntervalMs = 1000;
/** The named databases of DESIGN.md §6; LMDB needs the count up front. */
const namedDbsMax = 8;
const partitionMax = 0xffff_ffff;
/** What a read-modify-write read of one key: its key buffer and overlay id, its record, its state. */
interface UpdateRead {
  k: Buffer;
  id: string;
  stored: Uint8Array | undefined;
  current: DvvSet | undefined;
}

/** A batch's own transaction (never joined to lmdb-js's async batch), committed before returning. */
const txnFlags = TransactionFlags.ABORTABLE | TransactionFlags.SYNCHRONOUS_COMMIT;

/** A write that has been issued but whose batch has not settled yet. */
interface PendingWrite {
  seq: number;
  key: Buffer;
  /** The new value, or null for a deletion (ownership transfer's drop). */
  bytes: Uint8Array | null;
  /** Settles when this write's batch has settled (committed, and in sync mode on disk; or failed). */
  done: Promise<void>;
}

/** One LMDB write of a batch. An overlay write (`pending` set) is skipped when a later write of the same batch replaced it. */
interface Op {
  db: Database<Uint8Array, Buffer> | Database<Uint8Array, string>;
  key: Buffer | string;
  /** null: remove the key. */
  bytes: Uint8Array | null;
  pending?: Map<string, PendingWrite>;
  id?: string;
  entry?: PendingWrite;
}

/** The writes of one group commit. */
interface Batch {
  ops: Op[];
  /** Merkle segments this batch changed, by partition: written once each, from the trees, at the commit. */
  segments: Map<number, Set<number>>;
  hasHints: boolean;
  /** Touches the `corrupt` database (its in-memory index is reloaded if the batch fails). */
  hasCorrupt: boolean;
  /** Every promise a write of this batch returned is this one. */
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class LmdbStore implements Store {
  /**
   * Uncommitted writes by key (latin1 of the key bytes, a bijection). Bounded by the writes of the
   * open batch (and, with sync: true, of the batches waiting for their fdatasync): each entry leaves
   * when its batch settles.
   */
  private readonly pendingObjects = new Map<string, PendingWrite>();
  private readonly pendingMeta = new Map<string, PendingWrite>();
  /**
   * Every pending hint, by hint key (latin1), in write order. Loaded at open and kept in step with
   * the hints database, so scans and removals never touch LMDB's read path. Bounded by hintsMax.
   */
  private readonly hintIndex = new Map<string, Hint>();
  /**
   * Pending hints per object (object key, latin1): an object with hints is never dropped by
   * ownership transfer. Same bound as hintIndex.
   */
  private readonly hintedObjects = new Map<string, number>();
  private hintSeq = 0;
  private seq = 0;
  /**
   * Keys whose stored copy was found corrupt and not written since (object key, latin1): loaded
   * from `corrupt` at open and kept in step with it. Bounded by the objects the store held.
   */
  private readonly corruptKeys = new Map<string, CorruptObject>();
  private corruptWatcher: ((found: CorruptObject) => void) | undefined;
  /** Runs before each group commit (Store.beforeCommit): the node sends its turn's messages first. */
  private beforeCommitHook: (() => void) | undefined;
  private readonly unreported: CorruptObject[] = [];
  readonly scrubStats: ScrubStats = { objectsChecked: 0, bytesChecked: 0, passes: 0, corruptFound: 0 };
  /** The last object key the scrub checked; undefined: the next run starts a new pass. */
  private scrubCursor: Buffer | undefined;
  /** When the last whole pass ended (undefined: none yet); the next waits scrubPassPauseMsDefault. */
  private scrubPassEndedAt: number | undefined;
  private scrubTimer: ReturnType<typeof setInterval> | undefined;
  /** The batch that writes join until its commit runs (setImmediate). */
  private batch: Batch | undefined;
  /** Settles when every write issued so far has settled (batches settle in commit order). */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Batches committed so far, and how many of them the newest fdatasync started covers. */
  private commits = 0;
  private syncedThrough = 0;
  /** The fdatasync running now, and the one queued to start when it ends. */
  private syncing: Promise<void> | undefined;
  private syncNext: Promise<void> | undefined;
  private flushTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /** Each partition's segment hashes, uncommitted writes included (loaded from `merkle` on first use). */
  private readonly trees: SegmentTable;

  private constructor(
    private readonly env: RootDatabase,
    private readonly objects: Database<Uint8Array, Buffer>,
    private readonly meta: Database<Uint8Array, string>,
    private readonly hintsDb: Database<Uint8Array, Buffer>,
    private readonly merkle: Database<Buffer, Buffer>,
    private readonly corruptDb: Database<Uint8Array, Buffer>,
    readonly segmentCount: number,
    private readonly noSync: boolean,
    scrubBytesPerSec: number,
    foundAtOpen: readonly Buffer[],
  ) {
    this.trees = new SegmentTable(segmentCount, (p) => readSegments(merkle, p, segmentCount));
    this.loadHints();
    this.loadCorrupt();
    if (noSync) {
      this.flushTimer = setInterval(() => void this.flush().catch(() => undefined), flushIntervalMs);
      // The flush timer must never keep a process alive on its own.
      this.flushTimer.unref();
    }
    // Records that failed their checksum while the trees were rebuilt at open: dropped now.
    for (const k of foundAtOpen) this.dropCorrupt(k, k.toString('latin1'), 'open');
    if (scrubBytesPerSec > 0) {
      const budget = Math.max(1, Math.round((scrubBytesPerSec * scrubIntervalMs) / 1000));
      this.scrubTimer = setInterval(() => {
        // Between passes: the last one finished less than scrubPassPauseMs ago.
        if (this.scrubCursor === undefined && this.scrubPassEndedAt !== undefined && Date.now() - this.scrubPassEndedAt < scrubPassPauseMsDefault) return;
        try {
          this.scrub(budget);
        } catch {
          // The environment is closing under us: the next run (if any) tries again.
        }
      }, scrubIntervalMs);
      this.scrubTimer.unref();
    }
  }

  static open(path: string, opts: LmdbStoreOptions = {}): LmdbStore {
    if (typeof zlib.crc32 !== 'function') throw new Error(`ringkv's store checksums objects with zlib.crc32, which needs Node.js 20.15 or later (this is ${process.version})`);
    const noSync = !(opts.sync ?? false);
    mkdirSync(path, { recursive: true });
    const env = open({
      path,
      // lmdb-js guesses "path is a file" when the name has a dot in it; ours is always a directory.
      noSubdir: false,
      maxDbs: namedDbsMax,
      // sync: true commits without waiting for the disk and then syncs (see the header), which is
      // safe only with overlappingSync; asking for it explicitly makes open fail rather than run without.
      ...(noSync ? { noSync: true } : { overlappingSync: true }),
    });
    const objects = env.openDB<Uint8Array, Buffer>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
    const hints = env.openDB<Uint8Array, Buffer>({ name: 'hints', keyEncoding: 'binary', encoding: 'binary' });
    const meta = env.openDB<Uint8Array, string>({ name: 'meta', encoding: 'binary' });
    const merkle = env.openDB<Buffer, Buffer>({ name: 'merkle', keyEncoding: 'binary', encoding: 'binary' });
    const corrupt = env.openDB<Uint8Array, Buffer>({ name: 'corrupt', keyEncoding: 'binary', encoding: 'binary' });
    const segmentCount = opts.segments ?? segmentsDefault;
    const problem = shapeProblem({ segments: segmentCount, fanout: 2 });
    if (problem) throw new RangeError(problem);
    // Objects that fail at open (they do not decode, or fail their checksum) are dropped once the store runs.
    const foundAtOpen = new Map<string, Buffer>();
    for (const k of [...ensureRecords(env, objects, meta), ...ensureTrees(env, objects, meta, merkle, segmentCount)]) foundAtOpen.set(k.toString('latin1'), k);
    return new LmdbStore(env, objects, meta, hints, merkle, corrupt, segmentCount, noSync, opts.scrubBytesPerSec ?? 0, [...foundAtOpen.values()]);
  }

  get(partition: number, key: Uint8Array): DvvSet | undefined {
    const bytes = this.getEncoded(partition, key);
    return bytes === undefined ? undefined : (decode(bytes) as DvvSet);
  }

  /**
   * Entries on disk of the objects, merkle (stored segments: an empty one is no entry) and hints
   * databases: what an operator measures when asking whether deletes gave their space back.
   */
  entryCounts(): { objects: number; merkleSegments: number; hints: number } {
    return { objects: this.objects.getCount(), merkleSegments: this.merkle.getCount(), hints: this.hintsDb.getCount() };
  }

  hintPending(partition: number, key: Uint8Array): boolean {
    return this.hintedObjects.size > 0 && this.hintedObjects.has(objectKey(partition, key).toString('latin1'));
  }

  async removeIfUnchanged(partition: number, key: Uint8Array, expected: DvvSet): Promise<boolean> {
    const k = objectKey(partition, key);
    const id = k.toString('latin1');
    const record = this.record(k, id);
    if (record === undefined || this.hintedObjects.has(id)) return false;
    const current = decode(record.subarray(recordHeaderBytes)) as DvvSet;
    if (!equal(current, expected)) return false;
    const batch = this.openBatch();
    // As in update: the deletion and its segment are in one batch, so the tree forgets the object
    // exactly as the objects do.
    const segment = this.trees.foldHash(partition, key, record, hashOffset);
    this.markSegment(batch, partition, segment);
    this.overlayWrite(batch, this.pendingObjects, id, k, null, this.objects);
    await batch.done;
    return true;
  }

  getEncoded(partition: number, key: Uint8Array): Uint8Array | undefined {
    const k = objectKey(partition, key);
    // Most reads find no write in flight for their key; skip building the overlay's string key then.
    return this.record(k, this.pendingObjects.size === 0 ? undefined : k.toString('latin1'))?.subarray(recordHeaderBytes);
  }

  isCorrupt(partition: number, key: Uint8Array): boolean {
    return this.corruptKeys.size > 0 && this.corruptKeys.has(objectKey(partition, key).toString('latin1'));
  }

  beforeCommit(hook: () => void): void {
    this.beforeCommitHook = hook;
  }

  watchCorruption(watcher: (found: CorruptObject) => void): void {
    this.corruptWatcher = watcher;
    for (const found of this.unreported.splice(0)) watcher(found);
  }

  /**
   * The record of one object as reads see it: the pending overlay's (written by this store, whole)
   * or LMDB's, checked against its crc32. A record that fails is dropped (dropCorrupt) and reads as
   * absent. `id` is the overlay key (latin1 of k), or undefined when nothing is pending at all.
   */
  private record(k: Buffer, id: string | undefined): Uint8Array | undefined {
    if (id !== undefined) {
      const pending = this.pendingObjects.get(id);
      // A pending deletion (ownership transfer's drop, a corrupt object's) reads as absent.
      if (pending) return pending.bytes ?? undefined;
    }
    const stored = this.objects.get(k);
    if (stored === undefined || recordIsSound(stored)) return stored;
    this.dropCorrupt(k, id ?? k.toString('latin1'), 'read');
    return undefined;
  }

  /**
   * A record failed its checksum: its object reads as absent from now on; the next group commit
   * deletes it, writes its key into `corrupt`, and rewrites its Merkle segment as recomputed from
   * the sound records left in it. The watcher hears of it (or will, once it registers).
   */
  private dropCorrupt(k: Buffer, id: string, where: CorruptObject['where']): void {
    if (this.closed) return;
    const partition = k.readUInt32BE(0);
    const key = userKey(k);
    this.scrubStats.corruptFound++;
    const batch = this.openBatch();
    this.overlayWrite(batch, this.pendingObjects, id, k, null, this.objects);
    const found: CorruptObject = { partition, key, where };
    this.corruptKeys.set(id, found);
    batch.hasCorrupt = true;
    batch.ops.push({ db: this.corruptDb, key: k, bytes: encode({ at: Date.now(), where }) });
    this.recomputeSegment(batch, partition, segmentOf(key, this.segmentCount));
    if (this.corruptWatcher) this.corruptWatcher(found);
    else if (this.unreported.length < corruptReportsMax) this.unreported.push(found);
  }

  /** One segment from the records in it as reads see them now (those that fail their checksum are dropped on the way). */
  private recomputeSegment(batch: Batch, partition: number, segment: number): void {
    const fresh = new BigUint64Array(this.segmentCount);
    for (const key of keysInSegments(this.keys(partition), new Set([segment]), this.segmentCount)) {
      const k = objectKey(partition, key);
      const record = this.record(k, k.toString('latin1'));
      if (record !== undefined) foldRecordHash(fresh, key, record);
    }
    this.trees.of(partition)[segment] = fresh[segment]!;
    this.markSegment(batch, partition, segment);
  }

  /**
   * Checks up to `bytesMax` bytes of records (at least one), continuing from where the last run
   * stopped, in key order; a record that fails is dropped as a read would drop it. Returns the
   * number of records checked. A key with a write in flight is skipped: that write replaces it.
   */
  scrub(bytesMax: number): number {
    if (this.closed) return 0;
    const start = this.scrubCursor;
    let bytes = 0;
    let checked = 0;
    let last: Buffer | undefined;
    for (const { key, value } of this.objects.getRange(start ? { start } : {})) {
      const k = Buffer.from(key);
      if (start !== undefined && k.equals(start)) continue;
      last = k;
      checked++;
      bytes += value.length;
      if (!(this.pendingObjects.size > 0 && this.pendingObjects.has(k.toString('latin1'))) && !recordIsSound(value)) {
        this.dropCorrupt(k, k.toString('latin1'), 'scrub');
      }
      if (bytes >= bytesMax) break;
    }
    this.scrubStats.objectsChecked += checked;
    this.scrubStats.bytesChecked += bytes;
    if (bytes >= bytesMax && last !== undefined) this.scrubCursor = last;
    else {
      this.scrubCursor = undefined;
      this.scrubStats.passes++;
      this.scrubPassEndedAt = Date.now();
    }
    return checked;
  }

  async update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
    // A throwing mutate rejects this promise before anything was written.
    const read = this.readForUpdate(partition, key);
    const { result, wait } = this.stage(partition, key, read, mutate(read.current), hints);
    if (wait) await wait;
    return result;
  }

  /**
   * A turn's writes in one call (Store.updateMany): each staged as update stages it, then one wait
   * for all of them: no promise, closure or await per write.
   */
  async updateMany<T>(writes: readonly WriteRequest[], mutate: (index: number, current: DvvSet | undefined) => Mutation<T>): Promise<(T | Error)[]> {
    const results: (T | Error)[] = new Array(writes.length);
    let wait: Promise<void> | undefined;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      try {
        const read = this.readForUpdate(w.partition, w.key);
        const staged = this.stage(w.partition, w.key, read, mutate(i, read.current), w.hints);
        results[i] = staged.result;
        // Almost always the one open batch: one promise to wait for, not one per write.
        if (staged.wait && staged.wait !== wait) {
          if (wait !== undefined) (waits ??= [wait]).push(staged.wait);
          wait = staged.wait;
        }
      } catch (err) {
        results[i] = err instanceof Error ? err : new Error(String(err));
      }
    }
    if (waits) await Promise.all(waits);
    else if (wait) await wait;
    return results;
  }

  /**
   * The key's record and state as a read-modify-write sees them (its pending write, if any), with
   * the key buffer and overlay id the write needs too (made once per update).
   */
  private readForUpdate(partition: number, key: Uint8Array): UpdateRead {
    const k = objectKey(partition, key);
    const id = k.toString('latin1');
    const stored = this.record(k, id);
    return { k, id, stored, current: stored === undefined ? undefined : (decode(stored.subarray(recordHeaderBytes)) as DvvSet) };
  }

  /**
   * Queues what a read-modify-write decided into the open batch, synchronously: that is what makes
   * it atomic and the new state visible to reads at once. `wait`: what must settle before the
   * result may be told (the batch's commit, or an earlier write's).
   */
  private stage<T>(partition: number, key: Uint8Array, read: UpdateRead, m: Mutation<T>, hints?: HintWrite): { result: T; wait: Promise<void> | undefined } {
    const { next, result, nextEncoded } = m;
    const { k, id, stored } = read;
    if (next === null && !hints?.targets.length) {
      // Nothing to write, but the state mutate judged may still be an uncommitted write of this key:
      // resolving now would let a replica ack a state that is not yet durable (found by the
      // simulator: W acks must mean W durable copies). Wait for that write's batch; with sync: true,
      // also for a committed state whose fdatasync has not finished (its overlay entry may be gone
      // when a later write of the key failed).
      const pending = this.pendingObjects.get(id);
      return { result, wait: pending ? pending.done : this.noSync ? undefined : this.durable() };
    }
    const batch = this.openBatch();
    // The object, its Merkle segment and its hints go into one batch: one transaction.
    if (next !== null) {
      const record = makeRecord(key, next, nextEncoded);
      // The state replaced leaves the tree by the hash kept in its record (never hashed again).
      if (stored !== undefined) this.trees.foldHash(partition, key, stored, hashOffset);
      this.markSegment(batch, partition, this.trees.foldHash(partition, key, record, hashOffset));
      this.overlayWrite(batch, this.pendingObjects, id, k, record, this.objects);
      // A good copy of a key found corrupt: the key is sound again.
      if (this.corruptKeys.size > 0 && this.corruptKeys.delete(id)) {
        batch.hasCorrupt = true;
        batch.ops.push({ db: this.corruptDb, key: k, bytes: null });
      }
    }
    for (const target of hints?.targets ?? []) this.putHint(batch, target, partition, key, hints!.now);
    return { result, wait: batch.done };
  }

  *hints(): Iterable<Hint> {
    yield* [...this.hintIndex.values()];
  }

  hintCount(): number {
    return this.hintIndex.size;
  }

  async removeHint(hint: Hint): Promise<boolean> {
    const k = hintKey(hint.target, hint.partition, hint.key);
    const id = k.toString('latin1');
    if (this.hintIndex.get(id)?.seq !== hint.seq) return false;
    const batch = this.openBatch();
    this.hintIndex.delete(id);
    this.countHint(hint.partition, hint.key, -1);
    batch.hasHints = true;
    batch.ops.push({ db: this.hintsDb, key: k, bytes: null });
    await batch.done;
    return true;
  }

  private putHint(batch: Batch, target: string, partition: number, key: Uint8Array, now: number): void {
    const k = hintKey(target, partition, key);
    const id = k.toString('latin1');
    const known = this.hintIndex.get(id);
    const since = known?.since ?? now;
    if (!known) this.countHint(partition, key, 1);
    const h: Hint = { target, partition, key: new Uint8Array(key), seq: ++this.hintSeq, since };
    // Re-hinting moves the hint to the back: the index stays in write order, oldest first.
    this.hintIndex.delete(id);
    this.hintIndex.set(id, h);
    batch.hasHints = true;
    batch.ops.push({ db: this.hintsDb, key: k, bytes: encode({ seq: h.seq, since }) });
  }

  /** (Re)load the index of corrupt keys: at open, and after a failed batch touched it. */
  private loadCorrupt(): void {
    this.corruptKeys.clear();
    for (const { key } of this.corruptDb.getRange({})) {
      const k = Buffer.from(key);
      this.corruptKeys.set(k.toString('latin1'), { partition: k.readUInt32BE(0), key: userKey(k), where: 'open' });
    }
  }

  private countHint(partition: number, key: Uint8Array, delta: 1 | -1): void {
    const id = objectKey(partition, key).toString('latin1');
    const next = (this.hintedObjects.get(id) ?? 0) + delta;
    if (next > 0) this.hintedObjects.set(id, next);
    else this.hintedObjects.delete(id);
  }

  /** (Re)load the hint index from the hints database: at open, and after a failed batch touched hints. */
  private loadHints(): void {
    this.hintIndex.clear();
    this.hintedObjects.clear();
    for (const { key, value } of this.hintsDb.getRange({})) {
      const k = Buffer.from(key);
      const h = decodeHint(k, Buffer.from(value));
      this.hintIndex.set(k.toString('latin1'), h);
      this.countHint(h.partition, h.key, 1);
      this.hintSeq = Math.max(this.hintSeq, h.seq);
    }
  }

  getMeta<T>(name: string): T | undefined {
    const pending = this.pendingMeta.get(name);
    const bytes = pending ? pending.bytes : this.meta.get(name);
    return bytes === undefined || bytes === null ? undefined : (decode(bytes) as T);
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    const bytes = encode(value);
    const batch = this.openBatch();
    this.overlayWrite(batch, this.pendingMeta, name, Buffer.from(name), bytes, this.meta, name);
    await batch.done;
  }

  *keys(partition: number): Iterable<Uint8Array> {
    const start = partitionPrefix(partition);
    const end = partition < partitionMax ? partitionPrefix(partition + 1) : undefined;
    // Keys written but not yet committed are part of what this node holds; merge them in, in order.
    // A pending deletion hides its key, committed or not.
    const pending = [...this.pendingObjects.values()]
      .filter((w) => w.key.compare(start, 0, 4, 0, 4) === 0)
      .sort((a, b) => Buffer.compare(a.key, b.key));
    let i = 0;
    for (const k of this.objects.getKeys(end ? { start, end } : { start })) {
      if (end === undefined && k.compare(start, 0, 4, 0, 4) !== 0) break;
      while (i < pending.length && Buffer.compare(pending[i]!.key, k) < 0) {
        const w = pending[i++]!;
        if (w.bytes !== null) yield userKey(w.key);
      }
      if (i < pending.length && Buffer.compare(pending[i]!.key, k) === 0) {
        if (pending[i++]!.bytes === null) continue;
      }
      yield userKey(k);
    }
    while (i < pending.length) {
      const w = pending[i++]!;
      if (w.bytes !== null) yield userKey(w.key);
    }
  }

  segments(partition: number): BigUint64Array {
    partitionPrefix(partition);
    return this.trees.copy(partition);
  }

  keysInSegment(partition: number, segment: number | ReadonlySet<number>): Iterable<Uint8Array> {
    const wanted = typeof segment === 'number' ? new Set([segment]) : segment;
    return keysInSegments(this.keys(partition), wanted, this.segmentCount);
  }

  /**
   * A consistent, compacted copy of the whole environment into `dir` (an existing, empty
   * directory): LMDB's mdb_env_copy2 with MDB_CP_COMPACT, which reads one snapshot in a read
   * transaction on libuv's thread pool while this store goes on serving, and writes only the pages
   * in use. Every write issued before the call is committed first, so the copy holds every write
   * acknowledged before it was asked for.
   */
  async backup(dir: string): Promise<void> {
    if (this.closed) throw new Error('LmdbStore is closed');
    await this.lastWrite;
    await this.env.backup(dir, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.scrubTimer) clearInterval(this.scrubTimer);
    // The open batch (if any) still commits: its setImmediate runs while we wait.
    await this.lastWrite;
    // Closing an environment does not flush a noSync one; do it so a clean shutdown is on disk.
    await this.flush().catch(() => undefined);
    await this.env.close();
  }

  /**
   * The batch that a write issued now joins. The first write of a batch schedules its commit with
   * setImmediate: every write of this event-loop turn, and of the microtasks it queues, joins it.
   */
  private openBatch(): Batch {
    if (this.closed) throw new Error('LmdbStore is closed');
    if (this.batch) return this.batch;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const batch: Batch = { ops: [], segments: new Map(), hasHints: false, hasCorrupt: false, done, resolve, reject };
    // Writes queued by this class itself (a tree repair) have no caller to see a rejection.
    done.catch(() => undefined);
    this.batch = batch;
    this.lastWrite = done.catch(() => undefined);
    setImmediate(() => this.commit(batch));
    return batch;
  }

  /** Queue one write that reads see at once, through the pending overlay, until its batch settles. */
  private overlayWrite(
    batch: Batch,
    pending: Map<string, PendingWrite>,
    id: string,
    key: Buffer,
    bytes: Uint8Array | null,
    db: Op['db'],
    dbKey: Buffer | string = key,
  ): void {
    const entry: PendingWrite = { seq: ++this.seq, key, bytes, done: batch.done };
    pending.set(id, entry);
    batch.ops.push({ db, key: dbKey, bytes, pending, id, entry });
  }

  private markSegment(batch: Batch, partition: number, segment: number): void {
    let marked = batch.segments.get(partition);
    if (!marked) batch.segments.set(partition, (marked = new Set()));
    marked.add(segment);
  }

  /**
   * Apply one batch in one synchronous transaction, then settle it: at once (ack = committed), or
   * after an fdatasync that started after this commit (sync: true, ack = on disk).
   */
  private commit(batch: Batch): void {
    if (this.batch === batch) this.batch = undefined;
    try {
      this.beforeCommitHook?.();
    } catch {
      // The hook only sends earlier what would be sent after the commit anyway: its failure is the
      // transport's to count, never a reason not to commit.
    }
    try {
      this.env.transactionSync(() => {
        for (const op of batch.ops) {
          // A later write of the same key in this batch replaces this one: skip it.
          if (op.entry && op.pending!.get(op.id!) !== op.entry) continue;
          const db = op.db as Database<Uint8Array, Buffer | string>;
          if (op.bytes === null) db.removeSync(op.key as Buffer);
          else db.putSync(op.key as Buffer, op.bytes);
        }
        // The trees include every write issued so far, and every write issued so far is in this
        // batch or an earlier, committed one: the segments written here match the objects written.
        for (const [partition, marked] of batch.segments) {
          const segs = this.trees.of(partition);
          // An empty segment (hash 0) is no entry at all, as a rebuild writes it: a partition whose
          // keys were all deleted and reaped leaves nothing behind in the merkle database.
          for (const s of marked) {
            if (segs[s] === 0n) this.merkle.removeSync(merkleKey(partition, s));
            else this.merkle.putSync(merkleKey(partition, s), hashBytes(segs[s]!));
          }
        }
      }, this.noSync ? txnFlags : txnFlags | TransactionFlags.NO_SYNC_FLUSH);
    } catch (err) {
      this.fail(batch, err);
      return;
    }
    this.commits++;
    costs.storeTxns++;
    costs.storeWrites += batch.ops.length;
    if (this.noSync) {
      this.settle(batch);
      batch.resolve();
      return;
    }
    this.durable().then(
      () => {
        this.settle(batch);
        batch.resolve();
      },
      (err: unknown) => {
        // Committed, but not known to be on disk: an ack in sync mode must not be given. The overlay
        // entries may leave all the same (LMDB's read path holds these states).
        this.settle(batch);
        batch.reject(err);
      },
    );
  }

  /** Each overlay entry of the batch leaves, unless a newer write of its key replaced it. */
  private settle(batch: Batch): void {
    for (const op of batch.ops) {
      if (op.entry && op.pending!.get(op.id!) === op.entry) op.pending!.delete(op.id!);
    }
  }

  /**
   * A failed transaction wrote nothing: the batch's writes leave the overlay, the trees forget them
   * (rebuilt from the objects as reads now see them, which is what LMDB holds), the hint index is
   * reloaded from the hints database, and every write of the batch rejects.
   */
  private fail(batch: Batch, err: unknown): void {
    this.settle(batch);
    try {
      for (const partition of batch.segments.keys()) this.resyncTree(partition);
      if (batch.hasHints) this.loadHints();
      if (batch.hasCorrupt) this.loadCorrupt();
    } catch {
      // The environment itself is gone (closed under us): nothing left to keep in step.
    }
    batch.reject(err);
  }

  /**
   * After a failed batch, recompute one partition's tree from its objects as reads see them. The
   * tree on disk already matches the objects on disk (the failed transaction wrote neither); should
   * any segment on disk differ all the same, it is written again.
   */
  private resyncTree(partition: number): void {
    const segs = new BigUint64Array(this.segmentCount);
    for (const key of this.keys(partition)) {
      const k = objectKey(partition, key);
      const record = this.record(k, k.toString('latin1'));
      if (record !== undefined) foldRecordHash(segs, key, record);
    }
    this.trees.set(partition, segs);
    const onDisk = readSegments(this.merkle, partition, this.segmentCount) ?? new BigUint64Array(this.segmentCount);
    for (let i = 0; i < segs.length; i++) {
      if (segs[i] === onDisk[i] || this.closed) continue;
      this.markSegment(this.openBatch(), partition, i);
    }
  }

  /**
   * Resolves once an fdatasync that started after the newest commit has finished (group commit:
   * one sync serves every batch committed before it started). At most one runs at a time; batches
   * that commit meanwhile share the one queued after it.
   */
  private durable(): Promise<void> {
    if (this.commits <= this.syncedThrough) return this.syncing ?? Promise.resolve();
    if (this.syncNext) return this.syncNext;
    if (!this.syncing) return this.startSync();
    const next = this.syncing.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.syncNext = undefined;
      return this.startSync();
    });
    this.syncNext = next;
    return next;
  }

  private startSync(): Promise<void> {
    this.syncedThrough = this.commits;
    const env = this.env as unknown as { sync(cb: (err?: Error) => void): void };
    const run = new Promise<void>((resolve, reject) => {
      // mdb_env_sync(force) on libuv's thread pool: an fdatasync even under noSync.
      env.sync((err) => (err ? reject(err) : resolve()));
    });
    this.syncing = run;
    const clear = () => {
      if (this.syncing === run) this.syncing = undefined;
    };
    run.then(clear, () => {
      clear();
      // Not known to be on disk: the next flush must sync again.
      this.syncedThrough = -1;
    });
    return run;
  }

  /** Force committed data to disk (fdatasync even under noSync), when something committed since the last sync. */
  private flush(): Promise<void> {
    return this.durable();
  }
}

/** Hint keys: target id, a zero byte (never in a node id), then the object key. */
function hintKey(target: string, partition: number, key: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(target, 'utf8'), Buffer.from([0]), objectKey(partition, key)]);
}

function decodeHint(k: Buffer, value: Buffer): Hint {
  const zero = k.indexOf(0);
  const { seq, since } = decode(value) as { seq: number; since: number };
  return { target: k.subarray(0, zero).toString('utf8'), partition: k.readUInt32BE(zero + 1), key: new Uint8Array(k.subarray(zero + 5)), seq, since };
}

/** merkle keys: the partition as u32 BE, then the segment as u16 BE. */
function merkleKey(partition: number, segment: number): Buffer {
  const k = Buffer.allocUnsafe(6);
  k.writeUInt32BE(partition, 0);
  k.writeUInt16BE(segment, 4);
  return k;
}

function hashBytes(hash: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(hash, 0);
  return b;
}

/** One partition's committed segments, or undefined when it has none. */
function readSegments(merkle: Database<Buffer, Buffer>, partition: number, segmentCount: number): BigUint64Array | undefined {
  const segs = new BigUint64Array(segmentCount);
  let found = false;
  for (const { key, value } of merkle.getRange({ start: merkleKey(partition, 0), end: Buffer.concat([partitionPrefix(partition), Buffer.from([0xff, 0xff, 0xff])]) })) {
    const k = Buffer.from(key);
    segs[k.readUInt16BE(4)] = Buffer.from(value).readBigUInt64BE(0);
    found = true;
  }
  return found ? segs : undefined;
}

/**
 * One object's record: u8 format, u32 BE crc32 of the rest, u64 BE object hash, the encoded DVV set.
 */
function makeRecord(key: Uint8Array, state: DvvSet, encoded: Uint8Array = encode(state)): Buffer {
  const record = Buffer.allocUnsafe(recordHeaderBytes + encoded.length);
  record[0] = recordFormat;
  writeObjectHash(key, state, record, hashOffset);
  record.set(encoded, recordHeaderBytes);
  record.writeUInt32BE(zlib.crc32(record.subarray(hashOffset)), 1);
  return record;
}

/** True when a record read from LMDB is whole: its format byte, and its crc32 over the hash and the DVV set. */
function recordIsSound(record: Uint8Array): boolean {
  if (record.length <= recordHeaderBytes || record[0] !== recordFormat) return false;
  // lmdb-js hands out Buffers: no view to make on the read path.
  const view = Buffer.isBuffer(record) ? record : Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  return zlib.crc32(view.subarray(hashOffset)) === view.readUInt32BE(1);
}

/** Folds the object hash kept in a record into `segments` (key's segment). */
function foldRecordHash(segments: BigUint64Array, key: Uint8Array, record: Uint8Array): void {
  const seg = segmentOf(key, segments.length);
  const view = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  segments[seg] = segments[seg]! ^ view.readBigUInt64BE(hashOffset);
}

/** Objects rewritten per transaction by the upgrade to records. */
const upgradeChunkObjects = 10_000;

/**
 * Upgrade: a data directory whose objects are not records yet (meta `objects` absent: written
 * before checksums) has every object rewritten as a record, a chunk of objects per transaction, and
 * meta `objects` set at the end. Idempotent: an upgrade cut short by a crash starts again and skips
 * what is already a record (an old object is a MessagePack array, whose first byte is never 2). An
 * object that does not even decode is returned, to be dropped as corrupt.
 */
function ensureRecords(env: RootDatabase, objects: Database<Uint8Array, Buffer>, meta: Database<Uint8Array, string>): Buffer[] {
  const marker = meta.get('objects');
  if (marker !== undefined && (decode(marker) as { format?: number }).format === recordFormat) return [];
  const unreadable: Buffer[] = [];
  let start: Buffer | undefined;
  for (;;) {
    const chunk: [Buffer, Buffer][] = [];
    for (const { key, value } of objects.getRange({ ...(start ? { start } : {}), limit: upgradeChunkObjects + 1 })) {
      const k = Buffer.from(key);
      if (start !== undefined && k.equals(start)) continue;
      chunk.push([k, Buffer.from(value)]);
      if (chunk.length >= upgradeChunkObjects) break;
    }
    if (chunk.length === 0) break;
    env.transactionSync(() => {
      for (const [k, value] of chunk) {
        if (recordIsSound(value)) continue;
        let record: Buffer;
        try {
          record = makeRecord(new Uint8Array(k.subarray(4)), decode(value) as DvvSet);
        } catch {
          unreadable.push(k);
          continue;
        }
        objects.putSync(k, record);
      }
    });
    start = chunk[chunk.length - 1]![0];
  }
  env.transactionSync(() => meta.putSync('objects', Buffer.from(encode({ format: recordFormat }))));
  return unreadable;
}

/** What meta `merkle` says of the trees on disk: the segment count, and which object hash they fold (2: with the value bytes). */
const treeHashVersion = 2;

/**
 * Makes sure `merkle` holds the trees of every object for this segment count and object hash. A
 * data directory written before trees existed, with another segment count, or with the older
 * object hash (the dots only), has them rebuilt from its records' hashes (one pass, in one
 * transaction); meta `merkle` then records both. Records that fail their checksum are left out of
 * the trees and returned, to be dropped as corrupt.
 */
function ensureTrees(env: RootDatabase, objects: Database<Uint8Array, Buffer>, meta: Database<Uint8Array, string>, merkle: Database<Buffer, Buffer>, segmentCount: number): Buffer[] {
  const marker = meta.get('merkle');
  const stored = marker === undefined ? undefined : (decode(marker) as { segments?: number; hash?: number });
  if (stored?.segments === segmentCount && stored.hash === treeHashVersion) return [];
  const tables = new SegmentTable(segmentCount);
  const partitions = new Set<number>();
  const corrupt: Buffer[] = [];
  for (const { key, value } of objects.getRange({})) {
    const k = Buffer.from(key);
    if (!recordIsSound(value)) {
      corrupt.push(k);
      continue;
    }
    const p = k.readUInt32BE(0);
    partitions.add(p);
    foldRecordHash(tables.of(p), new Uint8Array(k.subarray(4)), value);
  }
  env.transactionSync(() => {
    for (const { key } of merkle.getRange({})) merkle.removeSync(Buffer.from(key));
    for (const p of partitions) {
      const segs = tables.of(p);
      for (let i = 0; i < segs.length; i++) if (segs[i] !== 0n) merkle.putSync(merkleKey(p, i), hashBytes(segs[i]!));
    }
    meta.putSync('merkle', Buffer.from(encode({ segments: segmentCount, hash: treeHashVersion })));
  });
  return corrupt;
}

function partitionPrefix(partition: number): Buffer {
  if (!Number.isInteger(partition) || partition < 0 || partition > partitionMax) {
    throw new RangeError(`partition ${partition} is not a 32-bit unsigned integer`);
  }
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(partition, 0);
  return prefix;
}

function objectKey(partition: number, key: Uint8Array): Buffer {
  if (!Number.isInteger(partition) || partition < 0 || partition > partitionMax) {
    throw new RangeError(`partition ${partition} is not a 32-bit unsigned integer`);
  }
  // One allocation (this runs on every read and write).
  const k = Buffer.allocUnsafe(4 + key.length);
  k.writeUInt32BE(partition, 0);
  k.set(key, 4);
  return k;
}

/** The user-key part of an object key, copied so that it never aliases an lmdb-js buffer. */
function userKey(k: Buffer): Uint8Array {
  return new Uint8Array(k.subarray(4));
}
