/**
 * LmdbStore.removeIfUnchanged against real LMDB (ownership transfer's drop): it deletes an object
 * only while its state is still the one that was sent and no hint is pending for it; the partition's
 * Merkle segments stay equal to the tree rebuilt from the objects, before the commit, after it and
 * after a reopen; keys() stops listing a dropped key at once.
 */
import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { type DvvSet, sync } from '../../src/core/dvv.js';
import { buildSegments } from '../../src/core/merkle.js';
import { tempDir } from '../support/nats-server.js';

const te = new TextEncoder();
const td = new TextDecoder();
const dirs: string[] = [];
const stores: LmdbStore[] = [];

function openStore(dir = tempDir('ringkv-drop-')): { store: LmdbStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = LmdbStore.open(dir, { segments: 64 });
  stores.push(store);
  return { store, dir };
}

async function closeStore(store: LmdbStore): Promise<void> {
  stores.splice(stores.indexOf(store), 1);
  await store.close();
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function rebuilt(store: LmdbStore, partition: number): BigUint64Array {
  const objects: [Uint8Array, DvvSet][] = [];
  for (const key of store.keys(partition)) objects.push([key, store.get(partition, key)!]);
  return buildSegments(objects, store.segmentCount);
}

const merge = (state: DvvSet) => (current: DvvSet | undefined) => ({ next: sync(current ?? [], state), result: null });
const keyNames = (store: LmdbStore, p: number) => [...store.keys(p)].map((k) => td.decode(k));

describe('LmdbStore.removeIfUnchanged', () => {
  it('drops only unchanged, unhinted objects and keeps the Merkle segments exact, committed or not, and across a reopen', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('write' as const), p: fc.integer({ min: 0, max: 1 }), k: fc.integer({ min: 0, max: 12 }), n: fc.integer({ min: 1, max: 5 }) }),
            fc.record({ op: fc.constant('drop' as const), p: fc.integer({ min: 0, max: 1 }), k: fc.integer({ min: 0, max: 12 }), stale: fc.boolean() }),
          ),
          { minLength: 1, maxLength: 50 },
        ),
        async (ops) => {
          const { store, dir } = openStore();
          const done: Promise<unknown>[] = [];
          // The model: what each key should hold after the ops, as the store's reads see it.
          const model = new Map<string, DvvSet>();
          for (const o of ops) {
            const id = `${o.p}/k${o.k}`;
            const key = te.encode(`k${o.k}`);
            if (o.op === 'write') {
              const state: DvvSet = [['a/1', o.n, [te.encode(`v${o.n}`)]]];
              done.push(store.update(o.p, key, merge(state)));
              model.set(id, sync(model.get(id) ?? [], state));
            } else {
              const current = store.get(o.p, key);
              // A stale expectation is a state that was sent before a later write changed the key.
              const expected: DvvSet | undefined = o.stale ? [['a/1', 0, []]] : current;
              if (expected === undefined) continue;
              const dropped = store.removeIfUnchanged(o.p, key, expected);
              done.push(dropped);
              const shouldDrop = current !== undefined && !o.stale;
              expect(await Promise.race([dropped, Promise.resolve('pending')])).toBe(shouldDrop ? 'pending' : false);
              if (shouldDrop) model.delete(id);
            }
            for (const p of [0, 1]) expect(store.segments(p)).toEqual(rebuilt(store, p));
          }
          await Promise.all(done);
          const check = (s: LmdbStore) => {
            for (const p of [0, 1]) {
              expect(s.segments(p)).toEqual(rebuilt(s, p));
              const expectedKeys = [...model.keys()].filter((id) => id.startsWith(`${p}/`)).map((id) => id.slice(2)).sort();
              expect(keyNames(s, p).sort()).toEqual(expectedKeys);
            }
          };
          check(store);
          await closeStore(store);
          const reopened = openStore(dir).store;
          check(reopened);
          await closeStore(reopened);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keeps an object that a hint still needs, and drops it once the hint is delivered', async () => {
    const { store } = openStore();
    const key = te.encode('hinted');
    await store.update(3, key, merge([['a/1', 1, [te.encode('x')]]]), { targets: ['n2'], now: 1 });
    const state = store.get(3, key)!;
    expect(await store.removeIfUnchanged(3, key, state)).toBe(false);
    const [hint] = [...store.hints()];
    expect(await store.removeHint(hint!)).toBe(true);
    expect(await store.removeIfUnchanged(3, key, state)).toBe(true);
    expect(store.get(3, key)).toBeUndefined();
    expect([...store.keys(3)]).toEqual([]);
    expect(store.segments(3).every((s) => s === 0n)).toBe(true);
  });

  it('refuses a state that changed after it was sent, and a write after the drop brings the key back', async () => {
    const { store } = openStore();
    const key = te.encode('busy');
    await store.update(0, key, merge([['a/1', 1, [te.encode('one')]]]));
    const sent = store.get(0, key)!;
    await store.update(0, key, merge([['b/1', 1, [te.encode('two')]]]));
    expect(await store.removeIfUnchanged(0, key, sent)).toBe(false);
    expect(store.get(0, key)).toHaveLength(2);
    const again = store.get(0, key)!;
    const drop = store.removeIfUnchanged(0, key, again);
    // A write issued right after the drop (before its commit) lands on the empty key.
    const write = store.update(0, key, merge([['c/1', 1, [te.encode('three')]]]));
    expect(await drop).toBe(true);
    await write;
    const after = store.get(0, key)!;
    expect(after.map(([id, n, vals]) => [id, n, vals.map((v) => td.decode(v!))])).toEqual([['c/1', 1, ['three']]]);
    expect(store.segments(0)).toEqual(rebuilt(store, 0));
  });
});
