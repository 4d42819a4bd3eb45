/**
 * Members only (issue 17, items 2-4), on real `ringkv node` processes, real NATS and LMDB: forged
 * internal messages of every kind from a non-member change nothing and are counted; inspect
 * sessions need the secret; a stray cluster with the same name is refused and never hands a client
 * its ring; a node with --seeds and no or the wrong secret cannot join.
 *
 * Every forgery here is one that the cluster obeyed before members had to seal their messages: a
 * history "known up to counter 2^40" over a key's real clock ids erases the acknowledged value at
 * every replica it reaches, a forged replica.coordinate deletes it, and a gossip digest that marks
 * n3 removed and commits a ring without it at a huge version makes n3 exit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { claimInitial, partitionOf } from '../../src/core/ring.js';
import type { ClusterState } from '../../src/core/cluster-state.js';
import { encodeBatch } from '../../src/protocol/batch.js';
import { decode } from '../../src/protocol/codec.js';
import { encodeEnvelope, decodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { seal } from '../../src/protocol/seal.js';
import { apiQueueGroup, apiWildcard, nodeSubject } from '../../src/protocol/subjects.js';
import type { Role } from '../../src/ports/transport.js';
import { InspectClient } from '../../src/runtime/inspect-client.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { ringkvBin, repoRoot } from '../support/cluster.js';
import { testSealKey, testSecret } from '../support/cluster-secret.js';
import { waitFor } from '../support/wait-for.js';

const clusterName = 'members';
const q = 16;
const te = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const env = useAdminCluster({ nodes: 3, cluster: clusterName, args: ['--partitions', String(q), '--gossip-round-ms', '250', '--request-timeout-ms', '3000'], httpPorts: true });

async function metrics(id: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${env.cluster.httpPort(id)}/metrics`);
  return res.text();
}

/** The sum of a counter's samples whose labels include every given one. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A node-nobody-knows' envelope. */
const forged = (kind: string, to: string, body: unknown, from = 'mallory') => encodeEnvelope({ v: protocolVersion, kind, from, to, reqId: `forged-${kind}`, body });

/** A history that claims to have seen every dot of the key's clock ids up to 2^40, with no values: it erases them. */
async function erasingState(client: RingkvClient, key: string): Promise<[string, number, Uint8Array[]][]> {
  const got = await client.get(key, { r: 3 });
  const vv = decode(got.context) as [string, number][];
  expect(vv.length).toBeGreaterThan(0);
  return vv.map(([id]) => [id, 2 ** 40, []]);
}

