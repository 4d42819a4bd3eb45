/**
 * LmdbStore against real LMDB in a temporary directory: the Store contract (src/ports/store.ts) and
 * the durability promise of an ack, including a writer killed with SIGKILL.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { costsSince, readCosts } from '../../src/protocol/cost-counters.js';
import { tempDir } from '../support/nats-server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const te = new TextEncoder();
const td = new TextDecoder();
const bytes = (s: string) => te.encode(s);
const text = (b: Uint8Array) => td.decode(b);

const dirs: string[] = [];
const stores: LmdbStore[] = [];

function openStore(opts?: { sync?: boolean }, dir = tempDir('ringkv-lmdb-')): { store: LmdbStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = LmdbStore.open(dir, opts);
  stores.push(store);
  return { store, dir };
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A counter stored as a DVV set with one entry and no values: [["c", count, []]]. */
function counterOf(set: DvvSet | undefined): number {
  return set?.[0]?.[1] ?? 0;
}

describe('LmdbStore', () => {
  it('round-trips a DVV set through update and get', async () => {
    const { store } = openStore();
    const state: DvvSet = [['a/1', 2, [bytes('new'), null]], ['b/1', 1, []]];
    const result = await store.update(3, bytes('k'), (current) => ({ next: state, result: current }));
    expect(result).toBeUndefined();
    const got = store.get(3, bytes('k'));
    expect(got).toBeDefined();
    expect(got!.map(([id, n, vals]) => [id, n, vals.map((v) => (v === null ? null : text(v)))])).toEqual([
      ['a/1', 2, ['new', null]],
      ['b/1', 1, []],
    ]);
    expect(store.get(3, bytes('other'))).toBeUndefined();
    expect(store.get(4, bytes('k'))).toBeUndefined();
  });

  it('updateMany: a turn of writes in one transaction, each atomic alone; a throwing mutate fails only its own', async () => {
    const { store } = openStore();
    await store.update(0, bytes('a'), () => ({ next: [['c', 1, []]], result: 'seed' }));
    const before = readCosts();
    const encoded = encode([['c', 7, []]]);
    const results = await store.updateMany(
      [{ partition: 0, key: bytes('a') }, { partition: 0, key: bytes('b') }, { partition: 1, key: bytes('a'), hints: { targets: ['n9'], now: 1 } }, { partition: 0, key: bytes('a') }],
      (i, current) => {
        if (i === 1) throw new Error('bad write');
        // The same key twice in one call: the second sees the first (read-modify-write in order).
        if (i === 3) return { next: [['c', counterOf(current) + 1, []]], result: counterOf(current) };
        return i === 2 ? { next: [['c', 7, []]], result: 'given bytes', nextEncoded: encoded } : { next: [['c', counterOf(current) + 1, []]], result: counterOf(current) };
      },
    );
    expect(results[0]).toBe(1);
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toBe('bad write');
    expect(results[2]).toBe('given bytes');
    expect(results[3]).toBe(2);
    expect(costsSince(before).storeTxns).toBe(1);
    expect(counterOf(store.get(0, bytes('a')))).toBe(3);
    expect(store.get(0, bytes('b'))).toBeUndefined();
    expect(counterOf(store.get(1, bytes('a')))).toBe(7);
    expect(store.getEncoded(1, bytes('a'))).toEqual(encoded);
    expect([...store.hints()].map((h) => h.target)).toEqual(['n9']);
  });

  it('shows an update to reads as soon as it is issued, before it commits', async () => {
    const { store } = openStore();
    const pending = store.update(1, bytes('k'), () => ({ next: [['c', 1, []]], result: 'ok' }));
    expect(counterOf(store.get(1, bytes('k')))).toBe(1);
    expect([...store.keys(1)].map(text)).toEqual(['k']);
    expect(await pending).toBe('ok');
    expect(counterOf(store.get(1, bytes('k')))).toBe(1);
  });

  it('gives the stored bytes of a state with getEncoded, pending and committed alike', async () => {
    const { store } = openStore();
    const first: DvvSet = [['a/1', 1, [bytes('v1')]]];
    const second: DvvSet = [['a/1', 2, [bytes('v2')]]];
    expect(store.getEncoded(2, bytes('k'))).toBeUndefined();
    await store.update(2, bytes('k'), () => ({ next: first, result: null }));
    const same = (a: Uint8Array | undefined, b: Uint8Array) => expect(a !== undefined && Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    same(store.getEncoded(2, bytes('k')), encode(first));
    // A write in flight (not yet committed) is what both reads see.
    const pending = store.update(2, bytes('k'), () => ({ next: second, result: null }));
    expect(decode(store.getEncoded(2, bytes('k'))!)).toEqual(store.get(2, bytes('k')));
    same(store.getEncoded(2, bytes('k')), encode(second));
    await pending;
    same(store.getEncoded(2, bytes('k')), encode(second));
    expect(store.getEncoded(3, bytes('k'))).toBeUndefined();
    expect(() => store.getEncoded(-1, bytes('k'))).toThrow(RangeError);
  });

  it('leaves the object alone when mutate returns next: null', async () => {
    const { store } = openStore();
    expect(await store.update(1, bytes('k'), () => ({ next: null, result: 42 }))).toBe(42);
    expect(store.get(1, bytes('k'))).toBeUndefined();
  });

  it('applies 200 concurrent read-modify-writes of one key atomically and in order', async () => {
    const { store } = openStore();
    const key = bytes('counter');
    const seen = await Promise.all(
      Array.from({ length: 200 }, () =>
        store.update(0, key, (current) => {
          const count = counterOf(current) + 1;
          return { next: [['c', count, []]], result: count };
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(counterOf(store.get(0, key))).toBe(200);
  });

  it('writes nothing and rejects when mutate throws', async () => {
    const { store } = openStore();
    await store.update(2, bytes('k'), () => ({ next: [['c', 1, []]], result: undefined }));
    const boom = new Error('boom');
    await expect(store.update(2, bytes('k'), () => { throw boom; })).rejects.toBe(boom);
    await expect(store.update(2, bytes('fresh'), () => { throw boom; })).rejects.toBe(boom);
    expect(counterOf(store.get(2, bytes('k')))).toBe(1);
    expect(store.get(2, bytes('fresh'))).toBeUndefined();
    expect([...store.keys(2)].map(text)).toEqual(['k']);
  });

  it('lists only one partition in keys(), in key order, committed and pending alike', async () => {
    const { store } = openStore();
    const put = (p: number, k: string) => store.update(p, bytes(k), () => ({ next: [['c', 1, []]], result: undefined }));
    await Promise.all([put(1, 'b'), put(1, 'd'), put(0, 'z'), put(2, 'a'), put(256, 'x'), put(0xffff_ffff, 'last')]);
    const stillPending = [put(1, 'a'), put(1, 'c'), put(1, 'e'), put(1, 'd')];
    expect([...store.keys(1)].map(text)).toEqual(['a', 'b', 'c', 'd', 'e']);
    await Promise.all(stillPending);
    expect([...store.keys(1)].map(text)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect([...store.keys(0)].map(text)).toEqual(['z']);
    expect([...store.keys(3)]).toEqual([]);
    expect([...store.keys(0xffff_ffff)].map(text)).toEqual(['last']);
  });

  it('stores meta values', async () => {
    const { store } = openStore();
    expect(store.getMeta('epoch')).toBeUndefined();
    const write = store.putMeta('membership', { members: ['a', 'b'], epoch: 3 });
    expect(store.getMeta('membership')).toEqual({ members: ['a', 'b'], epoch: 3 });
    await write;
    await store.putMeta('epoch', 7);
    expect(store.getMeta<number>('epoch')).toBe(7);
  });

  for (const sync of [false, true]) {
    it(`keeps data across close and reopen (sync: ${sync})`, async () => {
      const { store, dir } = openStore({ sync });
      await store.update(5, bytes('k'), () => ({ next: [['c', 9, [bytes('v')]]], result: undefined }));
      await store.putMeta('node', 'n1');
      await store.close();
      const { store: reopened } = openStore({ sync: !sync }, dir);
      expect(counterOf(reopened.get(5, bytes('k')))).toBe(9);
      expect(reopened.getMeta('node')).toBe('n1');
      expect([...reopened.keys(5)].map(text)).toEqual(['k']);
    });
  }

  it('keeps every acked write when the writer is killed with SIGKILL', async () => {
    const dir = tempDir('ringkv-lmdb-kill-');
    dirs.push(dir);
    const acked = await runWriterUntilKilled(dir, 300);
    expect(acked.length).toBeGreaterThanOrEqual(300);
    const { store } = openStore(undefined, dir);
    const missing = acked.filter((i) => store.get(7, bytes(`k${i}`)) === undefined);
    expect(missing).toEqual([]);
  }, 30_000);
});

/** Run test/support/lmdb-writer.ts, SIGKILL it once `ackedMin` acks were read, return the acks. */
function runWriterUntilKilled(dir: string, ackedMin: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lmdb-writer.ts', dir], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /^acked (\d+)$/.exec(line);
        if (m) acked.push(Number(m[1]));
      }
      if (!killed && acked.length >= ackedMin) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    // 'close', not 'exit': acks still in the pipe when the kill landed count too.
    child.once('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited (${code}) before it was killed: ${stderr}`));
    });
  });
}
