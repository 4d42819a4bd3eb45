/**
 * SimStore: an in-memory Store with LmdbStore's contract and its failure modes (DESIGN.md §4, §6).
 *
 * - `update` runs `mutate` synchronously at the call against the newest state of the key; the new
 *   state goes into an overlay of uncommitted writes that `get`, `keys` and later updates read first
 *   (as LmdbStore's pending map). Reads never go back in time behind an issued write.
 * - Each transaction (an object with its hints, a hint removal, a meta write) commits after a small
 *   seeded delay on the SimClock, atomically and strictly in issue order; its promise resolves only
 *   then. An update that writes nothing (next === null, no hints) waits for the commit of the key's
 *   pending write, if there is one, as LmdbStore's does: the state it judged may not be durable yet.
 * - Merkle segments follow LmdbStore: every object write folds the object into its segment
 *   (src/core/merkle.ts) and writes that segment in the same transaction; the live trees include
 *   uncommitted writes, as `get` does, and a crash reloads them from the committed segments.
 * - Hints follow LmdbStore: an in-memory index, changed at the call, in write order; a crash
 *   reloads it from the committed hints, in key order (target, partition, key), as LmdbStore does
 *   when it opens.
 * - Everything is stored as codec bytes and decoded on every read, so no caller can alias the
 *   stored state (an aliasing bug cannot hide behind the simulation).
 * - `crash()` loses every uncommitted transaction (their promises never settle: the process that
 *   waited for them is gone); committed data survives. `wipe()` loses everything (the disk is gone).
 * - `open()` gives one node incarnation its handle on the store, as a process opens its LMDB
 *   environment at start. A crash fences every handle opened before it: a dead incarnation's late
 *   writes are ignored (and never settle), so nothing it left behind can touch the restarted node's
 *   data.
 */
import { type DvvSet, equal } from '../../core/dvv.js';
import { SegmentTable, keysInSegments, segmentsDefault } from '../../core/merkle.js';
import type { Prng } from '../../core/prng.js';
import type { Hint, HintWrite, Mutation, Store } from '../../ports/store.js';
import { decode, encode } from '../../protocol/codec.js';
import type { SimClock } from './sim-clock.js';

export interface SimStoreOptions {
  /** Each commit takes a uniform whole number of ms in [commitDelayMinMs, commitDelayMaxMs]. */
  commitDelayMinMs?: number;
  commitDelayMaxMs?: number;
  /** Segments (Merkle leaves) per partition (default: the production default). */
  segments?: number;
}

export const commitDelayMinMsDefault = 1;
export const commitDelayMaxMsDefault = 5;

type Table = 'objects' | 'meta' | 'hints' | 'merkle';

/** One write of a transaction: bytes to put, or null to delete. */
interface Op {
  table: Table;
  id: string;
  bytes: Uint8Array | null;
}

interface PendingWrite {
  seq: number;
  /** The new value, or null for a deletion (ownership transfer's drop). */
  bytes: Uint8Array | null;
  /** Settles when the transaction holding this write has committed (never, if a crash comes first). */
  done: Promise<void>;
}

interface Transaction {
  seq: number;
  ops: Op[];
  resolve: () => void;
  timer: unknown;
}

export interface SimStoreStats {
  /** Transactions committed. */
  commits: number;
  /** Uncommitted transactions lost to crashes. */
  lostOnCrash: number;
  crashes: number;
  wipes: number;
}

/** A copy of a SimStore's committed tables (SimStore.backup). */
export interface SimBackup {
  takenAt: number;
  tables: Record<Table, Map<string, Uint8Array>>;
}

export class SimStore implements Store {
  readonly stats: SimStoreStats = { commits: 0, lostOnCrash: 0, crashes: 0, wipes: 0 };
  private readonly committed: Record<Table, Map<string, Uint8Array>> = { objects: new Map(), meta: new Map(), hints: new Map(), merkle: new Map() };
  readonly segmentCount: number;
  /** Each partition's segments, uncommitted writes included (loaded from committed ones on first use). */
  private trees: SegmentTable;
  private readonly pendingObjects = new Map<string, PendingWrite>();
  private readonly pendingMeta = new Map<string, PendingWrite>();
  /** Every hint, as the node sees it (written or removed at the call), in write order. */
  private hintIndex = new Map<string, Hint>();
  private hintSeq = 0;
  private readonly queue: Transaction[] = [];
  private seq = 0;
  /** No commit may land before the one issued before it. */
  private lastCommitAt = 0;
  private readonly delayMin: number;
  private readonly delayMax: number;
  /** Bumped by every crash; handles of an older generation are fenced off. */
  private generation = 0;
  /**
   * Told of every object removeIfUnchanged deletes (ownership transfer's drops, the reaper's), at
   * the call: the simulator remembers what each reaped tombstone had superseded.
   */
  onRemoved?: (partition: number, key: Uint8Array, state: DvvSet) => void;

