/**
 * Deletes give their space back (issue 27 part 3, measured): three `ringkv node` processes (Q = 64,
 * N = 3) on a real nats-server take KEYS keys (default 5,000; RINGKV_REAP_SPACE_KEYS=100000 for the
 * figure in the README), then every key is deleted and the reaper runs (500 ms sweeps, 1 s grace).
 * Each node is backed up empty, full, and after the reap: the backup is LMDB's compacted copy, so
 * its size is the data's (the live data.mdb only grows: LMDB reuses its free pages and never shrinks
 * the file). After the reap every node holds no object and no Merkle segment, and its compacted
 * copy is back near the empty node's.
 */
import { execFile } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { RingkvClient } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';
import type { ApiBackupOk } from '../../src/protocol/messages.js';
import { type Cluster, printNodeOutputOnFailure, repoRoot, ringkvBin, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'reapspace';
const keyCount = Number(process.env.RINGKV_REAP_SPACE_KEYS ?? 5_000);
const text = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let dataRoot: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-reap-space-');
  cluster = await startCluster({
    nodes: 3,
    natsUrl: nats.url,
    dataRoot,
    cluster: clusterName,
    args: ['--aae-interval-ms', '2000', '--reap-interval-ms', '500', '--reap-grace-ms', '1000'],
  });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 10_000 });
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

printNodeOutputOnFailure(() => cluster, 20_000);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ringkvBin, '--server', nats!.url, '--cluster', clusterName, ...args], { cwd: repoRoot, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Space {
  node: string;
  /** The compacted copy's size: the data's. */
  backupBytes: number;
  /** The live data.mdb's size (LMDB's high-water mark). */
  fileBytes: number;
  objects: number;
  merkleSegments: number;
}

async function measure(label: string): Promise<Space[]> {
  const out: Space[] = [];
  for (const node of cluster!.ids) {
    const res = await cli(['backup', '--node', node, `${label}-${node}`, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const ok = JSON.parse(res.stdout) as ApiBackupOk;
    // The copy is a whole environment: open it to count what it holds.
    const copy = LmdbStore.open(ok.dir);
    const counts = copy.entryCounts();
    await copy.close();
    out.push({ node, backupBytes: ok.bytes, fileBytes: statSync(path.join(cluster!.dataDir(node), 'data.mdb')).size, objects: counts.objects, merkleSegments: counts.merkleSegments });
  }
  return out;
}

/** Runs fn for every key, `concurrency` at once; a TIMEOUT (unknown outcome) is tried again, as a client would. */
async function forEachKey(concurrency: number, fn: (key: string) => Promise<void>): Promise<void> {
  let next = 0;
  const once = async (key: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(key);
      } catch (err) {
        if (!(err instanceof RingkvError && err.code === 'TIMEOUT') || attempt >= 5) throw err;
      }
    }
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keyCount) await once(`key:${next++}`);
    }),
  );
}

describe('deletes give their space back', () => {
  it(`after deleting every one of ${keyCount} keys and the reap, objects and Merkle segments are gone and the data is back near empty`, { timeout: 3_600_000 }, async () => {
    const empty = await measure('empty');
    let started = Date.now();
    await forEachKey(64, (key) => client.put(key, text.encode(`${key} ${'v'.repeat(80)}`), { w: 3 }));
    const writeMs = Date.now() - started;
    const full = await measure('full');
    started = Date.now();
    await forEachKey(64, (key) => client.delete(key, { w: 3 }));
    const deleteMs = Date.now() - started;
    started = Date.now();
    for (;;) {
      const t = await Promise.all(cluster!.ids.map(async (id) => (await client.status({ via: id })).tombstones!));
      if (t.every((x) => x.kept === 0 && x.sweeps > 0) && t.reduce((a, x) => a + x.reaped, 0) >= 3 * keyCount) break;
      if (Date.now() - started > 1_800_000) throw new Error(`not reaped: ${JSON.stringify(t)}`);
      await sleep(500);
    }
    const reapMs = Date.now() - started;
    const after = await measure('reaped');
    const row = (label: string, s: Space[]) =>
      `${label.padEnd(8)} ${s.map((x) => `${x.node}: copy ${(x.backupBytes / 1024).toFixed(0)} KiB, data.mdb ${(x.fileBytes / 1024).toFixed(0)} KiB, ${x.objects} objects, ${x.merkleSegments} segments`).join('; ')}`;
    console.log(
      [
        `${keyCount} keys, 3 nodes, N = 3, Q = 64: written in ${writeMs} ms, deleted in ${deleteMs} ms, every tombstone reaped ${reapMs} ms after the last delete`,
        row('empty', empty),
        row('full', full),
        row('reaped', after),
      ].join('\n'),
    );
    for (const [i, s] of after.entries()) {
      expect(s.objects).toBe(0);
      expect(s.merkleSegments).toBe(0);
      expect(full[i]!.objects).toBe(keyCount);
      // Near empty: within 64 KiB of the empty node's copy (LMDB's page tables, meta, hints db).
      expect(s.backupBytes).toBeLessThanOrEqual(empty[i]!.backupBytes + 64 * 1024);
    }
  });
});
