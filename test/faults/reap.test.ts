/**
 * Tombstone reaping on real processes (issue 27 part 3): three `ringkv node` processes on a real
 * nats-server, reaping on (500 ms sweeps, a 10 s grace period). 300 keys are written, n3 is backed
 * up, 100 keys are deleted, and n3 is killed (SIGKILL), wiped and restored from that backup at once:
 * it holds the deleted values again. The tombstones stay until anti-entropy has brought it the
 * deletes, then go from every replica (status: none kept, 300 reaped), and no deleted value reads
 * back. Once the backup is older than the grace period, restoring it is refused; n3 comes back
 * empty instead, is rebuilt by anti-entropy, and still nothing deleted reads back. Finally, with
 * the nodes stopped, each node's LMDB holds none of the deleted keys and the three Merkle trees of
 * every partition are equal (the reap folded each key out of its segment).
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { RingkvClient } from '../../src/client/client.js';
import { ClusterAdmin } from '../../src/client/admin.js';
import type { ApiBackupOk, ApiStatusOk } from '../../src/protocol/messages.js';
import { partitionOf } from '../../src/core/ring.js';
import { type Cluster, printNodeOutputOnFailure, repoRoot, ringkvBin, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'reaptest';
const partitions = 16;
const graceMs = 10_000;
const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let admin: ClusterAdmin;
let dataRoot: string;

const reapArgs = ['--partitions', String(partitions), '--aae-interval-ms', '500', '--reap-interval-ms', '500', '--reap-grace-ms', String(graceMs)];

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-reap-');
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName, args: reapArgs });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 5000 });
  admin = await ClusterAdmin.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 5000 });
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await admin?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

printNodeOutputOnFailure(() => cluster, 40_000);

function run(args: string[], timeout = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ringkvBin, '--server', nats!.url, '--cluster', clusterName, ...args], { cwd: repoRoot, timeout, env: { ...process.env, RINGKV_CLUSTER_SECRET: cluster!.secret } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

const keys = Array.from({ length: 300 }, (_, i) => `k:${i}`);
const deleted = keys.slice(0, 100);
const kept = keys.slice(100);

async function tombstones(): Promise<NonNullable<ApiStatusOk['tombstones']>[]> {
  return Promise.all(cluster!.ids.map(async (id) => (await client.status({ via: id })).tombstones!));
}

/** Waits until no node keeps a tombstone and the nodes reaped `reaped` in all; returns the wait. */
async function waitReaped(reaped: number, limitMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const t = await tombstones().catch(() => undefined);
    if (t && t.every((x) => x.kept === 0 && x.sweeps > 0) && t.reduce((a, x) => a + x.reaped, 0) >= reaped) return Date.now() - started;
    if (Date.now() - started > limitMs) throw new Error(`tombstones not reaped within ${limitMs} ms: ${JSON.stringify(t)}`);
    await sleep(250);
  }
}

/** The deleted keys that read back with a value (R = N: every replica answers). */
async function resurrected(): Promise<string[]> {
  const out: string[] = [];
  for (const key of deleted) {
    const got = await client.get(key, { r: 3 });
    if (got.values.length > 0) out.push(`${key}: ${got.values.map((v) => untext.decode(v)).join(' | ')}`);
  }
  return out;
}

describe('tombstone reaping on real processes', () => {
  it('reaps every tombstone on every replica, and no deleted value comes back after a restore of a backup taken before the delete', { timeout: 240_000 }, async () => {
    for (const key of keys) await client.put(key, text.encode(`value of ${key}`), { w: 3 });
    const backup = await run(['backup', '--node', 'n3', 'before-delete', '--json']);
    expect(backup.code, backup.out).toBe(0);
    const dir = (JSON.parse(backup.out) as ApiBackupOk).dir;
    for (const key of deleted) await client.delete(key, { w: 2 });

    // n3 is lost at once and restored from the backup (younger than the grace period): it holds
    // every deleted value again, and its old copies hold the reap back until anti-entropy has
    // brought it the tombstones.
    await cluster!.kill('n3', 'SIGKILL');
    rmSync(cluster!.dataDir('n3'), { recursive: true, force: true });
    await cluster!.restart('n3', ['--restore-from', dir]);
    expect(cluster!.logs('n3')).toContain('restored from a backup');
    const tookMs = await waitReaped(300, 90_000);
    console.log(`every tombstone reaped on every replica ${tookMs} ms after n3 came back (grace ${graceMs} ms)`);
    expect(await resurrected()).toEqual([]);

    // Now the backup is older than the grace period: restoring it is refused, nothing is copied.
    await cluster!.kill('n3', 'SIGKILL');
    rmSync(cluster!.dataDir('n3'), { recursive: true, force: true });
    const refused = await run(['node', '--id', 'n3', '--data', cluster!.dataDir('n3'), '--members', 'n1,n2,n3', ...reapArgs, '--restore-from', dir], 30_000);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/longer than the tombstone grace period/);
    // A wiped node instead: anti-entropy rebuilds it from the others, and nothing deleted returns.
    await cluster!.restart('n3', []);
    await sleep(5_000);
    expect(await resurrected()).toEqual([]);
    for (const key of kept.slice(0, 20)) expect((await client.get(key, { r: 3 })).values.map((v) => untext.decode(v))).toEqual([`value of ${key}`]);

    // On disk: none of the deleted keys anywhere, and equal Merkle trees of every partition. Let
    // anti-entropy finish rebuilding n3 first (its segments must match for every kept key).
    const until = Date.now() + 60_000;
    for (;;) {
      const aae = await admin.aae('status', { via: 'n3' });
      if (aae.partitions.every((p) => p.exchanges >= 2) || Date.now() > until) break;
      await sleep(500);
    }
    await cluster!.stopAll();
    const stores = cluster!.ids.map((id) => LmdbStore.open(cluster!.dataDir(id)));
    try {
      for (const [i, store] of stores.entries()) {
        const held = deleted.filter((key) => store.get(partitionOf(text.encode(key), partitions), text.encode(key)) !== undefined);
        expect(held, `${cluster!.ids[i]} still holds deleted keys`).toEqual([]);
      }
      for (let p = 0; p < partitions; p++) {
        const trees = stores.map((s) => Buffer.from(s.segments(p).buffer).toString('hex'));
        expect(new Set(trees).size, `Merkle trees of partition ${p}`).toBe(1);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