  constructor(
    private readonly clock: SimClock,
    private readonly prng: Prng,
    opts: SimStoreOptions = {},
  ) {
    this.delayMin = opts.commitDelayMinMs ?? commitDelayMinMsDefault;
    this.delayMax = opts.commitDelayMaxMs ?? commitDelayMaxMsDefault;
    this.segmentCount = opts.segments ?? segmentsDefault;
    this.trees = this.loadTrees();
  }

  get(partition: number, key: Uint8Array): DvvSet | undefined {
    const bytes = this.getEncoded(partition, key);
    return bytes === undefined ? undefined : (decode(bytes) as DvvSet);
  }

  async removeIfUnchanged(partition: number, key: Uint8Array, expected: DvvSet): Promise<boolean> {
    const current = this.get(partition, key);
    const id = objectId(partition, key);
    if (current === undefined || !equal(current, expected) || this.hasHint(id)) return false;
    this.onRemoved?.(partition, key, current);
    const segment = this.trees.fold(partition, key, current, undefined);
    await this.transact([
      { table: 'objects', id, bytes: null },
      { table: 'merkle', id: merkleId(partition, segment), bytes: segmentBytes(this.trees.of(partition)[segment]!) },
    ]);
    return true;
  }

  hintPending(partition: number, key: Uint8Array): boolean {
    return this.hasHint(objectId(partition, key));
  }

  /** Whether any hint is pending for the object (a scan: the simulator's hint counts are small). */
  private hasHint(objectKeyId: string): boolean {
    for (const id of this.hintIndex.keys()) if (id.slice(id.indexOf('\u0000') + 1) === objectKeyId) return true;
    return false;
  }

  getEncoded(partition: number, key: Uint8Array): Uint8Array | undefined {
    const id = objectId(partition, key);
    const pending = this.pendingObjects.get(id);
    // A pending deletion (ownership transfer's drop) reads as absent.
    return pending ? (pending.bytes ?? undefined) : this.committed.objects.get(id);
  }

