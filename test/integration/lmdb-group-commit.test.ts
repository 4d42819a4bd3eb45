/**
 * LmdbStore's group commit against real LMDB: the writes of one event-loop turn commit in one
 * transaction; a failed transaction rejects every write of its batch and leaves the store, its trees
 * and its hints as they were; with `sync: true` a write resolves only after an fdatasync that
 * started after its commit, and batches that commit while one runs share the next.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { buildSegments } from '../../src/core/merkle.js';
import { tempDir } from '../support/nats-server.js';

const te = new TextEncoder();
const td = new TextDecoder();
const bytes = (s: string) => te.encode(s);
const dirs: string[] = [];
const stores: LmdbStore[] = [];

function openStore(opts?: { sync?: boolean }, dir = tempDir('ringkv-group-')): { store: LmdbStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = LmdbStore.open(dir, opts);
  stores.push(store);
  return { store, dir };
}

async function closeStore(store: LmdbStore): Promise<void> {
  stores.splice(stores.indexOf(store), 1);
  await store.close();
}

/** Every held-sync list: a failed test must not leave a close waiting for a sync nobody releases. */
const holds: Array<Array<(err?: Error) => void>> = [];

afterEach(async () => {
  let closed = false;
  const closing = Promise.all(stores.splice(0).map((s) => s.close())).then(() => (closed = true));
  await until(() => {
    for (const held of holds) for (const release of held) release();
    return closed;
  });
  await closing;
  holds.length = 0;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The store's LMDB environment (private): its transaction counter, and its sync for fault injection. */
interface Env {
  getStats(): { lastTxnId: number };
  sync(cb: (err?: Error) => void): void;
}
const envOf = (store: LmdbStore) => (store as unknown as { env: Env }).env;
const lastTxnId = (store: LmdbStore) => envOf(store).getStats().lastTxnId;

const put = (store: LmdbStore, p: number, k: string | Uint8Array, n: number, hints?: string[]) =>
  store.update(p, typeof k === 'string' ? bytes(k) : k, () => ({ next: [['a/1', n, [bytes(`v${n}`)]]] as DvvSet, result: n }), hints ? { targets: hints, now: 1000 } : undefined);
const counter = (store: LmdbStore, p: number, k: string) => store.get(p, bytes(k))?.[0]?.[1];

function rebuilt(store: LmdbStore, partition: number): BigUint64Array {
  const objects: [Uint8Array, DvvSet][] = [];
  for (const key of store.keys(partition)) objects.push([key, store.get(partition, key)!]);
  return buildSegments(objects, store.segmentCount);
}

/** Let the event loop run until `cond` holds (each check is one setImmediate turn). */
async function until(cond: () => boolean, turnsMax = 100_000): Promise<void> {
  for (let i = 0; i < turnsMax && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

/** Hold every fdatasync the store asks for until the test releases it (with an error, or not). */
function holdSyncs(store: LmdbStore): Array<(err?: Error) => void> {
  const env = envOf(store);
  const real = env.sync.bind(env);
  const held: Array<(err?: Error) => void> = [];
  holds.push(held);
  env.sync = (cb) => {
    let released = false;
    held.push((err) => {
      if (released) return;
      released = true;
      if (err) cb(err);
      else real(cb);
    });
  };
  return held;
}

describe('LmdbStore group commit', () => {
  it('commits every write of one event-loop turn in one transaction, and a later turn in the next', async () => {
    const { store } = openStore();
    await put(store, 0, 'warm', 1);
    const before = lastTxnId(store);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) writes.push(put(store, i % 3, `k${i}`, i + 1));
    writes.push(put(store, 1, 'hinted', 1, ['n9']));
    writes.push(store.putMeta('epoch', 4));
    // A write issued from a microtask of this turn joins the same batch.
    writes.push(Promise.resolve().then(() => put(store, 2, 'from-a-microtask', 7)));
    await Promise.all(writes);
    expect(lastTxnId(store)).toBe(before + 1);
    expect(counter(store, 1, 'k49')).toBe(50);
    expect(counter(store, 2, 'from-a-microtask')).toBe(7);
    expect(store.getMeta('epoch')).toBe(4);
    expect(store.hintCount()).toBe(1);
    for (const p of [0, 1, 2]) expect(store.segments(p)).toEqual(rebuilt(store, p));

    await put(store, 0, 'next-turn', 1);
    expect(lastTxnId(store)).toBe(before + 2);
  });

  it('rejects every write of a failed transaction and leaves the store, trees and hints as they were', async () => {
    const { store, dir } = openStore();
    await Promise.all([put(store, 1, 'a', 1), put(store, 1, 'b', 1), put(store, 1, 'kept-hint', 1, ['n7']), store.putMeta('epoch', 1)]);
    const segmentsBefore = store.segments(1);
    const hintsBefore = [...store.hints()];
    const txnBefore = lastTxnId(store);

    // One turn: good writes of every kind, and one that LMDB refuses (a key past its 1978-byte limit).
    const batch = [
      put(store, 1, 'a', 2),
      put(store, 1, 'c', 1, ['n8']),
      store.removeIfUnchanged(1, bytes('b'), store.get(1, bytes('b'))!),
      store.putMeta('epoch', 2),
      store.removeHint(hintsBefore[0]!),
      put(store, 1, new Uint8Array(2000).fill(0x78), 1),
    ];
    // Until the commit, reads see the batch, as they see any issued write.
    expect(counter(store, 1, 'a')).toBe(2);
    expect(store.get(1, bytes('b'))).toBeUndefined();
    expect(store.hintCount()).toBe(1);
    const results = await Promise.allSettled(batch);
    expect(results.map((r) => r.status)).toEqual(batch.map(() => 'rejected'));
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/key size/i);

    // Nothing of the batch is left: not in reads, not in the trees, not in the hints, not on disk.
    expect(lastTxnId(store)).toBe(txnBefore);
    expect(counter(store, 1, 'a')).toBe(1);
    expect(counter(store, 1, 'b')).toBe(1);
    expect(store.get(1, bytes('c'))).toBeUndefined();
    expect([...store.keys(1)].map((k) => td.decode(k))).toEqual(['a', 'b', 'kept-hint']);
    expect(store.getMeta('epoch')).toBe(1);
    expect([...store.hints()]).toEqual(hintsBefore);
    expect(store.segments(1)).toEqual(segmentsBefore);
    expect(store.segments(1)).toEqual(rebuilt(store, 1));

    // The store goes on working, and what it wrote next is what a reopen finds.
    await put(store, 1, 'c', 5, ['n8']);
    expect(store.hintCount()).toBe(2);
    const after = store.segments(1);
    expect(after).toEqual(rebuilt(store, 1));
    await closeStore(store);
    const again = openStore(undefined, dir).store;
    expect(again.segments(1)).toEqual(after);
    expect(counter(again, 1, 'c')).toBe(5);
    expect(again.getMeta('epoch')).toBe(1);
    expect([...again.hints()].map((h) => h.target).sort()).toEqual(['n7', 'n8']);
  });

  it('fails only the batch of the refused write: the batches before and after it commit', async () => {
    const { store } = openStore();
    const first = put(store, 3, 'first', 1);
    await new Promise((r) => setImmediate(r));
    const doomed = [put(store, 3, 'doomed', 1), put(store, 3, new Uint8Array(2000).fill(0x79), 1)];
    await Promise.allSettled(doomed);
    const last = put(store, 3, 'last', 1);
    await expect(first).resolves.toBe(1);
    await expect(last).resolves.toBe(1);
    for (const d of doomed) await expect(d).rejects.toThrow(/key size/i);
    expect([...store.keys(3)].map((k) => td.decode(k))).toEqual(['first', 'last']);
    expect(store.segments(3)).toEqual(rebuilt(store, 3));
  });

  it('with sync: true, resolves a write only after an fdatasync that started after its commit, one sync per group', async () => {
    const { store } = openStore({ sync: true });
    const held = holdSyncs(store);
    const txn0 = lastTxnId(store);
    let aDone = false;
    let bcDone = 0;
    const a = put(store, 0, 'a', 1).then(() => (aDone = true));
    await until(() => held.length === 1);
    // Committed (reads and LMDB's transaction counter see it), but not acked while its sync runs.
    expect(lastTxnId(store)).toBe(txn0 + 1);
    expect(counter(store, 0, 'a')).toBe(1);
    expect(aDone).toBe(false);

    // Two more batches commit while that sync runs; they may not ride on it (it started before them).
    const b = put(store, 0, 'b', 1).then(() => bcDone++);
    await until(() => lastTxnId(store) === txn0 + 2);
    const c = put(store, 0, 'c', 1).then(() => bcDone++);
    await until(() => lastTxnId(store) === txn0 + 3);
    expect(held.length).toBe(1);

    held[0]!();
    await a;
    expect(bcDone).toBe(0);
    // One sync, started after both committed, serves both.
    await until(() => held.length === 2);
    expect(bcDone).toBe(0);
    held[1]!();
    await Promise.all([b, c]);
    expect(bcDone).toBe(2);
    expect(held.length).toBe(2);
  });

  it('with sync: true, rejects the writes whose sync failed (committed, but not known to be on disk)', async () => {
    const { store } = openStore({ sync: true });
    const held = holdSyncs(store);
    const write = put(store, 0, 'k', 1);
    await until(() => held.length === 1);
    held[0]!(new Error('EIO: the disk said no'));
    await expect(write).rejects.toThrow(/EIO/);
    // The transaction did commit: reads see it; the next write syncs again.
    expect(counter(store, 0, 'k')).toBe(1);
    const next = put(store, 0, 'k', 2);
    await until(() => held.length === 2);
    held[1]!();
    await expect(next).resolves.toBe(2);
  });

  it('with sync: true, a write that changes nothing waits until the state it judged is on disk', async () => {
    const { store } = openStore({ sync: true });
    const held = holdSyncs(store);
    const first = put(store, 0, 'k', 1);
    await until(() => held.length === 1);
    // A later write of the key fails; reads fall back to the committed (not yet synced) state.
    const doomed = [put(store, 0, 'k', 2), put(store, 0, new Uint8Array(2000).fill(0x7a), 1)];
    await Promise.allSettled(doomed);
    expect(counter(store, 0, 'k')).toBe(1);
    let noopDone = false;
    const noop = store.update(0, bytes('k'), (current) => ({ next: null, result: current?.[0]?.[1] })).then((r) => {
      noopDone = true;
      return r;
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(noopDone).toBe(false);
    held[0]!();
    await expect(first).resolves.toBe(1);
    await expect(noop).resolves.toBe(1);
  });

  it('with the default durability, acks at the commit without waiting for a sync', async () => {
    const { store } = openStore();
    const held = holdSyncs(store);
    await put(store, 0, 'k', 1);
    await store.putMeta('m', 1);
    expect(held.length).toBe(0);
    // Close flushes what was committed: one sync.
    const closing = store.close();
    await until(() => held.length === 1);
    held[0]!();
    await closing;
  });

  it('rejects writes after close, and close commits the batch that was open', async () => {
    const { store, dir } = openStore();
    const open = put(store, 4, 'k', 3);
    await closeStore(store);
    await expect(open).resolves.toBe(3);
    await expect(put(store, 4, 'later', 1)).rejects.toThrow(/closed/);
    await expect(store.putMeta('x', 1)).rejects.toThrow(/closed/);
    const again = openStore(undefined, dir).store;
    expect(counter(again, 4, 'k')).toBe(3);
    expect(again.get(4, bytes('later'))).toBeUndefined();
  });
});
