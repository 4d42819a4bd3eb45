/**
 * Merkle trees of anti-entropy (src/core/merkle.ts): the fast hash equals ringkv-hash64, the tree
 * comparison finds exactly the segments (and then exactly the keys) that differ, and the tree
 * maintained write by write always equals one rebuilt from scratch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DvvSet, equal, sync, update } from '../../src/core/dvv.js';
import { hash64 } from '../../src/core/hash.js';
import {
  buildSegments,
  bytesToHashes,
  compareSegmentEntries,
  diffTrees,
  emptySegments,
  foldObject,
  foldObjectHash,
  hash64Fast,
  hashesToBytes,
  keysInSegments,
  objectHash,
  rootHash,
  segmentOf,
  shapeProblem,
  treeDepth,
  treeLevels,
  treeShapeDefault,
  type TreeShape,
  writeObjectHash,
} from '../../src/core/merkle.js';

const utf8 = new TextEncoder();
const key = (i: number) => utf8.encode(`key-${i}`);
const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');

/** A state with one live value written by `id` at counter n. */
const stateOf = (id: string, n: number, value: string | null = 'v'): DvvSet => [[id, n, [value === null ? null : utf8.encode(value)]]];

/**
 * A dot names one value forever (a clock id is a node and its epoch): the value of dot (id, n) is
 * derived from the dot, a tombstone for every third counter, so independent states agree on it.
 */
const valueOfDot = (id: string, n: number) => (n % 3 === 0 ? null : utf8.encode(`${id}#${n}`));
const arbState: fc.Arbitrary<DvvSet> = fc
  .array(fc.constantFrom('a/1', 'b/1', 'c/2', 'é/3'), { maxLength: 4 })
  .map((writers) => {
    let s: DvvSet = [];
    for (const id of writers) s = update(s, [], id, valueOfDot(id, (s.find(([e]) => e === id)?.[1] ?? 0) + 1));
    return s;
  });

function segmentsOf(objects: Map<string, [Uint8Array, DvvSet]>, shape: TreeShape): BigUint64Array {
  return buildSegments(objects.values(), shape.segments);
}

describe('hashes', () => {
  it('hash64Fast and segmentOf agree with ringkv-hash64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(2, 32, 1024, 65536), (bytes, s) => {
        const h = hash64(bytes);
        expect(hash64Fast(bytes)).toBe(h);
        expect(segmentOf(bytes, s)).toBe(Number(h % BigInt(s)));
      }),
    );
  });

  it('equal DVV sets have equal object hashes, whatever order they were merged in', () => {
    fc.assert(
      fc.property(arbState, arbState, arbState, (a, b, c) => {
        const left = sync(sync(a, b), c);
        const right = sync(a, sync(c, b));
        expect(equal(left, right)).toBe(true);
        expect(objectHash(key(1), left)).toBe(objectHash(key(1), right));
      }),
    );
  });

  it('different keys or different histories hash differently', () => {
    expect(objectHash(key(1), stateOf('a/1', 1))).not.toBe(objectHash(key(2), stateOf('a/1', 1)));
    expect(objectHash(key(1), stateOf('a/1', 1))).not.toBe(objectHash(key(1), stateOf('a/1', 2)));
    expect(objectHash(key(1), stateOf('a/1', 1))).not.toBe(objectHash(key(1), stateOf('a/2', 1)));
  });

  it('the same dots with different value bytes hash differently (a replica whose bytes rotted is found)', () => {
    expect(objectHash(key(1), stateOf('a/1', 1, null))).not.toBe(objectHash(key(1), stateOf('a/1', 1, 'x')));
    expect(objectHash(key(1), stateOf('a/1', 1, 'x'))).not.toBe(objectHash(key(1), stateOf('a/1', 1, 'y')));
    // An empty value is not a tombstone.
    expect(objectHash(key(1), stateOf('a/1', 1, ''))).not.toBe(objectHash(key(1), stateOf('a/1', 1, null)));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, flip) => {
        const rotted = bytes.slice();
        rotted[at % bytes.length] ^= flip;
        const a: DvvSet = [['a/1', 1, [bytes]]];
        const b: DvvSet = [['a/1', 1, [rotted]]];
        expect(objectHash(key(1), a)).not.toBe(objectHash(key(1), b));
      }),
    );
  });

  it('writeObjectHash and foldObjectHash agree with objectHash and foldObject', () => {
    fc.assert(
      fc.property(arbState, arbState, (a, b) => {
        const out = new Uint8Array(8);
        writeObjectHash(key(3), a, out, 0);
        expect(new DataView(out.buffer).getBigUint64(0, false)).toBe(objectHash(key(3), a));
        const viaStates = new BigUint64Array(16);
        foldObject(viaStates, key(3), a, b);
        const viaHashes = new BigUint64Array(16);
        const hb = new Uint8Array(8);
        writeObjectHash(key(3), b, hb, 0);
        foldObjectHash(viaHashes, key(3), out, 0);
        foldObjectHash(viaHashes, key(3), hb, 0);
        expect([...viaHashes]).toEqual([...viaStates]);
      }),
    );
  });

  it('hashes travel as 8 big-endian bytes each', () => {
    const hs = BigUint64Array.from([0n, 1n, 0xfedcba9876543210n]);
    const bytes = hashesToBytes(hs);
    expect(bytes.length).toBe(24);
    expect(Buffer.from(bytes.subarray(16)).toString('hex')).toBe('fedcba9876543210');
    expect(bytesToHashes(bytes)).toEqual(hs);
  });
});