describe('members only: forged internal messages from a non-member', () => {
  it('change nothing (ring, membership, every acknowledged write) and are counted per role', async () => {
    const { client, cluster } = env;
    const nc = await connect({ servers: env.nats.url, name: 'mallory' });
    try {
      // Acknowledged writes, read back at the end.
      const acked = new Map<string, string>();
      for (let i = 0; i < 40; i++) {
        const key = `acked:${i}`;
        await client.putString(key, `v${i}`, { w: 3 });
        acked.set(key, `v${i}`);
      }
      const before = await client.status({ via: 'n1' });
      const ringVersion = before.ringVersion;
      const pub = (node: string, role: Role, bytes: Uint8Array) => nc.publish(nodeSubject(clusterName, node, role), bytes);
      const nodes = cluster.ids;

      // Gossip: n3 removed, a ring without it committed at a huge version, and a seal by a
      // non-member (another secret, this cluster's id) and one of another cluster id, on top.
      const owners = claimInitial(['n1', 'n2'], q).owners;
      const hostile: ClusterState = {
        members: {
          n1: { status: 'valid', staged: null, version: 1e9, by: 'zz' },
          n2: { status: 'valid', staged: null, version: 1e9, by: 'zz' },
          n3: { status: 'removed', staged: null, version: 1e9, by: 'zz' },
        },
        ring: { version: 1e9, by: 'zz', q, owners },
      };
      const outsider = { ...testSealKey(clusterName), clusterId: (await client.status()).clusterId! };
      const otherCluster = testSealKey(clusterName);
      for (const node of nodes) {
        const digest = forged('gossip.digest', node, { heartbeats: { mallory: [1, 1] }, cluster: hostile });
        const subject = nodeSubject(clusterName, node, 'gossip');
        pub(node, 'gossip', digest);
        pub(node, 'gossip', seal(outsider, subject, digest, Date.now()));
        pub(node, 'gossip', seal(otherCluster, subject, digest, Date.now()));
      }

      // Replica writes with made-up histories: replica.put of an erasing state, a batch of one,
      // and a replica.coordinate that deletes with a context claiming everything.
      const put = 'acked:1';
      const batched = 'acked:2';
      const coordinated = 'acked:3';
      const hinted = 'acked:4';
      const transferred = 'acked:5';
      const exchanged = 'acked:6';
      const stateOf = new Map<string, Awaited<ReturnType<typeof erasingState>>>();
      for (const key of [put, batched, coordinated, hinted, transferred, exchanged]) stateOf.set(key, await erasingState(client, key));
      const pOf = (key: string) => partitionOf(te.encode(key), q);
      for (const node of nodes) {
        pub(node, 'replica', forged('replica.put', node, { p: pOf(put), key: te.encode(put), state: stateOf.get(put) }));
        pub(node, 'replica', encodeBatch('mallory', node, [forged('replica.put', node, { p: pOf(batched), key: te.encode(batched), state: stateOf.get(batched) })]));
        pub(node, 'replica', forged('replica.coordinate', node, { p: pOf(coordinated), key: te.encode(coordinated), context: stateOf.get(coordinated)!.map(([id, c]) => [id, c]), value: null }));
        // Hints, an ownership transfer (its slot reservations too) and anti-entropy.
        pub(node, 'handoff', forged('handoff.batch', node, { items: [{ p: pOf(hinted), key: te.encode(hinted), state: stateOf.get(hinted) }] }));
        for (let i = 0; i < 8; i++) pub(node, 'handoff', forged('handoff.transfer', node, { p: i, items: [] }, `mallory${i}`));
        pub(node, 'handoff', forged('handoff.transfer', node, { p: pOf(transferred), items: [{ p: pOf(transferred), key: te.encode(transferred), state: stateOf.get(transferred) }] }));
        pub(node, 'aae', forged('aae.put', node, { p: pOf(exchanged), objects: [[te.encode(exchanged), stateOf.get(exchanged)]] }));
      }
      await nc.flush();
      // Several gossip rounds: time for a forged ring to spread and for n3 to exit, had it been obeyed.
      await sleep(2500);

      for (const node of nodes) expect(cluster.isRunning(node), `${node} still runs`).toBe(true);
      for (const node of nodes) {
        const s = await client.status({ via: node });
        expect(s.ringVersion, `${node}'s ring`).toBe(ringVersion);
        expect(s.members.map((m) => m.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
        expect(s.members.every((m) => m.status === 'valid')).toBe(true);
      }
      for (const [key, value] of acked) {
        const got = await client.getString(key, { r: 3 });
        expect(got.values, key).toEqual([value]);
      }

      for (const node of nodes) {
        const m = await metrics(node);
        for (const role of ['gossip', 'replica', 'handoff', 'aae']) {
          expect(sample(m, 'ringkv_messages_unauthenticated_total', { role, reason: 'unsigned' }), `${node} ${role}`).toBeGreaterThanOrEqual(1);
        }
        expect(sample(m, 'ringkv_messages_unauthenticated_total', { role: 'replica', reason: 'unsigned' })).toBeGreaterThanOrEqual(3);
        expect(sample(m, 'ringkv_messages_unauthenticated_total', { role: 'handoff', reason: 'unsigned' })).toBeGreaterThanOrEqual(10);
        expect(sample(m, 'ringkv_messages_unauthenticated_total', { role: 'gossip', reason: 'bad-mac' })).toBeGreaterThanOrEqual(1);
        expect(sample(m, 'ringkv_messages_foreign_cluster_total')).toBeGreaterThanOrEqual(1);
        // The members' own traffic passes.
        expect(sample(m, 'ringkv_messages_authenticated_total')).toBeGreaterThan(0);
      }
      const logs = cluster.logs('n1');
      expect(logs).toContain('dropped a message not sealed by a member of this cluster');
      expect(logs).toContain(`another cluster named ${clusterName} shares this NATS`);
      expect(logs).toContain('"claimedFrom":"mallory"');
      // Rate-limited: a handful of warning lines for dozens of forgeries.
      expect(logs.split('\n').filter((l) => l.includes('dropped a message not sealed')).length).toBeLessThanOrEqual(4);
      // The secret is never in the log.
      expect(logs).not.toContain(cluster.secret);
    } finally {
      await nc.close();
    }
  }, 90_000);

  it('grants inspect sessions only to requests sealed with the secret', async () => {
    const nc = await connect({ servers: env.nats.url, name: 'inspect-test' });
    try {
      const stranger = new InspectClient(nc, clusterName);
      for (let i = 0; i < 10; i++) {
        await expect(stranger.follow('n1', { durationMs: 10_000 }, { records: () => {} })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      }
      await expect(stranger.snapshot('n1')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      const wrong = new InspectClient(nc, clusterName, testSealKey(clusterName));
      await expect(wrong.snapshot('n1')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      // None of them took a slot: an admin with the secret still gets a session.
      const admin = new InspectClient(nc, clusterName, testSealKey(clusterName, env.cluster.secret));
      const h = await admin.follow('n1', { durationMs: 5_000 }, { records: () => {} });
      await h.stop();
      expect((await admin.snapshot('n1')).actors.length).toBeGreaterThan(0);
      expect(sample(await metrics('n1'), 'ringkv_inspect_unauthenticated_total')).toBeGreaterThanOrEqual(12);
    } finally {
      await nc.close();
    }
  }, 60_000);
});

describe('cluster identity: joiners and strays', () => {
  const runNode = (args: string[], secret: string | undefined) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, NATS_URL: env.nats.url, RINGKV_CLUSTER: clusterName };
    delete childEnv.RINGKV_CLUSTER_SECRET;
    delete childEnv.RINGKV_CLUSTER_SECRET_FILE;
    if (secret !== undefined) childEnv.RINGKV_CLUSTER_SECRET = secret;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-stray-'));
    try {
      return spawnSync(process.execPath, [ringkvBin, 'node', '--data', path.join(dir, 'd'), ...args], { cwd: repoRoot, env: childEnv, encoding: 'utf8', timeout: 30_000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('a node with --seeds and no secret refuses to start (exit 9); with the wrong secret it is refused (exit 10) and never joins', async () => {
    const none = runNode(['--id', 'n9', '--seeds', 'n1'], undefined);
    expect(none.status).toBe(9);
    expect(none.stderr).toContain('needs the cluster secret');
    const wrong = runNode(['--id', 'n9', '--seeds', 'n1'], testSecret());
    expect(wrong.status).toBe(10);
    expect(wrong.stderr).toContain(`another cluster named ${clusterName} answers on this NATS`);
    const s = await env.client.status();
    expect(s.members.map((m) => m.nodeId)).not.toContain('n9');
  }, 60_000);

  it('a stray 1-node cluster with the same name (another secret) is refused and never answers', async () => {
    const before = await env.client.status();
    // Even with a member's id: it would share that member's subjects.
    for (const id of ['s1', 'n1']) {
      const stray = runNode(['--id', id, '--members', id], testSecret());
      expect(stray.status, stray.stderr).toBe(10);
      expect(stray.stderr).toContain('CLUSTER_MISMATCH');
      expect(stray.stdout + stray.stderr).not.toContain('"node serving"');
    }
    // The cluster never noticed: same ring, same members, and writes still go through.
    const after = await env.client.status();
    expect(after.ringVersion).toBe(before.ringVersion);
    await env.client.putString('after-stray', 'ok');
    expect((await env.client.getString('after-stray')).values).toEqual(['ok']);
  }, 60_000);

  it('a client pins its cluster id: a stray answering status in the queue group never hands it its ring', async () => {
    const nc: NatsConnection = await connect({ servers: env.nats.url, name: 'stray-responder' });
    const real = (await env.client.status()).clusterId!;
    // A stray that slipped past the start check (one started at the same moment): answers every
    // status with a ring of its own, under another cluster id.
    let strayAnswers = 0;
    const sub = nc.subscribe(apiWildcard(clusterName), {
      queue: apiQueueGroup,
      callback: (_err, msg) => {
        const req = decodeEnvelope(msg.data);
        if (typeof req === 'string' || req.kind !== 'api.status' || !msg.reply) return;
        strayAnswers++;
        msg.respond(
          encodeEnvelope({
            v: protocolVersion,
            kind: 'api.status.ok',
            from: 'stray',
            to: req.from,
            reqId: req.reqId,
            body: { cluster: clusterName, clusterId: 'ffffffffffffffffffffffffffffffff', partitions: q, n: 1, nodeId: 'stray', ringVersion: 99, members: [{ nodeId: 'stray', state: 'up', status: 'valid', partitions: Array.from({ length: q }, (_, i) => i) }] },
          }),
        );
      },
    });
    await nc.flush();
    const client = await RingkvClient.connect({ servers: env.nats.url, cluster: clusterName, clusterId: real, timeoutMs: 3000, ringRefreshMs: 100 });
    try {
      let mismatches = 0;
      for (let i = 0; i < 30; i++) {
        try {
          const s = await client.status();
          expect(s.clusterId).toBe(real);
          expect(s.nodeId).not.toBe('stray');
        } catch (err) {
          expect((err as { code?: string }).code).toBe('CLUSTER_MISMATCH');
          mismatches++;
        }
      }
      await waitFor('the stray to have answered and been ignored', async () => (strayAnswers > 0 && client.stats.foreignAnswers > 0 ? true : undefined), 10_000);
      // Given the id, the client asks the queue group again past the stray's answers (issue 28): a
      // status call fails with CLUSTER_MISMATCH only when eight answers in a row are the stray's.
      expect(mismatches).toBeLessThan(3);
      // Its ring is the cluster's: client-driven writes and reads reach the members, never the stray.
      // (Before a client has any ring its requests use the queue group, which a stray shares: the
      // start check is what keeps strays out of it.)
      await waitFor('a ring from the cluster', async () => (client.stats.ringRefreshes > 0 ? true : undefined), 10_000);
      for (let i = 0; i < 20; i++) await client.putString(`pinned:${i}`, 'x', { w: 2 });
      for (let i = 0; i < 20; i++) expect((await client.getString(`pinned:${i}`)).values).toEqual(['x']);
      expect(client.clusterId).toBe(real);
    } finally {
      sub.unsubscribe();
      await client.close();
      await nc.close();
    }
  }, 60_000);
});


