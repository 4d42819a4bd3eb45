/**
 * LmdbStore: the production Store (DESIGN.md §6). One LMDB environment per node with the named
 * databases `objects`, `hints`, `meta` and `merkle`.
 * Object keys are the partition as 4 big-endian bytes followed by the user key bytes, so one
 * partition's objects are one contiguous key range; values are the codec-encoded DVV set.
 *
 * Merkle trees (src/core/merkle.ts): `merkle` holds each partition's segment hashes, key = the
 * partition as u32 BE then the segment as u16 BE, value = the 8-byte hash BE (absent = 0). Every
 * object put carries the put of its segment in the same event turn, so lmdb-js commits both in one
 * transaction and the tree on disk always equals the tree of the objects on disk. A SegmentTable
 * caches the segments of each partition used (S * 8 bytes each) and already includes uncommitted
 * writes, as `get` does. A data directory without trees of this segment count (older, or opened
 * with another count) gets them rebuilt from its objects at open; meta `merkle` records the count.
 *
 * Durability: an ack means committed in LMDB (survives kill -9 of the process); flushed to disk
 * within about a second; `sync: true` makes an ack mean on disk. With the default (`sync: false`) the
 * environment runs with `noSync`: a commit is written into the OS page cache, which outlives the
 * process but not the machine, and a timer forces an fdatasync every second when something was
 * committed since the last one. With `sync: true` lmdb-js's default applies and a commit resolves
 * only after LMDB's fdatasync.
 *
 * How `update` keeps the Store contract (reads see every update already issued; atomic
 * read-modify-write; per-key order; resolve after commit): `mutate` runs synchronously, at the call,
 * against the newest state of the key, and its result goes into `pending` (an overlay that `get`,
 * `keys` and later updates read first) and into an lmdb-js async put. lmdb-js commits async writes in
 * the order they were issued and resolves each put after its transaction commits. Node runs one
 * callback at a time and this object is the environment's only writer, so no other write can slip in
 * between the read and the write. lmdb-js's `db.transaction(cb)` would also be atomic, but it runs
 * `cb` later on a commit turn, so a read issued in between would miss an update whose promise already
 * exists; it also costs about twice as much per write here.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { type DvvSet, equal } from '../../core/dvv.js';
import { SegmentTable, buildSegments, keysInSegments, segmentsDefault, shapeProblem } from '../../core/merkle.js';
import { decode, encode } from '../../protocol/codec.js';
import type { Hint, HintWrite, Mutation, Store } from '../../ports/store.js';

export interface LmdbStoreOptions {
  /** true: an ack means fdatasync'd. false (default): an ack means committed; flushed within ~1 s. */
  sync?: boolean;
  /** Segments (Merkle leaves) per partition; a power of two up to 65536 (default 1024). */
  segments?: number;
}

/** How often a noSync environment is forced to disk. */
const flushIntervalMs = 1000;
/** The named databases of DESIGN.md §6; LMDB needs the count up front. */
const namedDbsMax = 8;
const partitionMax = 0xffff_ffff;

/** A write that has been issued but whose commit has not been confirmed yet. */
interface PendingWrite {
  seq: number;
  key: Buffer;
  /** The new value, or null for a deletion (ownership transfer's drop). */
  bytes: Uint8Array | null;
  /** Settles when this write has committed (or failed). */
  done: Promise<void>;
}

