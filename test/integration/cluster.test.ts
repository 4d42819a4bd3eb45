/**
 * A real cluster: one nats-server of its own (a free loopback port, never 4222), three `ringkv node`
 * processes each with its own LMDB environment, and the client library and CLI talking to them.
 *
 * Covers the integration tests of issue 2: put/get/delete round trips; R=W=2 reads and writes with
 * one of three nodes killed by SIGKILL; no acknowledged key lost across a kill -9 and restart; bad
 * inputs answered with their documented code while every node keeps serving; malformed bytes on
 * the API and on a node's internal subject; the CLI's output and exit codes.
 *
 * The tests share one cluster and run in order; the last one leaves two nodes down.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { encode } from '../../src/protocol/codec.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import { type Cluster, repoRoot, ringkvBin, startCluster, printNodeOutputOnFailure } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'itest';
const valueBytesMax = 1000;
const timeout = { timeout: 60_000 };

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient;
let nc: NatsConnection;
let dataRoot: string;

const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-cluster-');
  cluster = await startCluster({
    nodes: 3,
    natsUrl: nats.url,
    dataRoot,
    cluster: clusterName,
    args: ['--value-bytes-max', String(valueBytesMax), '--request-timeout-ms', '3000'],
  });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 3000 });
  nc = await connect({ servers: nats.url, name: 'cluster-test-raw' });
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

printNodeOutputOnFailure(() => cluster);

/** The code a rejected promise carries (RingkvError.code), or a failure when it resolved. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RingkvError);
    return (err as RingkvError).code;
  }
  throw new Error('expected the request to fail, but it succeeded');
}

async function expectAllServing(): Promise<void> {
  for (const id of cluster!.ids) expect(cluster!.isRunning(id), `${id} is running`).toBe(true);
  // Each node answers a request addressed to it directly (its own api subject, not the queue group).
  for (const id of cluster!.ids) {
    const reply = await rawRequest(`ringkv.${clusterName}.node.${id}.api.get`, apiEnvelope('api.get', { key: text.encode('probe') }));
    expect(reply.kind, `${id} answers`).toBe('api.get.ok');
  }
}

/** Every node sees every member up (the failure detector has taken back a restarted node). */
async function expectAllUp(): Promise<void> {
  for (const id of cluster!.ids) {
    await expect
      .poll(async () => (await client.status({ via: id })).members.filter((m) => m.state !== 'up').map((m) => m.nodeId), { timeout: 15_000, interval: 200 })
      .toEqual([]);
  }
}

function apiEnvelope(kind: string, body: unknown): Uint8Array {
  return encodeEnvelope({ v: 1, kind, from: 'raw-test', to: '', reqId: String(Math.random()), body });
}

async function rawRequest(subject: string, bytes: Uint8Array): Promise<Envelope> {
  const msg = await nc.request(subject, bytes, { timeout: 5000 });
  const env = decodeEnvelope(msg.data);
  if (typeof env === 'string') throw new Error(`the reply is not an envelope: ${env}`);
  return env;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ringkvBin, '--server', nats!.url, '--cluster', clusterName, ...args],
      { cwd: repoRoot, timeout: 20_000, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs fn over items with at most `limit` in flight. */
async function inBatches<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(fn));
}

/** After a SIGKILL, give nats-server a moment to drop the dead node's queue subscription. */
async function settleAfterKill(): Promise<void> {
  await sleep(300);
}

