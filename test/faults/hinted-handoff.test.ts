/**
 * Sloppy quorum and hinted handoff on real processes, real NATS and real LMDB (issue "Sloppy quorum
 * and hinted handoff"): Cassandra's hinted-handoff test, hint holders killed with SIGKILL before
 * they deliver, and Riak's "doomstone" (a late hinted delete never beats a newer write).
 */
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { repoRoot, ringkvBin, startCluster, type Cluster } from '../support/cluster.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';

const text = new TextEncoder();
const untext = new TextDecoder();
// Short gossip rounds: a dead node is judged down in about a second.
const fastDetection = ['--gossip-round-ms', '200'];

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient | undefined;

afterEach(async () => {
  await client?.close();
  await cluster?.stopAll();
  await nats?.stop();
  client = cluster = nats = undefined;
});

async function start(nodes: number, name: string): Promise<{ cluster: Cluster; client: RingkvClient }> {
  nats = await startNatsServer();
  cluster = await startCluster({ nodes, natsUrl: nats.url, dataRoot: tempDir(`ringkv-${name}-`), cluster: name, args: fastDetection });
  client = await RingkvClient.connect({ servers: nats.url, cluster: name, timeoutMs: 3000 });
  return { cluster, client };
}

/** Waits until every listed node sees `member` in `state`. */
async function waitForState(c: RingkvClient, observers: string[], member: string, state: 'up' | 'down'): Promise<void> {
  for (const via of observers) {
    await expect
      .poll(async () => (await c.status({ via })).members.find((m) => m.nodeId === member)?.state, { timeout: 20_000, interval: 100 })
      .toBe(state);
  }
}

/** Pending hints across the cluster, read the way an operator does: `ringkv hints --json`. */
function pendingHints(natsUrl: string, clusterName: string): number {
  const out = execFileSync(process.execPath, [ringkvBin, '--server', natsUrl, '--cluster', clusterName, 'hints', '--json'], { cwd: repoRoot, encoding: 'utf8' });
  const report = JSON.parse(out) as { nodes: { targets?: { count: number }[]; error?: string }[] };
  if (report.nodes.some((n) => n.error)) return Number.POSITIVE_INFINITY;
  return report.nodes.reduce((sum, n) => sum + (n.targets ?? []).reduce((a, t) => a + t.count, 0), 0);
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

describe('hinted handoff', () => {
  it("Cassandra's test: 1,000 writes at W=2 while a node is down all reach it by hints", { timeout: 180_000 }, async () => {
    const { cluster, client } = await start(3, 'hh-cassandra');
    await cluster.kill('n3', 'SIGTERM');
    await waitForState(client, ['n1', 'n2'], 'n3', 'down');

    const keys = Array.from({ length: 1000 }, (_, i) => `hh:${i}`);
    await inBatches(keys, 25, async (k) => void (await client.put(k, text.encode(`value ${k}`), { w: 2 })));
    expect(pendingHints(nats!.url, 'hh-cassandra')).toBe(Number.POSITIVE_INFINITY); // n3 cannot answer yet

    await cluster.restart('n3');
    const started = Date.now();
    await expect.poll(() => pendingHints(nats!.url, 'hh-cassandra'), { timeout: 60_000, interval: 500 }).toBe(0);
    console.log(`hinted handoff: 1000 hints drained ${Date.now() - started} ms after n3 restarted`);

    await cluster.kill('n1');
    await cluster.kill('n2');
    const missing: string[] = [];
    await inBatches(keys, 50, async (k) => {
      const read = await client.get(k, { r: 1, via: 'n3' });
      if (!read.found || untext.decode(read.values[0]!) !== `value ${k}`) missing.push(k);
    });
    expect(missing).toEqual([]);
  });

  it('hint holders killed with SIGKILL before delivering still deliver after a restart', { timeout: 180_000 }, async () => {
    const { cluster, client } = await start(4, 'hh-sigkill');
    await cluster.kill('n4');
    await waitForState(client, ['n1', 'n2', 'n3'], 'n4', 'down');

    // Keys whose primaries include n4: a fallback (the ring's fourth node) takes each with a hint.
    const ring = claimInitial(cluster.ids, 64);
    const keys = Array.from({ length: 400 }, (_, i) => `fallback:${i}`).filter((k) => preferenceList(ring, partitionOf(text.encode(k), 64), 3).includes('n4')).slice(0, 200);
    await inBatches(keys, 25, async (k) => void (await client.put(k, text.encode(`value ${k}`), { w: 3 })));

    for (const id of ['n1', 'n2', 'n3']) await cluster.kill(id, 'SIGKILL');
    for (const id of ['n1', 'n2', 'n3']) await cluster.restart(id);
    await cluster.restart('n4');
    await expect.poll(() => pendingHints(nats!.url, 'hh-sigkill'), { timeout: 60_000, interval: 500 }).toBe(0);

    for (const id of ['n1', 'n2', 'n3']) await cluster.kill(id);
    const missing: string[] = [];
    await inBatches(keys, 50, async (k) => {
      const read = await client.get(k, { r: 1, via: 'n4' });
      if (!read.found || untext.decode(read.values[0]!) !== `value ${k}`) missing.push(k);
    });
    expect(missing).toEqual([]);
  });

  it('a hinted delete delivered late never beats a newer write (doomstone)', { timeout: 120_000 }, async () => {
    const { cluster, client } = await start(3, 'hh-doomstone');
    await cluster.kill('n3');
    await waitForState(client, ['n1', 'n2'], 'n3', 'down');

    // Written and deleted through n1 while n3 is down: n1 keeps the hint for n3.
    await client.put('doom', text.encode('v1'), { via: 'n1', w: 2 });
    const seen = await client.get('doom', { via: 'n1', r: 2 });
    await client.delete('doom', { context: seen.context, via: 'n1', w: 2 });

    // The hint holder dies before it can deliver; n3 returns and a newer write lands on n2 and n3.
    await cluster.kill('n1');
    await cluster.restart('n3');
    await waitForState(client, ['n2', 'n3'], 'n3', 'up');
    await waitForState(client, ['n2', 'n3'], 'n1', 'down');
    const afterDelete = await client.get('doom', { via: 'n2', r: 2 });
    expect(afterDelete.found).toBe(false);
    await client.put('doom', text.encode('v2'), { context: afterDelete.context, via: 'n2', w: 2 });

    // n1 comes back and delivers its old tombstone to n3.
    await cluster.restart('n1');
    await expect.poll(() => pendingHints(nats!.url, 'hh-doomstone'), { timeout: 60_000, interval: 500 }).toBe(0);
    const read = await client.get('doom', { r: 3 });
    expect(read.values.map((v) => untext.decode(v))).toEqual(['v2']);
    await cluster.kill('n1');
    await cluster.kill('n2');
    const alone = await client.get('doom', { r: 1, via: 'n3' });
    expect(alone.values.map((v) => untext.decode(v))).toEqual(['v2']);
  });
});
