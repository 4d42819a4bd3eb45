/**
 * LmdbStore against bytes that change on disk: a record whose value bytes were flipped in data.mdb
 * (while the store was closed) fails its checksum; it reads as absent, is marked corrupt, leaves its
 * Merkle segment (which then differs from a healthy replica's), and is told to the watcher; a good
 * copy synced into it clears the mark and makes the trees equal again. The scrub finds it without a
 * read. A data directory written in the older format (objects without checksums, trees over the
 * dots only) is upgraded at open and reads back the same.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { type DvvSet, sync } from '../../src/core/dvv.js';
import { buildSegments, segmentOf } from '../../src/core/merkle.js';
import { encode } from '../../src/protocol/codec.js';
import type { CorruptObject } from '../../src/ports/store.js';
import { tempDir } from '../support/nats-server.js';

const te = new TextEncoder();
const dirs: string[] = [];
const stores: LmdbStore[] = [];

function openStore(dir: string, opts: { scrubBytesPerSec?: number } = {}): LmdbStore {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = LmdbStore.open(dir, opts);
  stores.push(store);
  return store;
}

async function closeStore(store: LmdbStore): Promise<void> {
  stores.splice(stores.indexOf(store), 1);
  await store.close();
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const merge = (state: DvvSet) => (current: DvvSet | undefined) => ({ next: sync(current ?? [], state), result: null });

/** Flips one byte of every occurrence of `marker` in the environment's data file; returns how many. */
function flipInDataFile(dir: string, marker: string): number {
  const file = path.join(dir, 'data.mdb');
  const bytes = readFileSync(file);
  const needle = Buffer.from(marker);
  let count = 0;
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) {
    bytes[at + needle.length - 1] ^= 0x20;
    count++;
  }
  writeFileSync(file, bytes);
  return count;
}

function rebuilt(store: LmdbStore, partition: number): BigUint64Array {
  const objects: [Uint8Array, DvvSet][] = [];
  for (const key of store.keys(partition)) objects.push([key, store.get(partition, key)!]);
  return buildSegments(objects, store.segmentCount);
}

/** A state with plain Uint8Array values (the codec hands back Buffers), to compare. */
const plain = (state: DvvSet | undefined): DvvSet | undefined => state?.map(([id, n, vals]) => [id, n, vals.map((v) => (v === null ? null : new Uint8Array(v)))]);

const keyOf = (i: number) => te.encode(`key-${i}`);
const stateOf = (i: number): DvvSet => [['n1/e1', 1, [te.encode(`value-of-key-${i}-ROT-ME-${i === 7 ? 'X' : 'Y'}`)]]];

