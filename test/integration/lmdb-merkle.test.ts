/**
 * LmdbStore's Merkle trees against real LMDB: the segments always equal the tree rebuilt from the
 * objects (before and after commit, and after a reopen), a data directory opened with another
 * segment count gets its trees rebuilt, and keysInSegment finds exactly a segment's keys.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { type DvvSet, sync } from '../../src/core/dvv.js';
import { buildSegments, segmentOf } from '../../src/core/merkle.js';
import { tempDir } from '../support/nats-server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const te = new TextEncoder();
const dirs: string[] = [];
const stores: LmdbStore[] = [];

function openStore(dir = tempDir('ringkv-merkle-'), segments?: number): { store: LmdbStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = LmdbStore.open(dir, segments === undefined ? {} : { segments });
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

describe('LmdbStore Merkle trees', () => {
  it('keeps every partition tree equal to the tree of its objects, committed or not, and across a reopen', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom('a/1', 'b/1', 'c/1'), fc.integer({ min: 1, max: 4 }), fc.boolean()), {
          minLength: 1,
          maxLength: 60,
        }),
        async (writes) => {
          const { store, dir } = openStore();
          const done: Promise<unknown>[] = [];
          for (const [p, k, id, n, tomb] of writes) {
            done.push(store.update(p, te.encode(`k${k}`), merge([[id, n, [tomb ? null : te.encode(`${id}${n}`)]]])));
            // Reads see uncommitted writes: so do the segments.
            expect(store.segments(p)).toEqual(rebuilt(store, p));
          }
          await Promise.all(done);
          for (const p of [0, 1, 2]) expect(store.segments(p)).toEqual(rebuilt(store, p));
          const before = [0, 1, 2].map((p) => store.segments(p));
          await closeStore(store);
          const again = openStore(dir).store;
          expect([0, 1, 2].map((p) => again.segments(p))).toEqual(before);
          await closeStore(again);
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 15 },
    );
  });

  it('rebuilds the trees of a data directory opened with another segment count', async () => {
    const { store, dir } = openStore(undefined, 16);
    for (let i = 0; i < 200; i++) await store.update(i % 3, te.encode(`key-${i}`), merge([['a/1', 1, [te.encode('v')]]]));
    const small = store.segments(1);
    expect(small.length).toBe(16);
    await closeStore(store);

    const big = openStore(dir, 1024).store;
    expect(big.segmentCount).toBe(1024);
    for (const p of [0, 1, 2]) {
      expect(big.segments(p)).toEqual(rebuilt(big, p));
      expect(big.segments(p).some((h) => h !== 0n)).toBe(true);
    }
  });

  it('keeps the tree on disk equal to the objects on disk when the writer is killed with SIGKILL', async () => {
    const dir = tempDir('ringkv-merkle-kill-');
    dirs.push(dir);
    await runWriterUntilKilled(dir, 500);
    const { store } = openStore(dir);
    expect([...store.keys(7)].length).toBeGreaterThanOrEqual(500);
    expect(store.segments(7)).toEqual(rebuilt(store, 7));
  }, 30_000);

  it('lists the keys of a segment or a set of segments', async () => {
    const { store } = openStore();
    const keys = Array.from({ length: 300 }, (_, i) => te.encode(`key-${i}`));
    await Promise.all(keys.map((k) => store.update(5, k, merge([['a/1', 1, [te.encode('v')]]]))));
    const seg = segmentOf(keys[7]!, store.segmentCount);
    const expected = keys.filter((k) => segmentOf(k, store.segmentCount) === seg).map((k) => Buffer.from(k).toString());
    expect([...store.keysInSegment(5, seg)].map((k) => Buffer.from(k).toString()).sort()).toEqual(expected.sort());
    const two = new Set([seg, segmentOf(keys[8]!, store.segmentCount)]);
    const expectedTwo = keys.filter((k) => two.has(segmentOf(k, store.segmentCount))).length;
    expect([...store.keysInSegment(5, two)].length).toBe(expectedTwo);
    expect([...store.keysInSegment(4, seg)]).toEqual([]);
  });
});

/** Run test/support/lmdb-writer.ts (partition 7, several writes in flight) and SIGKILL it after `ackedMin` acks. */
function runWriterUntilKilled(dir: string, ackedMin: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lmdb-writer.ts', dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = 0;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      acked += chunk.toString().split('acked').length - 1;
      if (acked >= ackedMin) child.kill('SIGKILL');
    });
    child.once('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the writer exited on its own: ${stderr}`))));
  });
}