describe('a 3-node ringkv cluster on real NATS and LMDB', () => {
  it('round-trips put, get and delete through the client', timeout, async () => {
    const missing = await client.get('never-written');
    expect(missing.found).toBe(false);
    expect(missing.values).toEqual([]);

    const { context } = await client.putString('greeting', 'hello');
    expect(context.length).toBeGreaterThan(0);
    const read = await client.getString('greeting');
    expect(read).toMatchObject({ found: true, values: ['hello'] });

    // A put with the read's context supersedes it: one value, not two siblings.
    await client.putString('greeting', 'hello again', { context: read.context });
    expect((await client.getString('greeting')).values).toEqual(['hello again']);

    // Two writes without a context are concurrent: both come back as siblings.
    await client.putString('concurrent', 'a');
    await client.putString('concurrent', 'b');
    expect((await client.getString('concurrent')).values.sort()).toEqual(['a', 'b']);

    await client.putJson('cart:json', { items: ['x', 'y'] });
    expect((await client.getJson('cart:json')).values).toEqual([{ items: ['x', 'y'] }]);

    // Binary keys and values, and a value at exactly the limit.
    const binKey = new Uint8Array([0, 255, 1, 254]);
    const big = randomBytes(valueBytesMax);
    await client.put(binKey, big, { w: 3 });
    const bin = await client.get(binKey, { r: 3 });
    expect(bin.values.map((v) => Buffer.from(v).toString('hex'))).toEqual([big.toString('hex')]);

    // An empty value is a value, not a delete.
    await client.put('empty-value', new Uint8Array(0), { w: 3 });
    const empty = await client.get('empty-value', { r: 3 });
    expect(empty.found).toBe(true);
    expect(empty.values.map((x) => x.length)).toEqual([0]);

    await client.delete('greeting');
    const gone = await client.get('greeting', { r: 3 });
    expect(gone.found).toBe(false);
    expect(gone.values).toEqual([]);

    // A key can be written again after its delete.
    await client.putString('greeting', 'back', { context: gone.context });
    expect((await client.getString('greeting')).values).toEqual(['back']);

    // With n=2 one node of three is outside each key's preference list: requests that land there
    // are forwarded once to a node that holds the key.
    const nTwo = Array.from({ length: 24 }, (_, i) => `n-two:${i}`);
    await inBatches(nTwo, 8, async (k) => void (await client.putString(k, `two ${k}`, { n: 2, w: 2 })));
    for (const k of nTwo) expect((await client.getString(k, { n: 2, r: 2 })).values, k).toEqual([`two ${k}`]);
  });

  it('refuses a put that would leave more than 100 siblings with TOO_MANY_SIBLINGS', timeout, async () => {
    // Through one coordinator (via), so no put is hedged: a hedged put can leave an extra sibling
    // with the same value (README, Client), and this test counts siblings exactly.
    const once = { w: 3, via: 'n1' };
    for (let i = 0; i < 100; i++) await client.putString('crowded', `sibling ${i}`, once);
    const read = await client.getString('crowded', { r: 3 });
    expect(read.values).toHaveLength(100);
    expect(await codeOf(client.putString('crowded', 'one too many', once))).toBe('TOO_MANY_SIBLINGS');
    // Merging with the context resolves them into one value.
    await client.putString('crowded', 'merged', { ...once, context: read.context });
    expect((await client.getString('crowded', { r: 3 })).values).toEqual(['merged']);
  });

  it('answers bad inputs with their documented codes and keeps every node serving', timeout, async () => {
    const v = text.encode('v');
    expect(await codeOf(client.put('', v))).toBe('BAD_REQUEST');
    expect(await codeOf(client.get(''))).toBe('BAD_REQUEST');
    expect(await codeOf(client.put('k'.repeat(1025), v))).toBe('TOO_LARGE');
    expect(await codeOf(client.get('k'.repeat(1025)))).toBe('TOO_LARGE');
    await client.put('k'.repeat(1024), v); // the limit itself is fine
    expect(await codeOf(client.put('big', new Uint8Array(valueBytesMax + 1)))).toBe('TOO_LARGE');
    expect(await codeOf(client.get('k', { r: 4 }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.put('k', v, { w: 4 }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.put('k', v, { n: 2, w: 3 }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.get('k', { r: 0 }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.put('é'.repeat(513), v))).toBe('TOO_LARGE'); // 1026 bytes of UTF-8
    expect(await codeOf(client.get('k', { timeoutMs: 60_001 }))).toBe('BAD_REQUEST');
    // n=4 passes validation (n ≤ 7) but the ring has three members: UNAVAILABLE {needed, alive}.
    const unavailable = await client.put('k', v, { n: 4, w: 4 }).catch((err: unknown) => err);
    expect(unavailable).toBeInstanceOf(RingkvError);
    expect(unavailable).toMatchObject({ code: 'UNAVAILABLE', needed: 4, alive: 3 });
    expect(await codeOf(client.put('k', v, { context: text.encode('garbage context!') }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.put('k', v, { context: new Uint8Array([0xc1, 0x00, 0x13]) }))).toBe('BAD_REQUEST');
    expect(await codeOf(client.delete('k', { context: randomBytes(24) }))).toBe('BAD_REQUEST');
    // A well-formed MessagePack that is not a version vector is refused too.
    expect(await codeOf(client.put('k', v, { context: encode({ not: 'a context' }) }))).toBe('BAD_REQUEST');

    await expectAllServing();
    await client.putString('after-bad-inputs', 'fine');
    expect((await client.getString('after-bad-inputs')).values).toEqual(['fine']);
  });

  it('answers malformed API messages with an error envelope and drops garbage on a node subject', timeout, async () => {
    const apiPut = `ringkv.${clusterName}.api.put`;
    const malformed: [string, Uint8Array][] = [
      ['random bytes', randomBytes(64)],
      ['a byte MessagePack never uses', new Uint8Array([0xc1])],
      ['an empty message', new Uint8Array(0)],
      ['a MessagePack array', encode([1, 2, 3])],
      ['a MessagePack map that is no envelope', encode({ hello: 'world' })],
      ['an envelope of another protocol version', encodeEnvelope({ v: 99, kind: 'api.put', from: 'x', to: '', reqId: '1', body: {} })],
      ['an envelope of an unknown kind', apiEnvelope('api.explode', { key: text.encode('k') })],
      ['an envelope whose body is not a map', apiEnvelope('api.put', 'not a map')],
      ['a put without a value', apiEnvelope('api.put', { key: text.encode('k') })],
      ['a put whose key is a string', apiEnvelope('api.put', { key: 'k', value: text.encode('v') })],
    ];
    for (const [what, bytes] of malformed) {
      const reply = await rawRequest(apiPut, bytes);
      expect(reply.kind, what).toBe('error');
      expect((reply.body as { code: string }).code, what).toBe('BAD_REQUEST');
      expect(typeof (reply.body as { message: string }).message, what).toBe('string');
    }

    // Internal subjects never answer garbage: it is dropped (so a request just times out).
    const replicaSubject = `ringkv.${clusterName}.node.n1.replica`;
    const garbage: Uint8Array[] = [
      randomBytes(64),
      new Uint8Array([0xc1]),
      encode({ hello: 'world' }),
      encodeEnvelope({ v: 1, kind: 'replica.put', from: 'n2', to: 'n1', reqId: 'coordinator-0', body: { p: 1 << 30, key: 'k', state: 'x' } }),
      encodeEnvelope({ v: 1, kind: 'replica.put', from: 'n2', to: 'n1', reqId: 'coordinator-0', body: { p: 0, key: text.encode('k'), state: [['a', 0, [text.encode('x')]]] } }),
      encodeEnvelope({ v: 1, kind: 'replica.coordinate', from: 'n2', to: 'n1', reqId: 'x', body: { p: 0, key: text.encode('k'), context: 'bad', value: 1 } }),
      encodeEnvelope({ v: 1, kind: 'replica.get.ok', from: 'n2', to: 'n1', reqId: 'coordinator-0', body: { state: 'nonsense' } }),
      encodeEnvelope({ v: 1, kind: 'replica.explode', from: 'n2', to: 'n1', reqId: 'x', body: {} }),
    ];
    for (const bytes of garbage) nc.publish(replicaSubject, bytes);
    for (const role of ['handoff', 'aae', 'gossip', 'inspect']) nc.publish(`ringkv.${clusterName}.node.n1.${role}`, randomBytes(32));
    await expect(nc.request(replicaSubject, randomBytes(32), { timeout: 500 })).rejects.toThrow();
    await nc.flush();

    await expectAllServing();
    await client.putString('after-garbage', 'still fine', { w: 3 });
    expect((await client.getString('after-garbage', { r: 3 })).values).toEqual(['still fine']);
  });

  it('the CLI puts and gets a value and exits with the documented codes', timeout, async () => {
    const put = await cli(['put', 'cart:1', '{"items":["a"]}']);
    expect(put.code, put.stderr).toBe(0);

    const get = await cli(['get', 'cart:1']);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain('{"items":["a"]}');

    const json = await cli(['--json', 'get', 'cart:1']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).toContain('cart:1');

    const missing = await cli(['get', 'missing']);
    expect(missing.code).toBe(4);

    const empty = await cli(['put', '', 'x']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('BAD_REQUEST');
    const tooLarge = await cli(['put', 'big', 'x'.repeat(valueBytesMax + 1)]);
    expect(tooLarge.code).toBe(2);
    expect(tooLarge.stderr).toContain('TOO_LARGE');

    // The client library reads what the CLI wrote.
    expect((await client.getJson('cart:1')).values).toEqual([{ items: ['a'] }]);

    await client.putString('cli:del', 'x');
    const del = await cli(['del', 'cli:del']);
    expect(del.code, del.stderr).toBe(0);
    expect((await cli(['get', 'cli:del'])).code).toBe(4);
  });

  it('SIGTERM stops a node cleanly, and it restarts with the same epoch', timeout, async () => {
    const [first] = cluster!.servingLines('n3');
    expect(first).toMatchObject({ node: 'n3', newEpoch: true });
    await cluster!.kill('n3', 'SIGTERM');
    expect(cluster!.lastExit('n3')).toEqual({ code: 0, signal: null });
    expect(cluster!.logs('n3')).toContain('"msg":"stopped"');
    await cluster!.restart('n3');
    const again = cluster!.servingLines('n3').at(-1);
    expect(again).toMatchObject({ node: 'n3', newEpoch: false, epoch: first!.epoch });
    expect((await client.getString('after-garbage', { r: 3 })).values).toEqual(['still fine']);
  });

  it('serves R=W=2 reads and writes with one of three nodes killed by SIGKILL', timeout, async () => {
    const before = Array.from({ length: 30 }, (_, i) => `before-kill:${i}`);
    await inBatches(before, 10, async (k) => void (await client.putString(k, `value of ${k}`)));

    await cluster!.kill('n1', 'SIGKILL');
    await settleAfterKill();
    expect(cluster!.isRunning('n1')).toBe(false);

    for (const k of before) {
      const read = await client.getString(k, { r: 2 });
      expect(read.values, k).toEqual([`value of ${k}`]);
    }

    const during = Array.from({ length: 30 }, (_, i) => `during-kill:${i}`);
    await inBatches(during, 10, async (k) => void (await client.putString(k, `value of ${k}`, { w: 2 })));
    for (const k of during) expect((await client.getString(k, { r: 2 })).values, k).toEqual([`value of ${k}`]);

    // Overwrite and delete with a node down, too.
    const read = await client.getString(before[0]!, { r: 2 });
    await client.putString(before[0]!, 'updated', { context: read.context, w: 2 });
    expect((await client.getString(before[0]!, { r: 2 })).values).toEqual(['updated']);
    await client.delete(before[1]!, { r: 2, w: 2 });
    expect((await client.get(before[1]!, { r: 2 })).found).toBe(false);

    // Asking for more replicas than are up never hangs: TIMEOUT at the deadline until the failure
    // detector has judged n1 down, then UNAVAILABLE {needed, alive} at once.
    expect(['TIMEOUT', 'UNAVAILABLE']).toContain(await codeOf(client.putString('needs-three', 'x', { w: 3, timeoutMs: 500 })));
    await expect.poll(() => codeOf(client.putString('needs-three', 'x', { w: 3, timeoutMs: 500 })), { timeout: 15_000, interval: 500 }).toBe('UNAVAILABLE');
    await expect.poll(() => codeOf(client.get(before[2]!, { r: 3, timeoutMs: 500 })), { timeout: 15_000, interval: 500 }).toBe('UNAVAILABLE');

    await cluster!.restart('n1');
    await expectAllServing();
    await expectAllUp();

    // Reads of all three replicas see what n1 missed and repair it (checked from n1 alone below).
    for (const k of [...before, ...during]) await client.get(k, { r: 3 });
  });

  it('a node restarted after SIGKILL still has every key it acknowledged', timeout, async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `durable:${i}`);
    await inBatches(keys, 25, async (k) => void (await client.putString(k, `durable value ${k}`, { w: 3 })));

    const epoch = cluster!.servingLines('n1').at(-1)!.epoch;
    await cluster!.kill('n1', 'SIGKILL');
    expect(cluster!.lastExit('n1')).toEqual({ code: null, signal: 'SIGKILL' });
    await cluster!.restart('n1');
    // Its data survived, but a crash may have lost writes whose dots other nodes saw uncommitted:
    // it takes a new epoch so that it never makes one of those dots again.
    const after = cluster!.servingLines('n1').at(-1)!;
    expect(after.newEpoch).toBe(true);
    expect(after.epoch).not.toBe(epoch);
    await cluster!.kill('n2', 'SIGKILL');
    await cluster!.kill('n3', 'SIGKILL');
    await settleAfterKill();

    // Only n1 is left: every read is coordinated by n1 and answered from its own LMDB.
    const missing: string[] = [];
    await inBatches(keys, 25, async (k) => {
      const read = await client.get(k, { r: 1 });
      if (!read.found || read.values.length !== 1 || untext.decode(read.values[0]) !== `durable value ${k}`) missing.push(k);
    });
    expect(missing).toEqual([]);

    // What n1 missed while it was down reached it by read repair in the test before.
    for (let i = 0; i < 30; i++) {
      const k = `during-kill:${i}`;
      expect((await client.getString(k, { r: 1 })).values, k).toEqual([`value of ${k}`]);
    }
    expect((await client.getString('before-kill:0', { r: 1 })).values).toEqual(['updated']);
    expect((await client.get('before-kill:1', { r: 1 })).found).toBe(false);
  });
});
