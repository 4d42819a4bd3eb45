/**
 * The client's own NATS server dies (issue 10: "when the client's own server dies, every in-flight
 * request hangs until its timeout, because nats.js does not cancel requests that were in flight on
 * a dropped connection"). Two nats-servers in one NATS cluster; three `ringkv node` processes on
 * server B; the client connected to server A (and told of B). Server A is killed with SIGKILL under
 * load: the requests in flight on the dropped connection are sent again at once and answered after
 * the reconnect to B, well before their deadline; nothing fails and nothing acknowledged is lost.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/bench/free-port.js';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServerPair, tempDir } from '../support/nats-server.js';

const clusterName = 'conndrop';
const requestTimeoutMs = 5_000;
const text = new TextEncoder();
const untext = new TextDecoder();

let natsA: NatsServerHandle | undefined;
let natsB: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let nc: NatsConnection | undefined;
let client: RingkvClient;
let dataRoot: string;

beforeAll(async () => {
  ({ a: natsA, b: natsB } = await startNatsServerPair('ringkv-conndrop'));
  dataRoot = tempDir('ringkv-conndrop-');
  cluster = await startCluster({ nodes: 3, natsUrl: natsB.url, dataRoot, cluster: clusterName, args: ['--request-timeout-ms', String(requestTimeoutMs)] });
  // The client's connection: server A first (no shuffling), B to reconnect to.
  nc = await connect({ servers: [natsA.url, natsB.url], noRandomize: true, reconnectTimeWait: 250, reconnectJitter: 100, maxReconnectAttempts: -1 });
  client = await RingkvClient.connect({ connection: nc, cluster: clusterName, timeoutMs: requestTimeoutMs });
  // Through A, over the route, every node answers and a quorum write works.
  for (let attempt = 0; ; attempt++) {
    const ok = await Promise.all(cluster.ids.map((via) => client.status({ via, timeoutMs: 1000 }).then(() => true, () => false)));
    const put = ok.every(Boolean) && (await client.put('probe', text.encode('p'), { w: 3 }).then(() => true, () => false));
    if (put) break;
    if (attempt > 100) throw new Error('the nodes on server B do not answer through server A');
    await sleep(200);
  }
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stopAll();
  await natsA?.stop();
  await natsB?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

describe('the client when its NATS server dies', () => {
  it('sends the requests in flight on the dropped connection again at once; none waits for its deadline, none fails', { timeout: 60_000 }, async () => {
    expect(nc!.getServer()).toBe(natsA!.url.replace('nats://', ''));
    const acked = new Map<string, string>();
    const failed: string[] = [];
    const latencies: number[] = [];
    let stopped = false;
    let next = 0;
    const worker = async () => {
      while (!stopped) {
        const i = next++;
        const key = `drop:${i % 200}`;
        const t0 = performance.now();
        try {
          if (i < 200) {
            const value = `${key}@${i}`;
            await client.put(key, text.encode(value));
            acked.set(key, value);
          } else {
            await client.get(key);
          }
        } catch (err) {
          if (!(err instanceof RingkvError)) throw err;
          failed.push(`${err.code}: ${err.message}`);
        }
        latencies.push(performance.now() - t0);
      }
    };
    const workers = Promise.all(Array.from({ length: 8 }, worker));
    await sleep(1_000);
    const lostBefore = client.stats.lostRequests;
    await natsA!.stop(); // SIGKILL: the client's connection drops with requests in flight
    await sleep(3_000);
    stopped = true;
    await workers;

    const longest = Math.max(...latencies);
    process.stderr.write(`connection drop: ${latencies.length} ops, ${failed.length} failed, longest ${longest.toFixed(0)} ms, re-sent ${client.stats.lostRequests - lostBefore}, now on ${nc!.getServer()}\n`);
    expect(failed).toEqual([]);
    expect(client.stats.lostRequests - lostBefore).toBeGreaterThan(0);
    // Re-sent at once and answered after the reconnect: far from the 5 s deadline.
    expect(longest).toBeLessThan(requestTimeoutMs / 2);
    expect(nc!.getServer()).toBe(natsB!.url.replace('nats://', ''));
    for (const [k, v] of acked) expect((await client.get(k)).values.map((x) => untext.decode(x)), k).toContain(v);
  });
});
