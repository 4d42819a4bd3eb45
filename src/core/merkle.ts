/**
 * Merkle trees for anti-entropy (Dynamo §4.7): one fixed-shape hash tree per partition, whose leaves
 * (segments) are kept exact in the same store transaction as every object write, so a tree never
 * drifts and never needs a rebuild (Riak's trees did, weekly, at a third of the throughput).
 *
 * Shape (defaults): S = 1024 segments, fan-out F = 32, so the tree has depth 2 above the leaves:
 *
 *   level 0   1 root            hash of its 32 children
 *   level 1   32 inner nodes    node i = hash of segments 32i .. 32i+31
 *   level 2   1024 segments     XOR of the object hashes of the keys in that segment
 *
 * S and F are powers of two with S = F^depth (S at most 65536: a segment is a u16 in the store's
 * key). Only segments are stored; inner nodes are computed from them on demand (33 hashes over 256
 * bytes each), so a tree costs S * 8 bytes per partition whatever the number of keys.
 *
 * - A key's segment: the low bits of ringkv-hash64(key) (src/core/hash.ts), i.e. hash64 mod S. The
 *   partition comes from the top bits of the same hash, so the two are independent.
 * - objectHash(key, state): ringkv-hash64 over the key, the DVV set's causal identity (for each
 *   entry in id order, the clock id, its counter and its number of live values: what dvv.equal
 *   compares) and the bytes of every live value. The dots alone would do between healthy replicas
 *   (a dot names one value forever: a node that loses its data takes a new epoch), but a replica
 *   whose value bytes changed under the same dots (bit rot, a bad disk, a bug) must hash apart from
 *   the others, or anti-entropy could never find it. Hashing the values costs about 5 ns per byte
 *   of each write; a store that keeps each object's hash beside it (LmdbStore) hashes only the new
 *   state of a write, never the old one.
 * - A segment's hash is the XOR of its objects' hashes, so a write updates it in O(1):
 *   seg ^= objectHash(before) ^ objectHash(after). A key never stored contributes 0.
 * - An inner node's hash is ringkv-hash64 over its children's hashes, each 8 bytes big-endian,
 *   in order (position matters, unlike the XOR inside a segment).
 *
 * Comparing two trees (the exchange, actors/exchange.machine.ts): compare the roots; for each node
 * that differs, fetch the other side's children and compare them with ours; descend only into
 * children that differ. What remains at the leaf level are the differing segments, whose keys and
 * object hashes are then compared key by key (compareSegmentEntries).
 *
 * Pure: no I/O, no time, no randomness. On the wire a list of hashes is bytes: 8 per hash,
 * big-endian (hashesToBytes / bytesToHashes).
 */
import type { DvvSet } from './dvv.js';
import { hash64Parts } from './hash.js';

export interface TreeShape {
  /** Leaves (segments) per partition: a power of two, F^depth, at most segmentsMax. */
  segments: number;
  /** Children per inner node: a power of two of at least 2. */
  fanout: number;
}

export const segmentsDefault = 1024;
export const fanoutDefault = 32;
export const treeShapeDefault: TreeShape = { segments: segmentsDefault, fanout: fanoutDefault };
/** A segment index is stored as a u16. */
export const segmentsMax = 1 << 16;

const isPowerOfTwo = (x: number) => Number.isInteger(x) && x >= 1 && (x & (x - 1)) === 0;

/** Why a shape is unusable, or null when it is fine. */
export function shapeProblem(shape: TreeShape): string | null {
  const { segments, fanout } = shape;
  if (!isPowerOfTwo(segments) || segments < 2 || segments > segmentsMax) return `segments must be a power of two from 2 to ${segmentsMax}`;
  if (!isPowerOfTwo(fanout) || fanout < 2) return 'fanout must be a power of two of at least 2';
  if (Math.log2(segments) % Math.log2(fanout) !== 0) return `segments (${segments}) must be a power of fanout (${fanout})`;
  return null;
}

/** Levels above the leaves: log_F(S). The root is level 0, the segments level depth. */
export function treeDepth(shape: TreeShape): number {
  return Math.round(Math.log2(shape.segments) / Math.log2(shape.fanout));
}

/** Nodes on one level: F^level (the segments at level depth). */
export function levelWidth(shape: TreeShape, level: number): number {
  return shape.fanout ** level;
}

// ---------------------------------------------------------------------------------------------
// ringkv-hash64 on two 32-bit halves lives in src/core/hash.ts (hash64Parts): the same values as
// the BigInt reference without BigInt arithmetic, which sits on the write path.

let outHi = 0;
let outLo = 0;