  async update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
    const current = this.get(partition, key);
    const { next, result, nextEncoded } = mutate(current);
    const targets = hints?.targets ?? [];
    if (next === null && targets.length === 0) {
      const pending = this.pendingObjects.get(objectId(partition, key));
      if (pending) await pending.done;
      return result;
    }
    const ops: Op[] = [];
    if (next !== null) {
      ops.push({ table: 'objects', id: objectId(partition, key), bytes: nextEncoded ?? encode(next) });
      const segment = this.trees.fold(partition, key, current, next);
      ops.push({ table: 'merkle', id: merkleId(partition, segment), bytes: segmentBytes(this.trees.of(partition)[segment]!) });
    }
    for (const target of targets) ops.push(this.putHint(target, partition, key, hints!.now));
    await this.transact(ops);
    return result;
  }

  *hints(): Iterable<Hint> {
    for (const h of [...this.hintIndex.values()]) yield { ...h, key: new Uint8Array(h.key) };
  }

  hintCount(): number {
    return this.hintIndex.size;
  }

  async removeHint(hint: Hint): Promise<boolean> {
    const id = hintId(hint.target, hint.partition, hint.key);
    if (this.hintIndex.get(id)?.seq !== hint.seq) return false;
    this.hintIndex.delete(id);
    await this.transact([{ table: 'hints', id, bytes: null }]);
    return true;
  }

  segments(partition: number): BigUint64Array {
    return this.trees.copy(partition);
  }

  keysInSegment(partition: number, segment: number | ReadonlySet<number>): Iterable<Uint8Array> {
    const wanted = typeof segment === 'number' ? new Set([segment]) : segment;
    return keysInSegments(this.keys(partition), wanted, this.segmentCount);
  }

  getMeta<T>(name: string): T | undefined {
    const bytes = this.pendingMeta.get(name)?.bytes ?? this.committed.meta.get(name);
    return bytes === undefined || bytes === null ? undefined : (decode(bytes) as T);
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    await this.transact([{ table: 'meta', id: name, bytes: encode(value) }]);
  }

  *keys(partition: number): Iterable<Uint8Array> {
    const prefix = partitionPrefix(partition);
    const ids = new Set<string>();
    for (const id of this.committed.objects.keys()) if (id.startsWith(prefix)) ids.add(id);
    for (const id of this.pendingObjects.keys()) if (id.startsWith(prefix)) ids.add(id);
    // A pending deletion hides its key.
    for (const id of [...ids].sort()) if (this.pendingObjects.get(id)?.bytes !== null) yield userKey(id);
  }

  async close(): Promise<void> {}

  /** A handle for one node incarnation; fenced off by the next crash. */
  open(): Store {
    return new SimStoreHandle(this, this.generation);
  }

  isCurrent(generation: number): boolean {
    return generation === this.generation;
  }

  /** The process died: uncommitted transactions are gone and their promises never settle. */
  crash(): void {
    this.generation++;
    this.stats.crashes++;
    this.stats.lostOnCrash += this.queue.length;
    for (const t of this.queue) this.clock.clearTimeout(t.timer);
    this.queue.length = 0;
    this.pendingObjects.clear();
    this.pendingMeta.clear();
    this.reloadHints();
    this.trees = this.loadTrees();
  }

  /** The disk is gone: committed data too. */
  wipe(): void {
    this.crash();
    this.stats.wipes++;
    for (const table of Object.values(this.committed)) table.clear();
    this.reloadHints();
    this.trees = this.loadTrees();
  }

  /**
   * A backup, as `ringkv backup` takes one of LMDB: a copy of what is committed (objects, meta,
   * hints, Merkle segments), and the simulated time it was taken.
   */
  backup(): SimBackup {
    const tables = Object.fromEntries(Object.entries(this.committed).map(([name, table]) => [name, new Map(table)])) as Record<Table, Map<string, Uint8Array>>;
    return { takenAt: this.clock.now(), tables };
  }

  /**
   * The disk replaced by a backup, as `ringkv node --restore-from` does: what was there is gone (a
   * wipe) and the backup's tables come back, its identity marked running, so that the node starts
   * with a new epoch (src/runtime/identity.ts markRestored).
   */
  restore(b: SimBackup): void {
    this.wipe();
    for (const [name, table] of Object.entries(b.tables)) for (const [id, bytes] of table) this.committed[name as Table].set(id, bytes);
    const identity = this.committed.meta.get('identity');
    if (identity !== undefined) this.committed.meta.set('identity', encode({ ...(decode(identity) as object), running: true }));
    this.reloadHints();
    this.trees = this.loadTrees();
  }

  /** Transactions issued and not yet committed. */
  uncommitted(): number {
    return this.queue.length;
  }

  /** Every object as the node would read it (overlay included): [partition, key, state]. */
  *entries(): Iterable<[number, Uint8Array, DvvSet]> {
    const ids = new Set<string>([...this.committed.objects.keys(), ...this.pendingObjects.keys()]);
    for (const id of [...ids].sort()) {
      const p = partitionOfId(id);
      const key = userKey(id);
      const state = this.get(p, key);
      if (state !== undefined) yield [p, key, state];
    }
  }

  private putHint(target: string, partition: number, key: Uint8Array, now: number): Op {
    const id = hintId(target, partition, key);
    const since = this.hintIndex.get(id)?.since ?? now;
    const hint: Hint = { target, partition, key: new Uint8Array(key), seq: ++this.hintSeq, since };
    // Re-hinting moves the hint to the back: the index stays in write order, oldest first.
    this.hintIndex.delete(id);
    this.hintIndex.set(id, hint);
    return { table: 'hints', id, bytes: encode({ seq: hint.seq, since }) };
  }

  /** Live trees that start from the committed segments, as LmdbStore's do when it opens. */
  private loadTrees(): SegmentTable {
    return new SegmentTable(this.segmentCount, (partition) => {
      const prefix = partitionPrefix(partition);
      let segs: BigUint64Array | undefined;
      for (const [id, bytes] of this.committed.merkle) {
        if (!id.startsWith(prefix)) continue;
        segs ??= new BigUint64Array(this.segmentCount);
        segs[parseInt(id.slice(8), 16)] = Buffer.from(bytes).readBigUInt64BE(0);
      }
      return segs;
    });
  }

  /** Rebuild the hint index from committed hints, as LmdbStore does when it opens. */
  private reloadHints(): void {
    this.hintIndex = new Map();
    this.hintSeq = 0;
    for (const id of [...this.committed.hints.keys()].sort()) {
      const { seq, since } = decode(this.committed.hints.get(id)!) as { seq: number; since: number };
      const { target, partition, key } = parseHintId(id);
      this.hintIndex.set(id, { target, partition, key, seq, since });
      this.hintSeq = Math.max(this.hintSeq, seq);
    }
  }

  private transact(ops: Op[]): Promise<void> {
    const seq = ++this.seq;
    const at = Math.max(this.clock.now() + this.prng.int(this.delayMin, this.delayMax), this.lastCommitAt);
    this.lastCommitAt = at;
    const done = new Promise<void>((resolve) => {
      const t: Transaction = { seq, ops, resolve, timer: undefined };
      t.timer = this.clock.setTimeout(() => this.commit(t), at - this.clock.now());
      this.queue.push(t);
    });
    for (const op of ops) {
      const pending = op.table === 'objects' ? this.pendingObjects : op.table === 'meta' ? this.pendingMeta : undefined;
      // Objects: a deletion is pending too, so reads stop seeing the key at once.
      if (pending && (op.bytes || op.table === 'objects')) pending.set(op.id, { seq, bytes: op.bytes, done });
    }
    return done;
  }

  private commit(t: Transaction): void {
    // Timers with equal deadlines fire in the order they were set, so commits land in issue order.
    const head = this.queue.shift();
    if (head !== t) throw new Error(`SimStore committed out of order (seq ${t.seq}, expected ${head?.seq})`);
    for (const op of t.ops) {
      const table = this.committed[op.table];
      if (op.bytes) table.set(op.id, op.bytes);
      else table.delete(op.id);
      const pending = op.table === 'objects' ? this.pendingObjects : op.table === 'meta' ? this.pendingMeta : undefined;
      if (pending?.get(op.id)?.seq === t.seq) pending.delete(op.id);
    }
    this.stats.commits++;
    this.clock.touch();
    t.resolve();
  }
}

