/**
 * Causality on real processes (issue "Causality"): siblings from concurrent writes through different
 * nodes, kv679 (a replica that lost its data takes a new epoch, so nothing acknowledged is lost),
 * deletes that stay deleted, a write concurrent with a delete, and read repair.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';

const text = new TextEncoder();
const untext = new TextDecoder();
const strings = (values: Uint8Array[]) => values.map((v) => untext.decode(v)).sort();

let nats: NatsServerHandle;
let cluster: Cluster;
let client: RingkvClient;

beforeAll(async () => {
  nats = await startNatsServer();
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot: tempDir('ringkv-causality-'), cluster: 'causality' });
  client = await RingkvClient.connect({ servers: nats.url, cluster: 'causality', timeoutMs: 3000 });
});

afterAll(async () => {
  await client?.close();
  await cluster?.stopAll();
  await nats?.stop();
});

describe('causality on a real cluster', () => {
  it('keeps concurrent writes through different nodes as siblings, and a put with the context supersedes them', async () => {
    await client.put('sib', text.encode('from-n1'), { via: 'n1', w: 3 });
    await client.put('sib', text.encode('from-n2'), { via: 'n2', w: 3 });
    const read = await client.get('sib', { r: 3 });
    expect(strings(read.values)).toEqual(['from-n1', 'from-n2']);

    await client.put('sib', text.encode('merged'), { context: read.context, via: 'n3', w: 3 });
    expect(strings((await client.get('sib', { r: 3 })).values)).toEqual(['merged']);
  });

  it('kv679: a node whose data was wiped takes a new epoch and loses no acknowledged write', async () => {
    await client.put('kv679', text.encode('before-wipe'), { via: 'n2', w: 3 });
    const epochBefore = cluster.servingLines('n2').at(-1)?.epoch;

    await cluster.kill('n2');
    rmSync(cluster.dataDir('n2'), { recursive: true, force: true });
    await cluster.restart('n2');
    const serving = cluster.servingLines('n2').at(-1)!;
    expect(serving.newEpoch).toBe(true);
    expect(serving.epoch).not.toBe(epochBefore);

    // The wiped node coordinates a write without having seen the first one: with its old epoch its
    // new dot would equal the old one and one of the two values would vanish.
    await client.put('kv679', text.encode('after-wipe'), { via: 'n2', w: 3 });
    const read = await client.get('kv679', { r: 3 });
    expect(strings(read.values)).toEqual(['after-wipe', 'before-wipe']);
  });

  it('deleted keys stay deleted across restarts; a write concurrent with a delete survives as a sibling', async () => {
    await client.put('gone', text.encode('v'), { w: 3 });
    await client.delete('gone', { w: 3 });
    expect((await client.get('gone', { r: 3 })).found).toBe(false);

    await client.put('race', text.encode('x'), { w: 3 });
    const seen = await client.get('race', { r: 3 });
    await client.delete('race', { context: seen.context, via: 'n1', w: 3 });
    await client.put('race', text.encode('y'), { context: seen.context, via: 'n2', w: 3 });

    for (const id of cluster.ids) await cluster.restart(id);
    expect((await client.get('gone', { r: 3 })).found).toBe(false);
    const race = await client.get('race', { r: 3 });
    expect(race.found).toBe(true);
    expect(strings(race.values)).toEqual(['y']);
  });

  it('read repair: a replica that missed a write has it after one quorum read', async () => {
    await cluster.kill('n3');
    await client.put('repair', text.encode('missed-by-n3'), { w: 2 });
    await cluster.restart('n3');

    expect(strings((await client.get('repair', { via: 'n1' })).values)).toEqual(['missed-by-n3']);
    // Read repair is sent after the answer: give it a moment, then ask n3 alone.
    await new Promise((r) => setTimeout(r, 300));
    await cluster.kill('n1');
    await cluster.kill('n2');
    const alone = await client.get('repair', { r: 1, via: 'n3' });
    expect(strings(alone.values)).toEqual(['missed-by-n3']);
    await cluster.restart('n1');
    await cluster.restart('n2');
  });
});
