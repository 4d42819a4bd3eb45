/**
 * Issue 15 on real processes: a hostile client, through the public API alone, sends the two
 * contexts that once broke a key for good. A counter near 2^53 for the coordinating node's own
 * clock id, and a context naming tens of thousands of made-up clock ids. Both are refused with
 * BAD_REQUEST; a well-formed context that claims more than the cluster issued (counters above the
 * stored ones, ids it never made) is cut to what the key's replicas hold, so it supersedes no more
 * than it could have seen and is never stored. Afterwards the key keeps working (puts without a
 * context, read-modify-write, every replica agreeing), its history stays small, and node memory
 * stays flat.
 */
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../src/client/client.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { useAdminCluster } from '../support/admin-cluster.js';

const clusterName = 'hostile';
const env = useAdminCluster({ nodes: 3, cluster: clusterName, args: ['--request-timeout-ms', '3000'] });

type Entry = [string, number];

async function refusedCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return err instanceof RingkvError ? err.code : String(err);
  }
}

/** The largest RSS over the nodes, in MB. */
async function rssMb(): Promise<number> {
  let max = 0;
  for (const id of ['n1', 'n2', 'n3']) {
    const s = await env.client.status({ via: id });
    max = Math.max(max, (s.memory?.rssBytes ?? 0) / 1e6);
  }
  return max;
}

/** The key's history as each node answers it, coordinating a read of all three replicas. */
async function historiesEverywhere(key: string): Promise<Entry[][]> {
  const out: Entry[][] = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const r = await env.client.get(key, { r: 3, via: id });
    out.push(decode(r.context) as Entry[]);
  }
  return out;
}

describe('hostile contexts through the public API', () => {
  it('refuses a counter near 2^53 and a history of made-up clock ids with BAD_REQUEST; the key keeps working', async () => {
    const key = 'cart:hostile';
    await env.client.putString(key, 'v1');
    const read = await env.client.get(key, { r: 3 });
    const entries = decode(read.context) as Entry[];
    expect(entries.length).toBeGreaterThan(0);
    const rssBefore = await rssMb();

    // Attack 1: the coordinator's own clock id at a counter that is nearly not a safe integer.
    const huge = encode(entries.map(([id]) => [id, 2 ** 53 - 2]));
    expect(await refusedCode(env.client.putString(key, 'evil', { context: huge }))).toBe('BAD_REQUEST');
    // Attack 2: tens of thousands of made-up clock ids (about 700 kB, under NATS's 1 MB payload).
    const many = encode(Array.from({ length: 40_000 }, (_, i) => [`x${i.toString(36)}/e`, 1]));
    expect(await refusedCode(env.client.putString(key, 'evil', { context: many }))).toBe('BAD_REQUEST');
    // Just over the bound is refused too, and the bound itself is the cluster's documented limit.
    const over = encode(Array.from({ length: defaultLimits.historyEntriesMax + 1 }, (_, i) => [`y${i}/e`, 1]));
    expect(await refusedCode(env.client.putString(key, 'evil', { context: over }))).toBe('BAD_REQUEST');

    // The key still works: a put without a context adds a sibling, read-modify-write merges.
    await env.client.putString(key, 'v2');
    const both = await env.client.getString(key, { r: 3 });
    expect(both.values.sort()).toEqual(['v1', 'v2']);
    await env.client.putString(key, 'merged', { context: both.context });
    const after = await env.client.getString(key, { r: 3 });
    expect(after.values).toEqual(['merged']);
    const rssAfter = await rssMb();
    // Flat: the refused requests left nothing behind (the attack once took a node from 92 to 600 MB).
    expect(rssAfter - rssBefore).toBeLessThan(60);
  }, 60_000);

  it('cuts a well-formed context that claims more than was issued: never stored, supersedes only what it saw', async () => {
    const key = 'cart:overclaim';
    await env.client.putString(key, 'seen');
    const read = await env.client.get(key, { r: 3 });
    const entries = decode(read.context) as Entry[];
    // Counters far above the stored ones (but under counterMax), and ids no node ever made.
    const claim: Entry[] = [...entries.map(([id]) => [id, 2 ** 40] as Entry), ...Array.from({ length: 100 }, (_, i) => [`made-up-${i}/e`, 7] as Entry)];
    // A version vector lists its clock ids in order (one ringkv did not make that way is refused).
    claim.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    await env.client.putString(key, 'overclaimed', { context: encode(claim) });
    const r = await env.client.getString(key, { r: 3 });
    // It superseded what it could have seen ("seen"), nothing more.
    expect(r.values).toEqual(['overclaimed']);
    const history = decode(r.context) as Entry[];
    expect(history.length).toBeLessThanOrEqual(entries.length + 1);
    expect(history.every(([id, n]) => !id.startsWith('made-up-') && n < 1000)).toBe(true);
    // A later write from a client that did not see "overclaimed" is a sibling, not lost.
    await env.client.putString(key, 'concurrent', { context: read.context });
    const later = await env.client.getString(key, { r: 3 });
    expect(later.values.sort()).toEqual(['concurrent', 'overclaimed']);
    // Through every node, all three replicas together still hold a small history, the same one.
    const all = await historiesEverywhere(key);
    for (const h of all) expect(h).toEqual(all[0]);
    expect(all[0]!.length).toBeLessThanOrEqual(entries.length + 2);
  }, 60_000);
});
