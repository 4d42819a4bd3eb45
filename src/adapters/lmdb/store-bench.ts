/**
 * What LmdbStore's write path costs (issue 8): latency and throughput of `update` against real LMDB
 * in a temporary directory, the way a replica uses it (one object write with its Merkle segment).
 *
 *   npx tsx src/adapters/lmdb/store-bench.ts [seconds per case (default 2)] [only cases whose name contains this]
 *
 * Cases, each for the default durability (`sync: false`: ack = committed) and `sync: true` (ack =
 * fdatasync'd):
 * - `sequential`: one update at a time (await, then the next): the latency a replica adds to a put;
 * - `inflight 64` / `inflight 128`: that many updates kept in flight: updates/s, and the latency of each.
 * Keys cycle over 10,000 distinct keys in 8 partitions; values are 150 bytes. Prints one line per case
 * with updates/s, p50/p99 latency in µs, and the process's CPU time (all threads) per update, which
 * the machine's load disturbs less than the other figures. Compare before/after back to back on the same machine
 * (this one is shared: note `uptime`'s load average with the figures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DvvSet } from '../../core/dvv.js';
import { LmdbStore } from './lmdb-store.js';

const keysMax = 10_000;
const partitions = 8;
const value = new Uint8Array(150).fill(0x61);
const keys = Array.from({ length: keysMax }, (_, i) => new TextEncoder().encode(`user${i}`));

interface Result {
  ops: number;
  seconds: number;
  latenciesUs: number[];
  /** CPU time of the whole process (every thread, lmdb-js's writer included) per update. */
  cpuUsPerOp: number;
}

async function runCase(store: LmdbStore, inFlight: number, seconds: number): Promise<Result> {
  const latenciesUs: number[] = [];
  let next = 0;
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  const writeOne = async (): Promise<void> => {
    const i = next++;
    const key = keys[i % keysMax]!;
    const state: DvvSet = [['n1/e1', i + 1, [value]]];
    const t0 = performance.now();
    await store.update(i % partitions, key, () => ({ next: state, result: undefined }));
    latenciesUs.push((performance.now() - t0) * 1000);
    ops++;
  };
  const lane = async (): Promise<void> => {
    while (performance.now() < end) await writeOne();
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const cpu = process.cpuUsage(cpu0);
  return { ops, seconds: (performance.now() - start) / 1000, latenciesUs, cpuUsPerOp: (cpu.user + cpu.system) / ops };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2);
  const only = process.argv[3] ?? '';
  for (const sync of [false, true]) {
    for (const inFlight of [1, 64, 128]) {
      const name = `${sync ? 'sync' : 'default'} ${inFlight === 1 ? 'sequential' : `inflight ${inFlight}`}`;
      if (!name.includes(only)) continue;
      const dir = mkdtempSync(path.join(tmpdir(), 'ringkv-store-bench-'));
      const store = LmdbStore.open(dir, { sync });
      try {
        // Warm up: load every key once, so the measured writes overwrite as a steady replica does.
        await runCase(store, 64, 0.3);
        const r = await runCase(store, inFlight, seconds);
        const sorted = r.latenciesUs.sort((a, b) => a - b);
        console.log(
          `${name.padEnd(22)} ${String(Math.round(r.ops / r.seconds)).padStart(7)} updates/s   p50 ${quantile(sorted, 0.5).toFixed(0).padStart(6)} µs   p99 ${quantile(sorted, 0.99).toFixed(0).padStart(6)} µs   CPU ${r.cpuUsPerOp.toFixed(1).padStart(6)} µs/update`,
        );
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

await main();
