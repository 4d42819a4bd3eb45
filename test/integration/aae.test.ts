/**
 * Anti-entropy on real processes (issue 6): three `ringkv node` processes on their own nats-server,
 * 20,000 keys written with W=3; one node is stopped, its data directory deleted, and started again
 * (it takes a new epoch). With no reads at all, Merkle exchanges must restore every key on it: the
 * test watches only `api.aae` counters, then proves it by killing the other two nodes and reading
 * every key through the restored node with R=1. The time to restore is printed.
 *
 * Also: `ringkv aae` through the CLI (table and JSON), pause and resume.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ApiAaeOk } from '../../src/protocol/aae-messages.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { repoRoot, ringkvBin } from '../support/cluster.js';

const clusterName = 'aaetest';
const keyCount = 20_000;
const writeConcurrency = 128;
const readConcurrency = 128;
const aaeIntervalMs = 1000;

const env = useAdminCluster({ nodes: 3, cluster: clusterName, args: ['--aae-interval-ms', String(aaeIntervalMs)], timeoutMs: 5000, outputChars: 20_000 });

const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keyOf = (i: number) => `aae:${i}`;
const valueOf = (i: number) => `value of key ${i}`;

/** Runs fn(i) for i in [0, count) with at most `concurrency` in flight. */
async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ringkvBin, '--server', env.nats.url, '--cluster', clusterName, ...args], { cwd: repoRoot, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const repairedOn = (a: ApiAaeOk) => a.partitions.reduce((n, s) => n + s.keysRepaired, 0);

describe('anti-entropy', () => {
  it('shows per partition the last exchange, keys repaired and bytes sent, and pauses and resumes', { timeout: 60_000 }, async () => {
    // A round runs every second: after a few, every node has exchanged each of its partitions.
    await sleep(3 * aaeIntervalMs);
    const json = await cli(['aae', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { nodes: ApiAaeOk[]; partitions: { p: number; lastExchangeAt: number | null; bytesSent: number }[] };
    expect(report.nodes.map((n) => n.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(report.nodes.every((n) => !n.paused && n.intervalMs === aaeIntervalMs && n.exchangesMax === 1 && n.bytesPerSec === 1024 * 1024)).toBe(true);
    expect(report.partitions).toHaveLength(64);
    expect(report.partitions.every((p) => p.lastExchangeAt !== null && p.bytesSent > 0)).toBe(true);

    const table = await cli(['aae']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/PARTITION\s+LAST EXCHANGE\s+EXCHANGES\s+FAILED\s+KEYS REPAIRED\s+BYTES SENT/);
    expect(table.stdout).toMatch(/n1: active/);

    const paused = await cli(['aae', 'pause', '--node', 'n3']);
    expect(paused.stdout).toBe('n3: paused\n');
    expect((await env.admin.aae('status', { via: 'n3' })).paused).toBe(true);
    const resumed = await cli(['aae', 'resume']);
    expect(resumed.stdout.split('\n').filter(Boolean).sort()).toEqual(['n1: resumed', 'n2: resumed', 'n3: resumed']);
    expect((await env.admin.aae('status', { via: 'n3' })).paused).toBe(false);
  });

  it('restores every key of a node whose data directory was deleted, without any read', { timeout: 150_000 }, async () => {
    const c = env.cluster;
    const writeStarted = performance.now();
    await pool(keyCount, writeConcurrency, async (i) => {
      await env.client.putString(keyOf(i), valueOf(i), { w: 3 });
    });
    const writeMs = performance.now() - writeStarted;

    // Stop n2, delete its data, start it: a new epoch and an empty store.
    const before = await env.admin.aae('status', { via: 'n2' });
    await c.kill('n2', 'SIGTERM');
    rmSync(c.dataDir('n2'), { recursive: true, force: true });
    await c.restart('n2');
    const restartedAt = performance.now();
    expect(c.servingLines('n2').at(-1)).toMatchObject({ newEpoch: true });
    expect(repairedOn(await env.admin.aae('status', { via: 'n2' }))).toBe(0);

    // Only anti-entropy counters are watched: no key is read until every one was repaired.
    let repaired = 0;
    while (repaired < keyCount) {
      if (performance.now() - restartedAt > 100_000) throw new Error(`anti-entropy restored only ${repaired} of ${keyCount} keys in 100 s`);
      await sleep(200);
      repaired = repairedOn(await env.admin.aae('status', { via: 'n2' }));
    }
    const restoreMs = performance.now() - restartedAt;
    const n2 = await env.admin.aae('status', { via: 'n2' });
    const others = await Promise.all(['n1', 'n3'].map((via) => env.admin.aae('status', { via })));
    const sentToN2 = others.reduce((n, a) => n + a.partitions.reduce((m, s) => m + s.bytesSent, 0), 0);
    console.log(
      `aae restore: ${keyCount} keys written (w=3, ${writeConcurrency} in flight) in ${(writeMs / 1000).toFixed(1)} s; ` +
        `n2 wiped and restarted; anti-entropy restored all ${repaired} keys in ${(restoreMs / 1000).toFixed(1)} s ` +
        `(n2 sent ${n2.partitions.reduce((m, s) => m + s.bytesSent, 0)} aae bytes; n1+n3 ${sentToN2} in total since start, ${others.reduce((n, a) => n + repairedOn(a), 0)} repairs on them, before: n2 had ${repairedOn(before)})`,
    );
    expect(repaired).toBe(keyCount);

    // Proof: only n2 is left, and it has every key (R=1, asked through n2 itself).
    await c.kill('n1');
    await c.kill('n3');
    const missing: number[] = [];
    const readStarted = performance.now();
    await pool(keyCount, readConcurrency, async (i) => {
      const r = await env.client.get(keyOf(i), { r: 1, via: 'n2', timeoutMs: 5000 });
      if (!r.found || r.values.length !== 1 || untext.decode(r.values[0]!) !== valueOf(i)) missing.push(i);
    });
    console.log(`aae restore: read all ${keyCount} keys from n2 alone with r=1 in ${((performance.now() - readStarted) / 1000).toFixed(1)} s; missing ${missing.length}`);
    expect(missing).toEqual([]);
    void text;
  });
});