/** One incarnation's view of a SimStore: after a crash its writes are ignored and never settle. */
class SimStoreHandle implements Store {
  constructor(
    private readonly store: SimStore,
    private readonly generation: number,
  ) {}

  private get dead(): boolean {
    return !this.store.isCurrent(this.generation);
  }

  get(partition: number, key: Uint8Array): DvvSet | undefined {
    return this.store.get(partition, key);
  }

  getEncoded(partition: number, key: Uint8Array): Uint8Array | undefined {
    return this.store.getEncoded(partition, key);
  }

  update<T>(partition: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
    if (this.dead) return new Promise<T>(() => {});
    return this.store.update(partition, key, mutate, hints);
  }

  hints(): Iterable<Hint> {
    return this.store.hints();
  }

  hintCount(): number {
    return this.store.hintCount();
  }

  removeHint(hint: Hint): Promise<boolean> {
    if (this.dead) return new Promise<boolean>(() => {});
    return this.store.removeHint(hint);
  }

  getMeta<T>(name: string): T | undefined {
    return this.store.getMeta<T>(name);
  }

  putMeta(name: string, value: unknown): Promise<void> {
    if (this.dead) return new Promise<void>(() => {});
    return this.store.putMeta(name, value);
  }

  keys(partition: number): Iterable<Uint8Array> {
    return this.store.keys(partition);
  }

  hintPending(partition: number, key: Uint8Array): boolean {
    return this.store.hintPending(partition, key);
  }

  removeIfUnchanged(partition: number, key: Uint8Array, expected: DvvSet): Promise<boolean> {
    if (this.dead) return new Promise<boolean>(() => {});
    return this.store.removeIfUnchanged(partition, key, expected);
  }

  get segmentCount(): number {
    return this.store.segmentCount;
  }

  segments(partition: number): BigUint64Array {
    return this.store.segments(partition);
  }

  keysInSegment(partition: number, segment: number | ReadonlySet<number>): Iterable<Uint8Array> {
    return this.store.keysInSegment(partition, segment);
  }

  async close(): Promise<void> {}
}

/** An object's id: the partition as 8 hex digits, then the key bytes as latin1 (a bijection). */
function objectId(partition: number, key: Uint8Array): string {
  return partitionPrefix(partition) + Buffer.from(key).toString('latin1');
}

/** A segment's id: the partition as 8 hex digits, then the segment as 4. */
function merkleId(partition: number, segment: number): string {
  return partitionPrefix(partition) + segment.toString(16).padStart(4, '0');
}

function hashBytes(hash: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(hash, 0);
  return new Uint8Array(b);
}

/** A hint's id: the target, a zero character (never in a node id), then the object id. */
function hintId(target: string, partition: number, key: Uint8Array): string {
  return `${target}\u0000${objectId(partition, key)}`;
}

function parseHintId(id: string): { target: string; partition: number; key: Uint8Array } {
  const zero = id.indexOf('\u0000');
  const object = id.slice(zero + 1);
  return { target: id.slice(0, zero), partition: partitionOfId(object), key: userKey(object) };
}

function partitionPrefix(partition: number): string {
  return (partition >>> 0).toString(16).padStart(8, '0');
}

function partitionOfId(id: string): number {
  return parseInt(id.slice(0, 8), 16);
}

function userKey(id: string): Uint8Array {
  return new Uint8Array(Buffer.from(id.slice(8), 'latin1'));
}

/** A segment as stored: its hash, or no entry when it is empty (hash 0), as LmdbStore keeps them. */
function segmentBytes(hash: bigint): Uint8Array | null {
  return hash === 0n ? null : hashBytes(hash);
}
