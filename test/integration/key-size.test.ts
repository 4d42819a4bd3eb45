/**
 * Bounded keys (issue 28, items 3 and 6), on real `ringkv node` processes, a real nats-server and
 * LMDB. The nats-server takes messages of at most 256 KiB, so each node bounds a key's stored size
 * to half that (it reads max_payload from the server's INFO at start). Siblings are added up to the
 * bound to the byte (the size computed from a replica's own state, api.local.get, with the nodes'
 * own function): a put landing exactly on it is taken, one byte more is TOO_LARGE and nothing is
 * stored on any replica. Before the bound, a key past max_payload could be neither replicated nor
 * read. Restarted with a smaller bound, the key (now beyond it) stays readable, a blind put that
 * grows it is refused, and a put with its context that merges the siblings is taken.
 */
import { rmSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { storedBytesBound } from '../../src/core/stored-size.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { nodeOpSubject } from '../../src/protocol/subjects.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const clusterName = 'keysize';
const te = new TextEncoder();
const maxPayload = 256 * 1024;
const bound = maxPayload / 2;

let nats: NatsServerHandle;
let cluster: Cluster;
let client: RingkvClient;
let nc: NatsConnection;
let dataRoot: string;

beforeAll(async () => {
  nats = await startNatsServer({ config: `max_payload: ${maxPayload}` });
  dataRoot = tempDir('ringkv-keysize-');
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName, args: ['--partitions', '16', '--gossip-round-ms', '250'] });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 5000 });
  nc = await connect({ servers: nats.url });
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

/** One node's own stored state of the key. */
async function stateAt(node: string, key: string): Promise<DvvSet> {
  const req = encodeEnvelope({ v: protocolVersion, kind: 'api.local.get', from: 'test', to: node, reqId: 'x', body: { key: te.encode(key) } });
  const env = decodeEnvelope((await nc.request(nodeOpSubject(clusterName, node, 'api', 'local.get'), req, { timeout: 5000 })).data);
  if (typeof env === 'string' || env.kind !== 'api.local.get.ok') throw new Error(`unexpected answer ${JSON.stringify(env)}`);
  return (env.body as { state: DvvSet | null }).state ?? [];
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof RingkvError ? e.code : String(e)));
/** Through one coordinator and to every replica, so that no put is hedged and every replica holds each. */
const once = { via: 'n1', w: 3 } as const;

describe('bounded keys', () => {
  it('bounds a key at half the max_payload of the NATS server, to the byte: on it is taken, one byte past is TOO_LARGE and stores nothing', async () => {
    for (const id of cluster.ids) expect(cluster.logs(id)).toContain(`"keyStoredBytesMax":${bound},"natsMaxPayload":${maxPayload}`);
    const key = 'edge';
    for (let i = 0; i < 3; i++) await client.put(key, new Uint8Array(40 * 1024).fill(i), once);
    const before = await stateAt('n1', key);
    // The same clock id makes every sibling here: one more costs its bytes and a 5-byte header.
    const room = bound - storedBytesBound(before) - 5;
    expect(room).toBeGreaterThan(0);
    expect(await codeOf(client.put(key, new Uint8Array(room + 1), once))).toBe('TOO_LARGE');
    for (const id of cluster.ids) expect(storedBytesBound(await stateAt(id, key)), id).toBe(storedBytesBound(before));
    expect(await codeOf(client.put(key, new Uint8Array(room).fill(7), once))).toBe('ok');
    for (const id of cluster.ids) expect(storedBytesBound(await stateAt(id, key)), id).toBe(bound);
    expect(await codeOf(client.put(key, new Uint8Array(1), once))).toBe('TOO_LARGE');
    const read = await client.get(key, { r: 3 });
    expect(read.values.map((v) => v.length).sort((a, b) => a - b)).toEqual([room, 40 * 1024, 40 * 1024, 40 * 1024].sort((a, b) => a - b));
    for (const id of cluster.ids) expect(storedBytesBound(await stateAt(id, key)), id).toBe(bound);
  }, 60_000);

  it('writes the many-siblings warning once per 10 s, however many puts add siblings (a client cannot fill the log)', async () => {
    const key = 'crowd';
    const warnings = () => cluster.logs('n1').split('key has many siblings').length - 1;
    const before = warnings();
    // From 25 siblings on, every put here used to write a warning: 55 lines.
    for (let i = 0; i < 80; i++) await client.put(key, te.encode(`blind ${i}`), { via: 'n1', w: 1 });
    expect((await client.get(key, { r: 3 })).values).toHaveLength(80);
    expect(warnings() - before).toBe(1);
  }, 60_000);

  it('keeps a key already beyond a lowered bound readable; a put that grows it is refused, one that merges it is taken', async () => {
    const key = 'edge';
    for (const id of cluster.ids) await cluster.restart(id, ['--key-stored-bytes-max', String(64 * 1024)]);
    for (const id of cluster.ids) expect(cluster.logs(id)).toContain(`"keyStoredBytesMax":${64 * 1024},"natsMaxPayload":${maxPayload}`);
    const read = await client.get(key, { r: 3 });
    expect(read.values).toHaveLength(4);
    expect(await codeOf(client.put(key, te.encode('blind'), once))).toBe('TOO_LARGE');
    await client.put(key, te.encode('merged'), { ...once, context: read.context });
    const after = await client.getString(key, { r: 3 });
    expect(after.values).toEqual(['merged']);
    for (const id of cluster.ids) expect(storedBytesBound(await stateAt(id, key)), id).toBeLessThan(200);
  }, 120_000);
});
