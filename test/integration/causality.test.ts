/**
 * Causality on real processes (issue "Causality"): siblings from concurrent writes through different
 * nodes, kv679 (a replica that lost its data takes a new epoch, so nothing acknowledged is lost),
 * deletes that stay deleted, a write concurrent with a delete, and read repair.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useAdminCluster } from '../support/admin-cluster.js';

const text = new TextEncoder();
const untext = new TextDecoder();
const strings = (values: Uint8Array[]) => values.map((v) => untext.decode(v)).sort();

const env = useAdminCluster({ nodes: 3, cluster: 'causality' });

describe('causality on a real cluster', () => {
  it('keeps concurrent writes through different nodes as siblings, and a put with the context supersedes them', async () => {
    await env.client.put('sib', text.encode('from-n1'), { via: 'n1', w: 3 });
    await env.client.put('sib', text.encode('from-n2'), { via: 'n2', w: 3 });
    const read = await env.client.get('sib', { r: 3 });
    expect(strings(read.values)).toEqual(['from-n1', 'from-n2']);

    await env.client.put('sib', text.encode('merged'), { context: read.context, via: 'n3', w: 3 });
    expect(strings((await env.client.get('sib', { r: 3 })).values)).toEqual(['merged']);
  });

  it('kv679: a node whose data was wiped takes a new epoch and loses no acknowledged write', async () => {
    await env.client.put('kv679', text.encode('before-wipe'), { via: 'n2', w: 3 });
    const epochBefore = env.cluster.servingLines('n2').at(-1)?.epoch;

    await env.cluster.kill('n2');
    rmSync(env.cluster.dataDir('n2'), { recursive: true, force: true });
    await env.cluster.restart('n2');
    const serving = env.cluster.servingLines('n2').at(-1)!;
    expect(serving.newEpoch).toBe(true);
    expect(serving.epoch).not.toBe(epochBefore);

    // The wiped node coordinates a write without having seen the first one: with its old epoch its
    // new dot would equal the old one and one of the two values would vanish.
    await env.client.put('kv679', text.encode('after-wipe'), { via: 'n2', w: 3 });
    const read = await env.client.get('kv679', { r: 3 });
    expect(strings(read.values)).toEqual(['after-wipe', 'before-wipe']);
  });

  it('deleted keys stay deleted across restarts; a write concurrent with a delete survives as a sibling', async () => {
    await env.client.put('gone', text.encode('v'), { w: 3 });
    await env.client.delete('gone', { w: 3 });
    expect((await env.client.get('gone', { r: 3 })).found).toBe(false);

    await env.client.put('race', text.encode('x'), { w: 3 });
    const seen = await env.client.get('race', { r: 3 });
    await env.client.delete('race', { context: seen.context, via: 'n1', w: 3 });
    await env.client.put('race', text.encode('y'), { context: seen.context, via: 'n2', w: 3 });

    for (const id of env.cluster.ids) await env.cluster.restart(id);
    expect((await env.client.get('gone', { r: 3 })).found).toBe(false);
    const race = await env.client.get('race', { r: 3 });
    expect(race.found).toBe(true);
    expect(strings(race.values)).toEqual(['y']);
  });

  it('read repair: a replica that missed a write has it after one quorum read', async () => {
    await env.cluster.kill('n3');
    await env.client.put('repair', text.encode('missed-by-n3'), { w: 2 });
    await env.cluster.restart('n3');

    expect(strings((await env.client.get('repair', { via: 'n1' })).values)).toEqual(['missed-by-n3']);
    // Read repair is sent after the answer: give it a moment, then ask n3 alone.
    await new Promise((r) => setTimeout(r, 300));
    await env.cluster.kill('n1');
    await env.cluster.kill('n2');
    const alone = await env.client.get('repair', { r: 1, via: 'n3' });
    expect(strings(alone.values)).toEqual(['missed-by-n3']);
    await env.cluster.restart('n1');
    await env.cluster.restart('n2');
  });
});