describe('LmdbStore and corrupt objects', () => {
  it('a record whose bytes changed on disk reads as absent, is marked and told, leaves its segment, and a synced good copy heals it', async () => {
    const dirA = tempDir('ringkv-corrupt-a-');
    const dirB = tempDir('ringkv-corrupt-b-');
    const a = openStore(dirA);
    const b = openStore(dirB);
    for (let i = 0; i < 20; i++) {
      await a.update(3, keyOf(i), merge(stateOf(i)));
      await b.update(3, keyOf(i), merge(stateOf(i)));
    }
    expect([...a.segments(3)]).toEqual([...b.segments(3)]);
    await closeStore(a);
    // LMDB writes pages copy-on-write: older copies of the record may sit in free pages too.
    expect(flipInDataFile(dirA, 'ROT-ME-X')).toBeGreaterThanOrEqual(1);

    const reopened = openStore(dirA);
    const found: CorruptObject[] = [];
    reopened.watchCorruption((c) => found.push(c));
    // The trees on disk still vouch for the good bytes: nothing has read the record yet.
    expect([...reopened.segments(3)]).toEqual([...b.segments(3)]);
    expect(reopened.get(3, keyOf(7))).toBeUndefined();
    expect(reopened.getEncoded(3, keyOf(7))).toBeUndefined();
    expect(reopened.isCorrupt(3, keyOf(7))).toBe(true);
    expect(reopened.isCorrupt(3, keyOf(6))).toBe(false);
    expect(found).toEqual([{ partition: 3, key: keyOf(7), where: 'read' }]);
    expect(reopened.scrubStats.corruptFound).toBe(1);
    // The segment now leaves the corrupt object out, exactly: a healthy replica's tree differs there.
    const seg = segmentOf(keyOf(7), reopened.segmentCount);
    expect(reopened.segments(3)[seg]).not.toBe(b.segments(3)[seg]);
    expect([...reopened.segments(3)]).toEqual([...rebuilt(reopened, 3)]);
    expect([...reopened.keys(3)].map((k) => Buffer.from(k).toString())).not.toContain('key-7');
    // The other objects read back right.
    expect(plain(reopened.get(3, keyOf(6)))).toEqual(stateOf(6));

    // The mark and the dropped record are durable.
    await closeStore(reopened);
    const again = openStore(dirA);
    expect(again.isCorrupt(3, keyOf(7))).toBe(true);
    expect([...again.segments(3)]).toEqual([...rebuilt(again, 3)]);
    // A good copy (what anti-entropy syncs) heals it: the mark goes and the trees agree again.
    await again.update(3, keyOf(7), merge(b.get(3, keyOf(7))!));
    expect(again.isCorrupt(3, keyOf(7))).toBe(false);
    expect(plain(again.get(3, keyOf(7)))).toEqual(stateOf(7));
    expect([...again.segments(3)]).toEqual([...b.segments(3)]);
    await closeStore(again);
    const healed = openStore(dirA);
    expect(healed.isCorrupt(3, keyOf(7))).toBe(false);
    expect([...healed.segments(3)]).toEqual([...b.segments(3)]);
  });

  it('the scrub finds a corrupt record nobody reads, and tells a watcher that registers later', async () => {
    const dir = tempDir('ringkv-corrupt-scrub-');
    const a = openStore(dir);
    for (let i = 0; i < 50; i++) await a.update(i % 4, keyOf(i), merge(stateOf(i)));
    await closeStore(a);
    expect(flipInDataFile(dir, 'ROT-ME-X')).toBeGreaterThanOrEqual(1);
    const reopened = openStore(dir);
    // Small steps: a pass takes several runs and goes on from where the last one stopped.
    let checked = 0;
    for (let run = 0; run < 100 && reopened.scrubStats.passes === 0; run++) checked += reopened.scrub(200);
    expect(checked).toBe(50);
    expect(reopened.scrubStats.objectsChecked).toBe(50);
    expect(reopened.scrubStats.corruptFound).toBe(1);
    expect(reopened.isCorrupt(7 % 4, keyOf(7))).toBe(true);
    const found: CorruptObject[] = [];
    reopened.watchCorruption((c) => found.push(c));
    expect(found).toEqual([{ partition: 3, key: keyOf(7), where: 'scrub' }]);
    for (let p = 0; p < 4; p++) expect([...reopened.segments(p)]).toEqual([...rebuilt(reopened, p)]);
  });

  it('a store with the scrub on finds it by itself', async () => {
    const dir = tempDir('ringkv-corrupt-timer-');
    const a = openStore(dir);
    for (let i = 0; i < 10; i++) await a.update(0, keyOf(i), merge(stateOf(i)));
    await closeStore(a);
    flipInDataFile(dir, 'ROT-ME-X');
    const reopened = openStore(dir, { scrubBytesPerSec: 1 << 20 });
    const found: CorruptObject[] = [];
    reopened.watchCorruption((c) => found.push(c));
    const until = Date.now() + 5000;
    while (found.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(found.map((c) => c.where)).toEqual(['scrub']);
    expect(reopened.isCorrupt(0, keyOf(7))).toBe(true);
  });

  it('upgrades a data directory of the older format (no checksums, trees over the dots) at open', async () => {
    const dir = tempDir('ringkv-corrupt-upgrade-');
    dirs.push(dir);
    // What an older LmdbStore left: objects as the bare encoded DVV set, a tree marker without a hash version.
    const env = open({ path: dir, noSubdir: false, maxDbs: 8 });
    const objects = env.openDB<Uint8Array, Buffer>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
    const meta = env.openDB<Uint8Array, string>({ name: 'meta', encoding: 'binary' });
    env.transactionSync(() => {
      for (let i = 0; i < 30; i++) {
        const k = Buffer.alloc(4 + keyOf(i).length);
        k.writeUInt32BE(i % 2, 0);
        k.set(keyOf(i), 4);
        objects.putSync(k, Buffer.from(encode(stateOf(i))));
      }
      meta.putSync('merkle', Buffer.from(encode({ segments: 1024 })));
      meta.putSync('identity', Buffer.from(encode({ nodeId: 'n1', epoch: 'e1', running: false })));
    });
    await env.close();
    const store = openStore(dir);
    for (let i = 0; i < 30; i++) expect(plain(store.get(i % 2, keyOf(i)))).toEqual(stateOf(i));
    expect(store.getMeta('identity')).toEqual({ nodeId: 'n1', epoch: 'e1', running: false });
    for (const p of [0, 1]) expect([...store.segments(p)]).toEqual([...rebuilt(store, p)]);
    expect(store.scrubStats.corruptFound).toBe(0);
    // The upgraded records carry checksums: a flip is found.
    await closeStore(store);
    flipInDataFile(dir, 'ROT-ME-X');
    const reopened = openStore(dir);
    expect(reopened.get(1, keyOf(7))).toBeUndefined();
    expect(reopened.isCorrupt(1, keyOf(7))).toBe(true);
  });
});