/** Sets outHi:outLo to ringkv-hash64 of bytes[0, length): the object and tree hashes read them. */
function hashParts(bytes: Uint8Array, length: number): void {
  const h = hash64Parts(bytes, length);
  outHi = h.hi;
  outLo = h.lo;
}

function partsToBigint(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** ringkv-hash64 of bytes, equal to hash64 (src/core/hash.ts). */
export function hash64Fast(bytes: Uint8Array): bigint {
  hashParts(bytes, bytes.length);
  return partsToBigint(outHi, outLo);
}

/** The segment of a key: hash64(key) mod S (S a power of two, so its low bits). */
export function segmentOf(key: Uint8Array, segments: number): number {
  return (hash64Parts(key, key.length).lo & (segments - 1)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Object hashes.

const utf8 = new TextEncoder();
/** Grown on demand; the canonical bytes of one object are built here and hashed. */
let scratch = new Uint8Array(1024);
let scratchView = new DataView(scratch.buffer);

function ensureScratch(size: number): void {
  if (scratch.length >= size) return;
  let n = scratch.length;
  while (n < size) n *= 2;
  scratch = new Uint8Array(n);
  scratchView = new DataView(scratch.buffer);
}

function putU32(o: number, x: number): void {
  scratch[o] = x >>> 24;
  scratch[o + 1] = (x >>> 16) & 0xff;
  scratch[o + 2] = (x >>> 8) & 0xff;
  scratch[o + 3] = x & 0xff;
}

/** Writes a clock id as UTF-8 after a u32 length at o; returns the offset after it. */
function putString(o: number, text: string): number {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    scratch[o + 4 + i] = c;
  }
  const written = ascii ? text.length : utf8.encodeInto(text, scratch.subarray(o + 4)).written;
  putU32(o, written);
  return o + 4 + written;
}

/** Sets outHi:outLo to the object hash (see objectHash). */
function objectHashParts(key: Uint8Array, state: DvvSet): void {
  let size = 4 + key.length;
  // A UTF-8 encoding is at most 3 bytes per UTF-16 unit.
  for (const [id, , vals] of state) {
    size += 16 + id.length * 3;
    for (const v of vals) size += 4 + (v === null ? 0 : v.length);
  }
  ensureScratch(size);
  putU32(0, key.length);
  scratch.set(key, 4);
  let o = 4 + key.length;
  for (const [id, n, vals] of state) {
    o = putString(o, id);
    putU32(o, Math.floor(n / 0x1_0000_0000));
    putU32(o + 4, n >>> 0);
    putU32(o + 8, vals.length);
    o += 12;
    for (const v of vals) {
      // A tombstone is 0; a value of L bytes is L + 1 and then its bytes, so the two never meet.
      if (v === null) {
        putU32(o, 0);
        o += 4;
      } else {
        putU32(o, v.length + 1);
        scratch.set(v, o + 4);
        o += 4 + v.length;
      }
    }
  }
  hashParts(scratch, o);
}

/**
 * The object hash of one key's state: ringkv-hash64 over
 *   u32 key length, key bytes, then per entry: u32 id length, id UTF-8, u64 counter, u32 live
 *   values, and per live value (newest first) u32 0 for a tombstone or u32 length + 1 and its bytes
 * (all big-endian). See the file comment for why the values are in it.
 */
export function objectHash(key: Uint8Array, state: DvvSet): bigint {
  objectHashParts(key, state);
  return partsToBigint(outHi, outLo);
}

/** Writes the object hash of `state` into out[offset, offset + 8), big-endian (a store keeps it beside the object). */
export function writeObjectHash(key: Uint8Array, state: DvvSet, out: Uint8Array, offset: number): void {
  objectHashParts(key, state);
  putU32To(out, offset, outHi);
  putU32To(out, offset + 4, outLo);
}

function putU32To(out: Uint8Array, o: number, x: number): void {
  out[o] = x >>> 24;
  out[o + 1] = (x >>> 16) & 0xff;
  out[o + 2] = (x >>> 8) & 0xff;
  out[o + 3] = x & 0xff;
}

// ---------------------------------------------------------------------------------------------
// Segments.

/** Where the high and low 32 bits of a BigUint64Array element sit in a Uint32Array view of it. */
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const hiIndex = littleEndian ? 1 : 0;
const loIndex = littleEndian ? 0 : 1;

export function emptySegments(shape: TreeShape): BigUint64Array {
  return new BigUint64Array(shape.segments);
}

/**
 * Folds one object write into its segment: seg ^= hash(before) ^ hash(after), where a missing
 * state contributes nothing. Returns the segment. `segments.length` is S.
 */
export function foldObject(segments: BigUint64Array, key: Uint8Array, before: DvvSet | undefined, after: DvvSet | undefined): number {
  const seg = segmentOf(key, segments.length);
  // The XOR runs on the two 32-bit halves of the segment, through a view of the same memory.
  const halves = new Uint32Array(segments.buffer, segments.byteOffset + seg * 8, 2);
  for (const state of [before, after]) {
    if (state === undefined) continue;
    objectHashParts(key, state);
    halves[hiIndex] = halves[hiIndex]! ^ outHi;
    halves[loIndex] = halves[loIndex]! ^ outLo;
  }
  return seg;
}

/**
 * Folds one object hash, given as 8 big-endian bytes at hash[offset], into the key's segment: what
 * foldObject does for one state, for a store that kept the object's hash beside it (so the state
 * being replaced is never hashed again). Returns the segment.
 */
export function foldObjectHash(segments: BigUint64Array, key: Uint8Array, hash: Uint8Array, offset: number): number {
  const seg = segmentOf(key, segments.length);
  const halves = new Uint32Array(segments.buffer, segments.byteOffset + seg * 8, 2);
  const hi = ((hash[offset]! << 24) | (hash[offset + 1]! << 16) | (hash[offset + 2]! << 8) | hash[offset + 3]!) >>> 0;
  const lo = ((hash[offset + 4]! << 24) | (hash[offset + 5]! << 16) | (hash[offset + 6]! << 8) | hash[offset + 7]!) >>> 0;
  halves[hiIndex] = halves[hiIndex]! ^ hi;
  halves[loIndex] = halves[loIndex]! ^ lo;
  return seg;
}

/** The segments of a partition computed from scratch from its objects (checks and rebuilds). */
export function buildSegments(objects: Iterable<readonly [Uint8Array, DvvSet]>, segments: number): BigUint64Array {
  const out = new BigUint64Array(segments);
  for (const [key, state] of objects) foldObject(out, key, undefined, state);
  return out;
}

/** The keys of `keys` that fall in one of `segments`, in the order given. */
export function* keysInSegments(keys: Iterable<Uint8Array>, segments: ReadonlySet<number>, segmentCount: number): Generator<Uint8Array> {
  for (const key of keys) if (segments.has(segmentOf(key, segmentCount))) yield key;
}

// ---------------------------------------------------------------------------------------------
// The tree.

/** 8 bytes per hash, big-endian. */
export function hashesToBytes(hashes: ArrayLike<bigint>): Uint8Array {
  const out = new Uint8Array(hashes.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < hashes.length; i++) view.setBigUint64(i * 8, hashes[i]!, false);
  return out;
}

/** The inverse of hashesToBytes; the length must be a multiple of 8. */
export function bytesToHashes(bytes: Uint8Array): BigUint64Array {
  if (bytes.length % 8 !== 0) throw new RangeError(`${bytes.length} bytes is not a whole number of 8-byte hashes`);
  const out = new BigUint64Array(bytes.length / 8);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getBigUint64(i * 8, false);
  return out;
}

/** The hash of one inner node from its children's hashes. */
function innerHash(children: BigUint64Array, start: number, fanout: number): bigint {
  ensureScratch(fanout * 8);
  for (let i = 0; i < fanout; i++) scratchView.setBigUint64(i * 8, children[start + i]!, false);
  hashParts(scratch, fanout * 8);
  return partsToBigint(outHi, outLo);
}

/** Every level of the tree, from the root (levels[0], one hash) to the segments (levels[depth]). */
export function treeLevels(segments: ArrayLike<bigint>, shape: TreeShape): BigUint64Array[] {
  if (segments.length !== shape.segments) throw new RangeError(`${segments.length} segments do not fit a tree of ${shape.segments}`);
  const depth = treeDepth(shape);
  const levels: BigUint64Array[] = new Array<BigUint64Array>(depth + 1);
  levels[depth] = BigUint64Array.from(segments as ArrayLike<bigint>);
  for (let level = depth - 1; level >= 0; level--) {
    const below = levels[level + 1]!;
    const here = new BigUint64Array(levelWidth(shape, level));
    for (let i = 0; i < here.length; i++) here[i] = innerHash(below, i * shape.fanout, shape.fanout);
    levels[level] = here;
  }
  return levels;
}

export function rootHash(segments: ArrayLike<bigint>, shape: TreeShape): bigint {
  return treeLevels(segments, shape)[0]![0]!;
}

/**
 * The responder's step of a tree comparison: the asker sent its hashes of `nodes` on `level`; for
 * each node whose hash differs from ours, answer our hashes of its F children (level + 1), in
 * order. Nodes that agree are left out: nothing below them needs a look.
 */
export function answerTree(
  levels: readonly BigUint64Array[],
  shape: TreeShape,
  level: number,
  nodes: readonly number[],
  theirHashes: ArrayLike<bigint>,
): { nodes: number[]; children: BigUint64Array } {
  const here = levels[level]!;
  const below = levels[level + 1]!;
  const differing = nodes.filter((node, i) => here[node] !== theirHashes[i]);
  const children = new BigUint64Array(differing.length * shape.fanout);
  differing.forEach((node, i) => children.set(below.subarray(node * shape.fanout, (node + 1) * shape.fanout), i * shape.fanout));
  return { nodes: differing, children };
}

/**
 * The asker's step: the responder answered its children of `nodes` (level); compare them with
 * ours and return the children (level + 1) that differ, ascending. At level depth - 1 these are
 * the differing segments.
 */
export function differingChildren(
  levels: readonly BigUint64Array[],
  shape: TreeShape,
  level: number,
  nodes: readonly number[],
  children: ArrayLike<bigint>,
): number[] {
  const below = levels[level + 1]!;
  const out: number[] = [];
  nodes.forEach((node, i) => {
    for (let c = 0; c < shape.fanout; c++) {
      const child = node * shape.fanout + c;
      if (below[child] !== children[i * shape.fanout + c]) out.push(child);
    }
  });
  return out;
}

/**
 * The whole comparison of two trees, run locally with the two protocol steps above: the segments
 * whose hashes differ, ascending. An exchange finds the same set one level per round trip.
 */
export function diffTrees(ours: readonly BigUint64Array[], theirs: readonly BigUint64Array[], shape: TreeShape): number[] {
  const depth = treeDepth(shape);
  let nodes = [0];
  for (let level = 0; level < depth && nodes.length > 0; level++) {
    const answer = answerTree(theirs, shape, level, nodes, nodes.map((n) => ours[level]![n]!));
    nodes = differingChildren(ours, shape, level, answer.nodes, answer.children);
  }
  return nodes;
}

/**
 * Key-by-key comparison of differing segments. `local` is this side's keys with their object
 * hashes; `remoteKeys`/`remoteHashes` the other side's. `send`: local keys the other side lacks or
 * holds differently; `want`: remote keys this side lacks or holds differently. A key held
 * differently is in both: each side merges the other's state, and both end with their sync.
 */
export function compareSegmentEntries(
  local: Iterable<readonly [Uint8Array, bigint]>,
  remoteKeys: readonly Uint8Array[],
  remoteHashes: ArrayLike<bigint>,
): { send: Uint8Array[]; want: Uint8Array[] } {
  const remote = new Map<string, bigint>();
  remoteKeys.forEach((k, i) => remote.set(latin1(k), remoteHashes[i]!));
  const send: Uint8Array[] = [];
  const want: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const [key, hash] of local) {
    const id = latin1(key);
    seen.add(id);
    const theirs = remote.get(id);
    if (theirs === undefined) send.push(key);
    else if (theirs !== hash) {
      send.push(key);
      want.push(key);
    }
  }
  for (const k of remoteKeys) if (!seen.has(latin1(k))) want.push(k);
  return { send, want };
}

/** A key as a string usable as a map key (latin1 is a bijection on bytes). */
function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/**
 * The segment hashes of every partition a store holds: S * 8 bytes per partition, created (or
 * loaded, by `load`) on first use. Stores keep one of these as their view of the trees, including
 * writes not yet committed, and fold every object write into it.
 */
export class SegmentTable {
  private readonly byPartition = new Map<number, BigUint64Array>();

  constructor(
    readonly segmentCount: number,
    private readonly load: (partition: number) => BigUint64Array | undefined = () => undefined,
  ) {}

  /** The live segments of one partition. */
  of(partition: number): BigUint64Array {
    let segs = this.byPartition.get(partition);
    if (segs === undefined) {
      segs = this.load(partition) ?? new BigUint64Array(this.segmentCount);
      this.byPartition.set(partition, segs);
    }
    return segs;
  }

  /** Folds one stored object hash (8 bytes BE at hash[offset]) into its partition's tree; returns the segment. */
  foldHash(partition: number, key: Uint8Array, hash: Uint8Array, offset: number): number {
    return foldObjectHash(this.of(partition), key, hash, offset);
  }

  /** Folds one object write into its partition's tree; returns the segment. */
  fold(partition: number, key: Uint8Array, before: DvvSet | undefined, after: DvvSet | undefined): number {
    return foldObject(this.of(partition), key, before, after);
  }

  /** A copy of one partition's segments. */
  copy(partition: number): BigUint64Array {
    return this.of(partition).slice();
  }

  /** Replaces one partition's segments (after a rebuild). */
  set(partition: number, segments: BigUint64Array): void {
    this.byPartition.set(partition, segments);
  }

  clear(): void {
    this.byPartition.clear();
  }
}
