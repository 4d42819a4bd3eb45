/**
 * Bit rot on real processes (issue 18, item 2): three `ringkv node` processes; keys written with
 * W=3; one node is stopped cleanly and the bytes of one object's value are flipped inside its
 * data.mdb (every copy of them LMDB left in the file), under the same dots. After its restart, the
 * node's scrub finds the record failing its checksum, drops it, counts it in
 * ringkv_objects_corrupt_total and refuses to serve it; anti-entropy fetches it from the other
 * replicas. Then that node's own copy (a local read asked of it alone, and an R=1 get with the two
 * other nodes stopped) reads back right, and so does every other key.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DvvSet } from '../../src/core/dvv.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { nodeOpSubject } from '../../src/protocol/subjects.js';
import { useAdminCluster } from '../support/admin-cluster.js';

const clusterName = 'rottest';
const keyCount = 300;
const text = new TextEncoder();
const untext = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keyOf = (i: number) => `rot:${i}`;
const marker = `ROT-ME-${Date.now().toString(36)}`;
const rottedKey = 137;
const valueOf = (i: number) => (i === rottedKey ? `the value of key ${i}: ${marker}` : `the value of key ${i}`);

const env = useAdminCluster({
  nodes: 3,
  cluster: clusterName,
  args: ['--aae-interval-ms', '1000', '--scrub-rate-bytes', String(1 << 20)],
  httpPorts: true,
  timeoutMs: 5000,
  outputChars: 20_000,
});
/** A raw connection, for local reads asked of one node alone. */
let nc: NatsConnection;
beforeAll(async () => {
  nc = await connect({ servers: env.nats.url });
});
afterAll(async () => {
  await nc?.close().catch(() => undefined);
});

/** Flips one byte of every occurrence of `needle` in a node's data.mdb; returns how many. */
function flipInDataFile(dir: string, needle: string): number {
  const file = path.join(dir, 'data.mdb');
  const bytes = readFileSync(file);
  const n = Buffer.from(needle);
  let count = 0;
  for (let at = bytes.indexOf(n); at >= 0; at = bytes.indexOf(n, at + 1)) {
    bytes[at + n.length - 1] ^= 0x01;
    count++;
  }
  writeFileSync(file, bytes);
  return count;
}

/** One node's own copy of a key (api.local.get asked of that node alone): its values, or the error it answered. */
async function localRead(node: string, key: string): Promise<{ values: string[] } | { error: string }> {
  const env = encodeEnvelope({ v: protocolVersion, kind: 'api.local.get', from: 'rot-test', to: node, reqId: String(Math.random()), body: { key: text.encode(key) } });
  const reply = decodeEnvelope((await nc.request(nodeOpSubject(clusterName, node, 'api', 'local.get'), env, { timeout: 3000 })).data);
  if (typeof reply === 'string') throw new Error(reply);
  if (reply.kind === 'error') return { error: `${(reply.body as { code: string }).code}: ${(reply.body as { message: string }).message}` };
  const state = (reply.body as { state: DvvSet | null }).state ?? [];
  // Distinct values, as the client gives them: a put that was hedged to a second coordinator under
  // load stores the same value under two dots.
  return { values: [...new Set(state.flatMap(([, , vals]) => vals.map((v) => (v === null ? '<tombstone>' : untext.decode(v)))))] };
}

async function metric(node: string, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${env.cluster.httpPort(node)}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('a corrupt object', () => {
  it('is found after a restart, counted, refused, and restored by anti-entropy from the other replicas', { timeout: 120_000 }, async () => {
    for (let i = 0; i < keyCount; i++) await env.client.put(keyOf(i), text.encode(valueOf(i)), { w: 3 });
    expect(await localRead('n2', keyOf(rottedKey))).toEqual({ values: [valueOf(rottedKey)] });

    await env.cluster.kill('n2', 'SIGTERM');
    // LMDB writes pages copy-on-write: older copies may sit in free pages too; all are flipped.
    expect(flipInDataFile(env.cluster.dataDir('n2'), marker)).toBeGreaterThanOrEqual(1);
    await env.cluster.restart('n2');

    // The scrub finds it within a second or two; a local read in the meantime is refused, never
    // answered with the rotted bytes or with "not found".
    let refused = 0;
    const until = Date.now() + 60_000;
    let last: { values: string[] } | { error: string } = { error: 'not read yet' };
    while (Date.now() < until) {
      last = await localRead('n2', keyOf(rottedKey));
      if ('error' in last) refused++;
      else {
        expect(last.values.every((v) => v === valueOf(rottedKey))).toBe(true);
        if (last.values.length === 1 && (await metric('n2', 'ringkv_objects_corrupt_total')) >= 1) break;
      }
      await sleep(100);
    }
    expect(last).toEqual({ values: [valueOf(rottedKey)] });
    expect(await metric('n2', 'ringkv_objects_corrupt_total')).toBe(1);
    // The scrub runs once a second from the start: its first pass checks every record (but the
    // dropped one, when a read found it first). The repair may well have come before that run.
    const scrubUntil = Date.now() + 10_000;
    while ((await metric('n2', 'ringkv_scrub_passes_total')) < 1 && Date.now() < scrubUntil) await sleep(200);
    expect(await metric('n2', 'ringkv_scrub_objects_checked_total')).toBeGreaterThanOrEqual(keyCount - 1);
    const repaired = (await Promise.all(['n1', 'n2', 'n3'].map((n) => metric(n, 'ringkv_aae_keys_repaired_total')))).reduce((a, b) => a + b, 0);
    expect(repaired).toBeGreaterThanOrEqual(1);
    expect(env.cluster.logs('n2')).toContain('an object failed its checksum');
    // The corrupt copy may have carried dots of n2: it took a new epoch.
    expect(env.cluster.logs('n2')).toMatch(/new epoch: an object that failed its checksum/);
    console.log(`corrupt object restored on n2; local reads refused while it waited: ${refused}`);

    // n2 alone: every key, the restored one included, reads back right with R=1.
    await env.cluster.kill('n1', 'SIGTERM');
    await env.cluster.kill('n3', 'SIGTERM');
    for (let i = 0; i < keyCount; i++) {
      const local = await localRead('n2', keyOf(i));
      expect(local).toEqual({ values: [valueOf(i)] });
    }
    const got = await env.client.get(keyOf(rottedKey), { r: 1 });
    expect(got.values.map((v) => (v === null ? null : untext.decode(v)))).toEqual([valueOf(rottedKey)]);
  });
});