describe('tree shape', () => {
  it('defaults to 1024 segments, fan-out 32, depth 2', () => {
    expect(treeShapeDefault).toEqual({ segments: 1024, fanout: 32 });
    expect(treeDepth(treeShapeDefault)).toBe(2);
    const levels = treeLevels(emptySegments(treeShapeDefault), treeShapeDefault);
    expect(levels.map((l) => l.length)).toEqual([1, 32, 1024]);
  });

  it('refuses shapes that are not a full tree', () => {
    expect(shapeProblem({ segments: 1024, fanout: 32 })).toBeNull();
    expect(shapeProblem({ segments: 4096, fanout: 16 })).toBeNull();
    expect(shapeProblem({ segments: 1000, fanout: 10 })).toMatch(/power of two/);
    expect(shapeProblem({ segments: 512, fanout: 32 })).toMatch(/power of fanout/);
    expect(shapeProblem({ segments: 1 << 17, fanout: 2 })).toMatch(/65536/);
  });
});

describe('comparing trees', () => {
  const shapes: TreeShape[] = [treeShapeDefault, { segments: 64, fanout: 4 }, { segments: 256, fanout: 2 }];

  it('two trees differing in k of n keys find exactly those keys', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...shapes),
        fc.integer({ min: 0, max: 2000 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 2999 }), { maxLength: 40 }),
        (shape, n, changed) => {
          const a = new Map<string, [Uint8Array, DvvSet]>();
          for (let i = 0; i < n; i++) a.set(latin1(key(i)), [key(i), stateOf('a/1', i + 1)]);
          const b = new Map(a);
          // Each changed key differs in one of three ways: a newer version, missing, or extra.
          const differing = new Set<string>();
          for (const i of changed) {
            const k = key(i);
            if (i >= n) b.set(latin1(k), [k, stateOf('b/1', 1)]);
            else if (i % 2 === 0) b.set(latin1(k), [k, sync(stateOf('a/1', i + 1), stateOf('b/1', 7))]);
            else b.delete(latin1(k));
            differing.add(latin1(k));
          }
          const la = treeLevels(segmentsOf(a, shape), shape);
          const lb = treeLevels(segmentsOf(b, shape), shape);
          const segs = diffTrees(la, lb, shape);
          const expected = [...new Set([...differing].map((k) => segmentOf(Buffer.from(k, 'latin1'), shape.segments)))].sort((x, y) => x - y);
          expect(segs).toEqual(expected);
          expect(diffTrees(lb, la, shape)).toEqual(expected);

          // Within those segments, the key-by-key comparison names exactly the changed keys.
          const inSegs = new Set(segs);
          const entries = (m: Map<string, [Uint8Array, DvvSet]>) =>
            [...keysInSegments([...m.values()].map(([k]) => k), inSegs, shape.segments)].map((k) => [k, objectHash(k, m.get(latin1(k))![1])] as const);
          const ea = entries(a);
          const eb = entries(b);
          const { send, want } = compareSegmentEntries(
            ea,
            eb.map(([k]) => k),
            eb.map(([, h]) => h),
          );
          const found = new Set([...send, ...want].map(latin1));
          expect([...found].sort()).toEqual([...differing].sort());
          // send: keys b lacks or holds differently; want: keys a lacks or holds differently.
          for (const k of send) expect(b.get(latin1(k))?.[1]).not.toEqual(a.get(latin1(k))![1]);
          for (const k of want) expect(a.get(latin1(k))?.[1]).not.toEqual(b.get(latin1(k))![1]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('equal trees stop at the root', () => {
    const segs = emptySegments(treeShapeDefault);
    foldObject(segs, key(1), undefined, stateOf('a/1', 1));
    const l = treeLevels(segs, treeShapeDefault);
    expect(diffTrees(l, treeLevels(segs, treeShapeDefault), treeShapeDefault)).toEqual([]);
  });
});

type Op = { kind: 'write'; key: number; state: DvvSet } | { kind: 'merge'; key: number; state: DvvSet } | { kind: 'delete'; key: number } | { kind: 'tombstone'; key: number };

describe('incremental maintenance', () => {
  it('after any sequence of writes and deletes the tree equals one rebuilt from scratch', () => {
    const arbOp: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), key: fc.integer({ min: 0, max: 30 }), state: arbState }),
      fc.record({ kind: fc.constant('merge' as const), key: fc.integer({ min: 0, max: 30 }), state: arbState }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ kind: fc.constant('tombstone' as const), key: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom<TreeShape>(treeShapeDefault, { segments: 16, fanout: 4 }), fc.array(arbOp, { maxLength: 80 }), (shape, ops) => {
        const objects = new Map<string, [Uint8Array, DvvSet]>();
        const segs = emptySegments(shape);
        for (const op of ops) {
          const k = key(op.key);
          const before = objects.get(latin1(k))?.[1];
          let after: DvvSet | undefined;
          if (op.kind === 'write') after = op.state;
          else if (op.kind === 'merge') after = sync(before ?? [], op.state);
          else if (op.kind === 'tombstone') after = update(before ?? [], before ? before.map(([id, n]) => [id, n] as [string, number]) : [], 'd/1', null);
          else after = undefined;
          foldObject(segs, k, before, after);
          if (after === undefined) objects.delete(latin1(k));
          else objects.set(latin1(k), [k, after]);
        }
        const rebuilt = segmentsOf(objects, shape);
        expect(segs).toEqual(rebuilt);
        expect(rootHash(segs, shape)).toBe(rootHash(rebuilt, shape));
      }),
      { numRuns: 200 },
    );
  });
});
