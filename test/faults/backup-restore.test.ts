/**
 * Backup and restore on real processes (issue 18, item 5): three `ringkv node` processes take writes
 * without pause while `ringkv backup --node n2 DIR` copies n2's store; more writes follow; n2 is
 * killed (SIGKILL), its data directory wiped, and it is started again with --restore-from DIR. It
 * comes back with a NEW epoch, anti-entropy brings it up to date, and then, with the other two nodes
 * stopped, every acknowledged write (before, during and after the backup) reads back from n2 alone.
 * Also: the copy is compacted (smaller than the live file after churn), a backup outside the node's
 * backup directory is refused with BAD_REQUEST, and a restore never overwrites a data directory.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterAdmin } from '../../src/client/admin.js';
import { RingkvClient } from '../../src/client/client.js';
import type { ApiBackupOk } from '../../src/protocol/messages.js';
import { type Cluster, printNodeOutputOnFailure, repoRoot, ringkvBin, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'backuptest';
const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let admin: ClusterAdmin;
let dataRoot: string;
let backupRoot: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-backup-');
  backupRoot = path.join(dataRoot, 'backups');
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName, args: ['--aae-interval-ms', '1000'] });
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

printNodeOutputOnFailure(() => cluster, 20_000);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ringkvBin, '--server', nats!.url, '--cluster', clusterName, ...args], { cwd: repoRoot, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** What the test was told was stored: key -> value, only for puts that were acknowledged. */
const acked = new Map<string, string>();

async function writeKeys(prefix: string, count: number, concurrency = 32): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const key = `${prefix}:${i}`;
        const value = `${prefix} value ${i} ${'x'.repeat(i % 50)}`;
        await client.put(key, text.encode(value), { w: 2 });
        acked.set(key, value);
      }
    }),
  );
}

describe('backup and restore', () => {
  it('backs up a serving node, restores it with a new epoch after a wipe, and every acknowledged write reads back', { timeout: 180_000 }, async () => {
    await writeKeys('before', 1500);
    // Churn: overwrite half of them, so the live file holds free pages a compacted copy leaves out.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 750; i++) {
        const got = await client.get(`before:${i}`);
        const value = `before value ${i} rewritten ${round}`;
        await client.put(`before:${i}`, text.encode(value), { w: 2, context: got.context });
        acked.set(`before:${i}`, value);
      }
    }

    // The backup is taken while writes keep coming.
    let writing = true;
    const during = (async () => {
      let i = 0;
      while (writing) {
        const key = `during:${i}`;
        const value = `during value ${i++}`;
        await client.put(key, text.encode(value), { w: 2 });
        acked.set(key, value);
      }
    })();
    const res = await cli(['backup', '--node', 'n2', 'nightly-1', '--json']);
    writing = false;
    await during;
    expect(res.code, res.stderr).toBe(0);
    const ok = JSON.parse(res.stdout) as ApiBackupOk;
    expect(ok.nodeId).toBe('n2');
    expect(ok.dir).toBe(path.join(backupRoot, 'nightly-1'));
    expect(existsSync(path.join(ok.dir, 'data.mdb'))).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(ok.dir, 'ringkv-backup.json'), 'utf8')) as { nodeId: string; epoch: string };
    expect(manifest).toMatchObject({ nodeId: 'n2', epoch: ok.epoch });
    const liveBytes = statSync(path.join(cluster!.dataDir('n2'), 'data.mdb')).size;
    console.log(`backup of n2: ${ok.bytes} bytes in ${ok.tookMs} ms (live data.mdb ${liveBytes} bytes)`);
    expect(ok.bytes).toBeGreaterThan(0);
    expect(ok.bytes).toBeLessThan(liveBytes);

    // Refusals: outside the backup directory, and over an existing backup.
    const outside = await cli(['backup', '--node', 'n2', '/tmp/elsewhere', '--json']);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr + outside.stdout).toMatch(/BAD_REQUEST|not inside/);
    const again = await cli(['backup', '--node', 'n2', 'nightly-1']);
    expect(again.code).not.toBe(0);
    expect(again.stderr + again.stdout).toMatch(/not an empty directory/);

    await writeKeys('after', 1000);

    // n2 is lost: killed, its data wiped; restored from the backup.
    const oldEpoch = cluster!.servingLines('n2').at(-1)!.epoch as string;
    await cluster!.kill('n2', 'SIGKILL');
    rmSync(cluster!.dataDir('n2'), { recursive: true, force: true });
    await cluster!.restart('n2', ['--restore-from', ok.dir]);
    const serving = cluster!.servingLines('n2').at(-1)!;
    expect(serving.newEpoch).toBe(true);
    expect(serving.epoch).not.toBe(oldEpoch);
    expect(cluster!.logs('n2')).toContain('restored from a backup');

    // A second start with the same flags (a supervisor's restart) does not restore again or refuse.
    await cluster!.restart('n2', ['--restore-from', ok.dir]);
    expect(cluster!.logs('n2').split('restored from a backup').length - 1).toBe(1);

    // A restore never overwrites data.
    const over = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        process.execPath,
        [ringkvBin, '--server', nats!.url, '--cluster', clusterName, 'node', '--id', 'n1', '--data', cluster!.dataDir('n1'), '--members', 'n1,n2,n3', '--restore-from', ok.dir],
        { cwd: repoRoot, timeout: 20_000, env: { ...process.env, RINGKV_CLUSTER_SECRET: cluster!.secret } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(over.code).not.toBe(0);
    expect(over.out).toMatch(/is of node "n2", not "n1"|not empty/);

    // Anti-entropy brings n2 up to date: wait for a whole round of its exchanges since the start,
    // one per partition with each of the two other replicas (an acknowledged write may be on only one).
    const until = Date.now() + 120_000;
    for (;;) {
      const aae = await admin.aae('status', { via: 'n2' });
      const behind = aae.partitions.filter((p) => p.exchanges < 2).length;
      if (behind === 0) break;
      if (Date.now() > until) throw new Error(`anti-entropy did not finish a round on n2: ${behind} partitions behind`);
      await sleep(1000);
    }
    // Then only n2: every acknowledged write reads back from it alone (it owns every key with N=3).
    await cluster!.kill('n1', 'SIGTERM');
    await cluster!.kill('n3', 'SIGTERM');
    const missing: string[] = [];
    for (const [key, value] of acked) {
      const got = await client.get(key, { r: 1 });
      const values = got.values.map((v) => untext.decode(v));
      if (!values.includes(value)) missing.push(`${key}: ${JSON.stringify(values)}`);
    }
    console.log(`acknowledged writes checked on the restored node alone: ${acked.size}, missing ${missing.length}`);
    expect(missing).toEqual([]);
  });
});
