/**
 * Issue 27, item 5: a get whose client stalls past its deadline is TIMEOUT, never NO_CLUSTER "the
 * connection to NATS is closed". Three real `ringkv node` processes on a nats-server of the test's
 * own; the client's own event loop is blocked for 1.2 s (a synchronous busy wait, as a long GC pause
 * or a CPU-bound callback would) right after a get has sent its replica reads.
 *
 * Why it went wrong: after the stall the replica reads' give-up timer fires first, the get moves on
 * to a coordinated get, and that finds its deadline already gone, so it could send nothing; "nothing
 * sent, nothing answered" was reported as a closed connection. The connection was open all along
 * and the reads had gone out: the outcome is the deadline's.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { type Cluster, printNodeOutputOnFailure, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'stall';
const stallMs = 1_200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Blocks this process's event loop: no timer, socket read or callback runs meanwhile. */
function stallEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: the stall is the point
  }
}

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let dataRoot: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-stall-');
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 1_000 });
  for (let attempt = 0; ; attempt++) {
    const outcome = await client.putString('probe', 'p', { w: 3 }).then(() => 'ok', (e: Error) => e.message);
    if (outcome === 'ok') break;
    if (attempt > 150) throw new Error(`the cluster does not serve: ${outcome}`);
    await sleep(200);
  }
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

printNodeOutputOnFailure(() => cluster);

describe('a client whose event loop stalls past a request deadline', () => {
  it('reports TIMEOUT for a get (and a put), with the connection open, and serves the next requests', async () => {
    await client.putString('stalled', 'v1');
    expect(client.ringView()).toBeDefined();
    const codes: string[] = [];
    for (const timeoutMs of [200, 300, 500]) {
      for (const op of ['get', 'put'] as const) {
        const pending = (op === 'get' ? client.get('stalled', { timeoutMs }) : client.putString('stalled', 'v2', { timeoutMs })).then(
          () => 'ok',
          (err: unknown) => (err instanceof RingkvError ? `${err.code}: ${err.message}` : String(err)),
        );
        // After the request has left (it is published at the end of this run of JavaScript), but
        // before any answer can be read: the answers wait in the socket until the stall ends.
        await new Promise<void>((resolve) =>
          setImmediate(() => {
            stallEventLoop(stallMs);
            resolve();
          }),
        );
        const outcome = await pending;
        codes.push(`${op} ${timeoutMs}: ${outcome}`);
        // An answer that beat the stall is fine; anything else must be the deadline's outcome.
        if (outcome !== 'ok') expect(outcome, `${op} with a ${timeoutMs} ms deadline`).toMatch(/^TIMEOUT: /);
      }
    }
    // At least the gets (their replica reads give up before the deadline) met the stall.
    expect(codes.filter((c) => c.startsWith('get') && c.includes('TIMEOUT')).length, codes.join('\n')).toBeGreaterThan(0);
    // The connection was open all along: the next requests succeed at once.
    expect((await client.getString('stalled')).values.length).toBeGreaterThan(0);
  }, 60_000);
});