export class LmdbStore implements Store {
  /**
   * Uncommitted writes by key (latin1 of the key bytes, a bijection). Its size is bounded by the
   * writes in flight, which lmdb-js itself throttles (it blocks the writer past its backpressure
   * threshold), and each entry leaves once its commit is confirmed.
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
  /** Settles when every write issued so far has settled (lmdb-js commits in issue order). */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Something committed since the last forced flush. */
  private dirty = false;
  private flushing: Promise<void> = Promise.resolve();
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
    readonly segmentCount: number,
    private readonly noSync: boolean,
  ) {
    this.trees = new SegmentTable(segmentCount, (p) => readSegments(merkle, p, segmentCount));
    for (const { key, value } of hintsDb.getRange({})) {
      const k = Buffer.from(key);
      const h = decodeHint(k, Buffer.from(value));
      this.hintIndex.set(k.toString('latin1'), h);
      this.countHint(h.partition, h.key, 1);
      this.hintSeq = Math.max(this.hintSeq, h.seq);
    }
    if (noSync) {
      this.flushTimer = setInterval(() => void this.flush(), flushIntervalMs);
      // The flush timer must never keep a process alive on its own.
      this.flushTimer.unref();
    }
  }

  static open(path: string, opts: LmdbStoreOptions = {}): LmdbStore {
    const noSync = !(opts.sync ?? false);
    mkdirSync(path, { recursive: true });
    const env = open({
      path,
      // lmdb-js guesses "path is a file" when the name has a dot in it; ours is always a directory.
      noSubdir: false,
      maxDbs: namedDbsMax,
      ...(noSync ? { noSync: true } : {}),
    });
    const objects = env.openDB<Uint8Array, Buffer>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
    const hints = env.openDB<Uint8Array, Buffer>({ name: 'hints', keyEncoding: 'binary', encoding: 'binary' });
    const meta = env.openDB<Uint8Array, string>({ name: 'meta', encoding: 'binary' });
    const merkle = env.openDB<Buffer, Buffer>({ name: 'merkle', keyEncoding: 'binary', encoding: 'binary' });
    const segmentCount = opts.segments ?? segmentsDefault;
    const problem = shapeProblem({ segments: segmentCount, fanout: 2 });
    if (problem) throw new RangeError(problem);
    ensureTrees(env, objects, meta, merkle, segmentCount);
    return new LmdbStore(env, objects, meta, hints, merkle, segmentCount, noSync);
  }

  get(partition: number, key: Uint8Array): DvvSet | undefined {
    const bytes = this.getEncoded(partition, key);
    return bytes === undefined ? undefined : (decode(bytes) as DvvSet);
  }

  async removeIfUnchanged(partition: number, key: Uint8Array, expected: DvvSet): Promise<boolean> {
    const k = objectKey(partition, key);
    const id = k.toString('latin1');
    const current = this.get(partition, key);
    if (current === undefined || !equal(current, expected) || this.hintedObjects.has(id)) return false;
    // As in update: the deletion and its segment are issued in one event turn, so lmdb-js commits
    // them in one transaction, and the tree forgets the object exactly as the objects do.
    const segment = this.trees.fold(partition, key, current, undefined);
    const removal = this.write(this.pendingObjects, id, k, null, () => this.objects.remove(k)).catch((err: unknown) => {
      this.resyncTree(partition);
      throw err;
    });
    await Promise.all([removal, this.merkle.put(merkleKey(partition, segment), hashBytes(this.trees.of(partition)[segment]!))]);
    return true;
  }

  getEncoded(partition: number, key: Uint8Array): Uint8Array | undefined {
    const k = objectKey(partition, key);
    // Most reads find no write in flight for their key; skip building the overlay's string key then.
    const pending = this.pendingObjects.size === 0 ? undefined : this.pendingObjects.get(k.toString('latin1'));
    // A pending deletion (ownership transfer's drop) reads as absent.
    return pending ? (pending.bytes ?? undefined) : this.objects.get(k);
  }

  async update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
    // Everything up to the put runs synchronously at the call: that is what makes the
    // read-modify-write atomic and the new state visible to reads at once. A throwing mutate
    // rejects this promise before anything was written.
    const current = this.get(partition, key);
    const { next, result } = mutate(current);
    if (next === null && !hints?.targets.length) {
      // Nothing to write, but the state mutate judged may still be an uncommitted write of this key:
      // resolving now would let a replica ack a state that is not yet durable (found by the
      // simulator: W acks must mean W durable copies). Wait for that write's commit.
      const pending = this.pendingObjects.get(objectKey(partition, key).toString('latin1'));
      if (pending) await pending.done;
      return result;
    }
    const k = objectKey(partition, key);
    // lmdb-js commits the puts issued in one event turn in one transaction: the object, its Merkle
    // segment and its hints are committed together or not at all.
    const writes: Promise<unknown>[] = [];
    if (next !== null) {
      const segment = this.trees.fold(partition, key, current, next);
      const bytes = encode(next);
      const write = this.write(this.pendingObjects, k.toString('latin1'), k, bytes, () => this.objects.put(k, bytes));
      writes.push(write.catch((err: unknown) => {
        // The fold above assumed this write: the tree must forget it again.
        this.resyncTree(partition);
        throw err;
      }));
      writes.push(this.merkle.put(merkleKey(partition, segment), hashBytes(this.trees.of(partition)[segment]!)));
    }
    for (const target of hints?.targets ?? []) writes.push(this.putHint(target, partition, key, hints!.now));
    await Promise.all(writes);
    return result;
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
    this.hintIndex.delete(id);
    this.countHint(hint.partition, hint.key, -1);
    await this.hintsDb.remove(k);
    return true;
  }

  private putHint(target: string, partition: number, key: Uint8Array, now: number): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('LmdbStore is closed'));
    const k = hintKey(target, partition, key);
    const id = k.toString('latin1');
    const known = this.hintIndex.get(id);
    const since = known?.since ?? now;
    if (!known) this.countHint(partition, key, 1);
    const h: Hint = { target, partition, key: new Uint8Array(key), seq: ++this.hintSeq, since };
    // Re-hinting moves the hint to the back: the index stays in write order, oldest first.
    this.hintIndex.delete(id);
    this.hintIndex.set(id, h);
    return this.hintsDb.put(k, Buffer.from(encode({ seq: h.seq, since })));
  }

  private countHint(partition: number, key: Uint8Array, delta: 1 | -1): void {
    const id = objectKey(partition, key).toString('latin1');
    const next = (this.hintedObjects.get(id) ?? 0) + delta;
    if (next > 0) this.hintedObjects.set(id, next);
    else this.hintedObjects.delete(id);
  }

  getMeta<T>(name: string): T | undefined {
    const pending = this.pendingMeta.get(name);
    const bytes = pending ? pending.bytes : this.meta.get(name);
    return bytes === undefined || bytes === null ? undefined : (decode(bytes) as T);
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    const bytes = encode(value);
    await this.write(this.pendingMeta, name, Buffer.from(name), bytes, () => this.meta.put(name, bytes));
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
   * After a failed write, recompute one partition's tree from its objects as reads see them, and
   * write every segment again. Writes issued before this commit before it, so whatever segment
   * values they carried are overwritten with the right ones.
   */
  private resyncTree(partition: number): void {
    if (this.closed) return;
    const segs = buildSegments(this.objectsOf(partition), this.segmentCount);
    this.trees.set(partition, segs);
    for (let i = 0; i < segs.length; i++) void this.merkle.put(merkleKey(partition, i), hashBytes(segs[i]!)).catch(() => undefined);
  }

  private *objectsOf(partition: number): Iterable<[Uint8Array, DvvSet]> {
    for (const key of this.keys(partition)) {
      const state = this.get(partition, key);
      if (state !== undefined) yield [key, state];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.lastWrite;
    await this.flushing;
    // Closing an environment does not flush a noSync one; do it so a clean shutdown is on disk.
    if (this.noSync) await this.flush();
    await this.env.close();
  }

  /**
   * Issue one put through the pending overlay. The entry leaves the overlay when this write (and
   * not a newer one of the same key) has committed or failed; from then on LMDB's read path holds
   * the same state, because lmdb-js renews its read snapshot before resolving a commit.
   */
  private write(pending: Map<string, PendingWrite>, id: string, key: Buffer, bytes: Uint8Array | null, put: () => Promise<boolean>): Promise<void> {
    if (this.closed) return Promise.reject(new Error('LmdbStore is closed'));
    const seq = ++this.seq;
    const entry: PendingWrite = { seq, key, bytes, done: Promise.resolve() };
    pending.set(id, entry);
    const settle = () => {
      if (pending.get(id)?.seq === seq) pending.delete(id);
    };
    const done = put().then(
      () => {
        settle();
        this.dirty = true;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
    entry.done = done;
    this.lastWrite = done.catch(() => undefined);
    return done;
  }

  /** Force committed data to disk (fdatasync even under noSync). One flush at a time. */
  private flush(): Promise<void> {
    if (!this.dirty) return this.flushing;
    this.dirty = false;
    const env = this.env as unknown as { sync(cb: (err?: Error) => void): void };
    this.flushing = this.flushing.then(
      () =>
        new Promise<void>((resolve) => {
          // A failed flush is retried on the next tick; the data is committed either way.
          env.sync((err) => {
            if (err) this.dirty = true;
            resolve();
          });
        }),
    );
    return this.flushing;
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
 * Makes sure `merkle` holds the trees of every object for this segment count. A data directory
 * written before trees existed, or with another segment count, has them rebuilt from its objects
 * (one pass, in one transaction); meta `merkle` then records the count.
 */
function ensureTrees(env: RootDatabase, objects: Database<Uint8Array, Buffer>, meta: Database<Uint8Array, string>, merkle: Database<Buffer, Buffer>, segmentCount: number): void {
  const marker = meta.get('merkle');
  if (marker !== undefined && (decode(marker) as { segments?: number }).segments === segmentCount) return;
  const tables = new SegmentTable(segmentCount);
  const partitions = new Set<number>();
  for (const { key, value } of objects.getRange({})) {
    const k = Buffer.from(key);
    const p = k.readUInt32BE(0);
    partitions.add(p);
    tables.fold(p, new Uint8Array(k.subarray(4)), undefined, decode(value) as DvvSet);
  }
  env.transactionSync(() => {
    for (const { key } of merkle.getRange({})) merkle.removeSync(Buffer.from(key));
    for (const p of partitions) {
      const segs = tables.of(p);
      for (let i = 0; i < segs.length; i++) if (segs[i] !== 0n) merkle.putSync(merkleKey(p, i), hashBytes(segs[i]!));
    }
    meta.putSync('merkle', Buffer.from(encode({ segments: segmentCount })));
  });
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
