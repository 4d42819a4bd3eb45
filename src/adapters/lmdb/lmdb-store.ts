/**
 * LmdbStore: the production Store (DESIGN.md §6). One LMDB environment per node with the named
 * databases `objects`, `hints`, `meta` and `merkle` (hints and merkle are opened but not used yet).
 * Object keys are the partition as 4 big-endian bytes followed by the user key bytes, so one
 * partition's objects are one contiguous key range; values are the codec-encoded DVV set.
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
import type { DvvSet } from '../../core/dvv.js';
import { decode, encode } from '../../protocol/codec.js';
import type { Hint, HintWrite, Mutation, Store } from '../../ports/store.js';

export interface LmdbStoreOptions {
  /** true: an ack means fdatasync'd. false (default): an ack means committed; flushed within ~1 s. */
  sync?: boolean;
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
  bytes: Uint8Array;
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
  private hintSeq = 0;
  private seq = 0;
  /** Settles when every write issued so far has settled (lmdb-js commits in issue order). */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Something committed since the last forced flush. */
  private dirty = false;
  private flushing: Promise<void> = Promise.resolve();
  private flushTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  private constructor(
    private readonly env: RootDatabase,
    private readonly objects: Database<Uint8Array, Buffer>,
    private readonly meta: Database<Uint8Array, string>,
    private readonly hintsDb: Database<Uint8Array, Buffer>,
    private readonly noSync: boolean,
  ) {
    for (const { key, value } of hintsDb.getRange({})) {
      const k = Buffer.from(key);
      const h = decodeHint(k, Buffer.from(value));
      this.hintIndex.set(k.toString('latin1'), h);
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
    env.openDB({ name: 'merkle', keyEncoding: 'binary', encoding: 'binary' });
    return new LmdbStore(env, objects, meta, hints, noSync);
  }

  get(partition: number, key: Uint8Array): DvvSet | undefined {
    const k = objectKey(partition, key);
    const pending = this.pendingObjects.get(k.toString('latin1'));
    const bytes = pending ? pending.bytes : this.objects.get(k);
    return bytes === undefined ? undefined : (decode(bytes) as DvvSet);
  }

  async update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
    // Everything up to the put runs synchronously at the call: that is what makes the
    // read-modify-write atomic and the new state visible to reads at once. A throwing mutate
    // rejects this promise before anything was written.
    const { next, result } = mutate(this.get(partition, key));
    if (next === null && !hints?.targets.length) return result;
    const k = objectKey(partition, key);
    // lmdb-js commits the puts issued in one event turn in one transaction: the object and its
    // hints are committed together or not at all.
    const writes: Promise<unknown>[] = [];
    if (next !== null) writes.push(this.write(this.pendingObjects, k.toString('latin1'), k, encode(next), (bytes) => this.objects.put(k, bytes)));
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
    await this.hintsDb.remove(k);
    return true;
  }

  private putHint(target: string, partition: number, key: Uint8Array, now: number): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('LmdbStore is closed'));
    const k = hintKey(target, partition, key);
    const id = k.toString('latin1');
    const since = this.hintIndex.get(id)?.since ?? now;
    const h: Hint = { target, partition, key: new Uint8Array(key), seq: ++this.hintSeq, since };
    // Re-hinting moves the hint to the back: the index stays in write order, oldest first.
    this.hintIndex.delete(id);
    this.hintIndex.set(id, h);
    return this.hintsDb.put(k, Buffer.from(encode({ seq: h.seq, since })));
  }

  getMeta<T>(name: string): T | undefined {
    const pending = this.pendingMeta.get(name);
    const bytes = pending ? pending.bytes : this.meta.get(name);
    return bytes === undefined ? undefined : (decode(bytes) as T);
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    await this.write(this.pendingMeta, name, Buffer.from(name), encode(value), (bytes) => this.meta.put(name, bytes));
  }

  *keys(partition: number): Iterable<Uint8Array> {
    const start = partitionPrefix(partition);
    const end = partition < partitionMax ? partitionPrefix(partition + 1) : undefined;
    // Keys written but not yet committed are part of what this node holds; merge them in, in order.
    const pending = [...this.pendingObjects.values()]
      .map((w) => w.key)
      .filter((k) => k.compare(start, 0, 4, 0, 4) === 0)
      .sort(Buffer.compare);
    let i = 0;
    for (const k of this.objects.getKeys(end ? { start, end } : { start })) {
      if (end === undefined && k.compare(start, 0, 4, 0, 4) !== 0) break;
      while (i < pending.length && Buffer.compare(pending[i]!, k) < 0) yield userKey(pending[i++]!);
      if (i < pending.length && Buffer.compare(pending[i]!, k) === 0) i++;
      yield userKey(k);
    }
    while (i < pending.length) yield userKey(pending[i++]!);
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
  private write(pending: Map<string, PendingWrite>, id: string, key: Buffer, bytes: Uint8Array, put: (bytes: Uint8Array) => Promise<boolean>): Promise<void> {
    if (this.closed) return Promise.reject(new Error('LmdbStore is closed'));
    const seq = ++this.seq;
    pending.set(id, { seq, key, bytes });
    const settle = () => {
      if (pending.get(id)?.seq === seq) pending.delete(id);
    };
    const done = put(bytes).then(
      () => {
        settle();
        this.dirty = true;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
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

function partitionPrefix(partition: number): Buffer {
  if (!Number.isInteger(partition) || partition < 0 || partition > partitionMax) {
    throw new RangeError(`partition ${partition} is not a 32-bit unsigned integer`);
  }
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(partition, 0);
  return prefix;
}

function objectKey(partition: number, key: Uint8Array): Buffer {
  return Buffer.concat([partitionPrefix(partition), key]);
}

/** The user-key part of an object key, copied so that it never aliases an lmdb-js buffer. */
function userKey(k: Buffer): Uint8Array {
  return new Uint8Array(k.subarray(4));
}
