/**
 * The client library's availability and speed on real processes (issue 10 items 1 and 4; issue 8's
 * client-driven coordination): three `ringkv node` processes on a nats-server of the test's own.
 *
 * - Client-driven reads and writes are correct: siblings, contexts, deletes, and the fallback to a
 *   coordinated get (with read repair) when the replicas a client asked differ.
 * - SIGKILL of the node a client sends a key's requests to: the next requests succeed without
 *   waiting for any timeout (NATS answers "no responders" for the dead node's subject at once), and
 *   requests that were in flight on it are hedged to the next node.
 * - SIGSTOP of a node (paused: NATS still delivers to it, nothing answers): hedging keeps every
 *   request succeeding while it is paused, and no acknowledged write is lost after SIGCONT.
 *
 * The tests share one cluster and run in order.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { partitionOf, preferenceList } from '../../src/core/ring.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/protocol/envelope.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { type Cluster, startCluster, printNodeOutputOnFailure } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'failover';
const requestTimeoutMs = 5_000;
const timeout = { timeout: 120_000 };
const text = new TextEncoder();
const untext = new TextDecoder();
const strings = (values: Uint8Array[]) => values.map((v) => untext.decode(v)).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Successes are counted per second: the machine is shared and a test may be starved of CPU for a
 * few hundred ms at any time, so finer buckets would test the scheduler, not the client.
 */
const bucketMs = 1_000;

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let nc: NatsConnection;
let dataRoot: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-failover-');
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName, args: ['--request-timeout-ms', String(requestTimeoutMs)] });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: requestTimeoutMs });
  nc = await connect({ servers: nats.url, name: 'failover-test-raw' });
  // Every node serves: a quorum write and read of a probe key succeed.
  for (let attempt = 0; ; attempt++) {
    const outcome = await client.put('probe', text.encode('p'), { w: 3 }).then(() => 'ok', (e: Error) => e.message);
    if (outcome === 'ok') break;
    if (attempt > 150) throw new Error(`the cluster does not serve: ${outcome}`);
    await sleep(200);
  }
}, 120_000);

afterAll(async () => {
  if (cluster) for (const id of cluster.ids) cluster.signal(id, 'SIGCONT');
  await client?.close().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

printNodeOutputOnFailure(() => cluster);

/** Keys whose preference list (by the client's ring) starts with `node`. */
function keysLedBy(node: string, count: number, prefix: string): string[] {
  const view = client.ringView();
  if (!view) throw new Error('the client has no ring yet');
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const key = `${prefix}:${i}`;
    if (preferenceList(view.ring, partitionOf(text.encode(key), view.ring.q), 3)[0] === node) out.push(key);
  }
  return out;
}

/** One node's own replica state of a key, asked directly (api.local.get on its api subject). */
async function localState(node: string, key: string): Promise<DvvSet | null> {
  const bytes = encodeEnvelope({ v: 1, kind: 'api.local.get', from: 'test', to: node, reqId: 'x', body: { key: text.encode(key) } });
  const msg = await nc.request(`ringkv.${clusterName}.node.${node}.api.local.get`, bytes, { timeout: 3000 });
  const env = decodeEnvelope(msg.data);
  if (typeof env === 'string' || env.kind !== 'api.local.get.ok') throw new Error(`unexpected answer ${JSON.stringify(env)}`);
  return (env.body as { state: DvvSet | null }).state;
}

interface LoadReport {
  ok: number;
  failed: { code: string; message: string }[];
  latenciesMs: number[];
  /** Keys whose put was acknowledged, with the value. */
  acked: Map<string, string>;
  /** Successful operations per second since the load started. */
  okPerBucket: number[];
}

/** Puts of fresh keys and reads of acknowledged ones, `concurrency` at a time, until stop() resolves. */
async function load(keys: string[], concurrency: number, until: Promise<void>): Promise<LoadReport> {
  const report: LoadReport = { ok: 0, failed: [], latenciesMs: [], acked: new Map(), okPerBucket: [] };
  const startedAt = performance.now();
  let stopped = false;
  void until.then(() => (stopped = true));
  let next = 0;
  const worker = async () => {
    while (!stopped) {
      const i = next++;
      const key = keys[i % keys.length]!;
      const round = Math.floor(i / keys.length);
      const t0 = performance.now();
      try {
        if (round === 0 || !report.acked.has(key)) {
          const value = `${key}@${round}`;
          await client.put(key, text.encode(value));
          report.acked.set(key, value);
        } else {
          const read = await client.get(key);
          expect(strings(read.values)).toContain(report.acked.get(key));
        }
        report.ok++;
        const bucket = Math.floor((performance.now() - startedAt) / bucketMs);
        report.okPerBucket[bucket] = (report.okPerBucket[bucket] ?? 0) + 1;
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        report.failed.push({ code: err.code, message: err.message });
      }
      report.latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  for (let b = 0; b < report.okPerBucket.length; b++) report.okPerBucket[b] ??= 0;
  return report;
}

describe('the client on a real cluster', () => {
  it('reads replicas itself: siblings, contexts and deletes come out as a coordinated get gives them', timeout, async () => {
    const before = { ...client.stats };
    await client.put('cd:sib', text.encode('from-n1'), { via: 'n1', w: 3 });
    await client.put('cd:sib', text.encode('from-n2'), { via: 'n2', w: 3 });
    const direct = await client.get('cd:sib');
    const coordinated = await client.get('cd:sib', { via: 'n3' });
    expect(strings(direct.values)).toEqual(['from-n1', 'from-n2']);
    expect(strings(coordinated.values)).toEqual(['from-n1', 'from-n2']);
    expect(Buffer.from(direct.context).equals(Buffer.from(coordinated.context))).toBe(true);
    expect(client.stats.clientDrivenReads).toBeGreaterThan(before.clientDrivenReads);

    // A put with the client-driven read's context supersedes both siblings.
    await client.put('cd:sib', text.encode('merged'), { context: direct.context, w: 3 });
    expect(strings((await client.get('cd:sib')).values)).toEqual(['merged']);
    expect(strings((await client.get('cd:sib', { r: 3 })).values)).toEqual(['merged']);

    // Deletes: the tombstone is read as not found, and a write after it with its context is back.
    await client.delete('cd:sib', { w: 3 });
    const gone = await client.get('cd:sib');
    expect(gone.found).toBe(false);
    expect(gone.values).toEqual([]);
    await client.put('cd:sib', text.encode('back'), { context: gone.context, w: 3 });
    expect(strings((await client.get('cd:sib', { r: 3 })).values)).toEqual(['back']);

    // Nothing there: not found, from the replicas alone.
    const reads = client.stats.clientDrivenReads;
    expect((await client.get('cd:never')).found).toBe(false);
    expect(client.stats.clientDrivenReads).toBe(reads + 1);

    // merge() sees each value once and writes back with the read's context.
    await client.putJson('cd:cart', { items: ['a'] }, { via: 'n1', w: 3 });
    await client.putJson('cd:cart', { items: ['b'] }, { via: 'n2', w: 3 });
    await client.mergeJson<{ items: string[] }>('cd:cart', (carts) => ({ items: [...new Set(carts.flatMap((c) => c.items))].sort() }), { w: 3 });
    expect((await client.getJson('cd:cart', { r: 3 })).values).toEqual([{ items: ['a', 'b'] }]);
  });

  it('falls back to a coordinated get when the replicas differ, which repairs the one that is behind', timeout, async () => {
    await cluster!.kill('n3', 'SIGKILL');
    await client.put('cd:repair', text.encode('missed-by-n3'), { w: 2 });
    await cluster!.restart('n3');
    expect(await localState('n3', 'cd:repair')).toBeNull();

    const fallbacks = client.stats.readFallbacks;
    // r = 3 asks every replica: n3 has nothing, the others the value.
    const read = await client.get('cd:repair', { r: 3 });
    expect(strings(read.values)).toEqual(['missed-by-n3']);
    expect(client.stats.readFallbacks).toBe(fallbacks + 1);
    await expect.poll(async () => (await localState('n3', 'cd:repair'))?.length ?? 0, { timeout: 5_000, interval: 100 }).toBeGreaterThan(0);
    // Now the replicas agree: a read is answered from the replicas alone (once the client takes n3
    // for alive again: it was gone a moment ago).
    await expect
      .poll(
        async () => {
          const direct = client.stats.clientDrivenReads;
          expect(strings((await client.get('cd:repair', { r: 3 })).values)).toEqual(['missed-by-n3']);
          return client.stats.clientDrivenReads - direct;
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(1);
  });

  it('SIGKILL of the node a client sends to: the next requests succeed at once, in-flight ones are hedged', timeout, async () => {
    // Wait until every node answers again (n3 restarted in the test before).
    await expect.poll(async () => (await Promise.all(cluster!.ids.map((id) => client.status({ via: id }).then(() => 1, () => 0)))).reduce((a, b) => a + b, 0), { timeout: 20_000 }).toBe(3);
    const keys = keysLedBy('n1', 40, 'kill');
    // Warm up: n1 coordinates the puts of these keys and answers their reads.
    for (const k of keys.slice(0, 10)) await client.put(k, text.encode(`${k}@warm`));

    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const loadStartedAt = performance.now();
    const running = load(keys, 8, stopped);
    await sleep(1_000);
    const killedAt = performance.now();
    await cluster!.kill('n1', 'SIGKILL');
    // Straight after the kill, requests for keys n1 leads succeed well within the deadline.
    const t0 = performance.now();
    for (const k of keys.slice(0, 10)) {
      const started = performance.now();
      await client.put(k, text.encode(`${k}@after-kill`));
      expect(strings((await client.get(k)).values)).toContain(`${k}@after-kill`);
      expect(performance.now() - started).toBeLessThan(requestTimeoutMs / 3);
    }
    const afterKillMs = performance.now() - t0;
    await sleep(3_000);
    stop();
    const report = await running;
    await cluster!.restart('n1');
    const longest = Math.max(...report.latenciesMs);
    process.stderr.write(
      `kill: ${report.ok} ops ok, ${report.failed.length} failed, longest op ${longest.toFixed(0)} ms, 20 ops after the kill in ${afterKillMs.toFixed(0)} ms, ` +
        `hedges ${client.stats.hedges}, no-responders ${client.stats.noResponders}; ok per second: ${report.okPerBucket.join(' ')}\n`,
    );
    expect(report.failed).toEqual([]);
    // In-flight requests on n1 were hedged (at most the hedge cap, 250 ms), never left to time out.
    expect(longest).toBeLessThan(requestTimeoutMs / 2);
    // Ops kept succeeding in every second after the kill.
    const killBucket = Math.floor((killedAt - loadStartedAt) / bucketMs);
    expect(report.okPerBucket.slice(killBucket, -1).every((n) => n > 0)).toBe(true);

    for (const [k, v] of report.acked) expect(strings((await client.get(k, { r: 2 })).values), k).toContain(v);
  });

  it('SIGSTOP of a node: hedging keeps every request succeeding while it is paused; nothing acknowledged is lost after SIGCONT', timeout, async () => {
    await expect.poll(async () => (await Promise.all(cluster!.ids.map((id) => client.status({ via: id }).then(() => 1, () => 0)))).reduce((a, b) => a + b, 0), { timeout: 20_000 }).toBe(3);
    const keys = keysLedBy('n2', 60, 'pause');
    for (const k of keys.slice(0, 5)) await client.put(k, text.encode(`${k}@warm`));

    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const running = load(keys, 8, stopped);
    await sleep(1_000);
    cluster!.signal('n2', 'SIGSTOP');
    const pausedAt = performance.now();
    await sleep(4_000);
    const pausedMs = performance.now() - pausedAt;
    stop();
    const report = await running;
    cluster!.signal('n2', 'SIGCONT');
    const longest = Math.max(...report.latenciesMs);
    process.stderr.write(
      `pause: ${report.ok} ops ok, ${report.failed.length} failed, longest op ${longest.toFixed(0)} ms over ${pausedMs.toFixed(0)} ms paused, ` +
        `hedges ${client.stats.hedges}; ok per second: ${report.okPerBucket.join(' ')}\n`,
    );
    expect(report.failed).toEqual([]);
    expect(longest).toBeLessThan(requestTimeoutMs / 2);
    // Ops kept succeeding through the pause: every second from the pause on saw some.
    expect(report.okPerBucket.slice(1, -1).every((n) => n > 0)).toBe(true);

    // After SIGCONT every acknowledged write is there, and n2 serves again.
    for (const [k, v] of report.acked) expect(strings((await client.get(k, { r: 2 })).values), k).toContain(v);
    await expect.poll(async () => client.status({ via: 'n2', timeoutMs: 1000 }).then(() => 'up', () => 'silent'), { timeout: 20_000 }).toBe('up');
  });
});
