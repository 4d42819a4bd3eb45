/**
 * An impostor on an open NATS (issue 28, items 4 and 6), beside a cluster on real `ringkv node`
 * processes: it joins the API queue group and answers every status with a ring of its own under
 * another cluster id and every put with an ack (the impostor got 16 of 20 fresh clients to
 * pin it and acknowledge their writes, which never reached the cluster), and it answers $SRV.PING
 * for the cluster's name with another cluster id, and once more claiming this cluster's id without
 * a member's proof (it made a restarting member exit 10).
 *
 * Here: fresh clients given the cluster id (RINGKV_CLUSTER_ID's option) write only to the cluster,
 * every acknowledged write reads back and the impostor acknowledges none; and every member,
 * restarted one by one after a SIGKILL of all (the first with no fellow member up to answer), starts
 * beside the impostor and says so in its log.
 */
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { apiQueueGroup, apiWildcard } from '../../src/protocol/subjects.js';
import { spawnSync } from 'node:child_process';
import { useAdminCluster } from '../support/admin-cluster.js';
import { ringkvBin } from '../support/cluster.js';

const clusterName = 'imp';
const q = 16;
const te = new TextEncoder();
const foreignId = 'f'.repeat(32);

const env = useAdminCluster({ nodes: 3, cluster: clusterName, args: ['--partitions', String(q), '--gossip-round-ms', '250'] });

interface Impostor {
  nc: NatsConnection;
  answered: Record<string, number>;
}

/** Answers status, put, get and del in the API queue group, and $SRV.PING for the cluster name. */
async function startImpostor(realId: string): Promise<Impostor> {
  const nc = await connect({ servers: env.nats.url, name: 'impostor' });
  const answered: Record<string, number> = {};
  const answer = (msg: Msg, kind: string, to: string, reqId: string, body: unknown) => {
    answered[kind] = (answered[kind] ?? 0) + 1;
    msg.respond(encodeEnvelope({ v: protocolVersion, kind, from: 'imp', to, reqId, body }));
  };
  nc.subscribe(apiWildcard(clusterName), {
    queue: apiQueueGroup,
    callback: (_err, msg) => {
      const req = decodeEnvelope(msg.data);
      if (typeof req === 'string' || !msg.reply) return;
      if (req.kind === 'api.status') {
        answer(msg, 'api.status.ok', req.from, req.reqId, {
          cluster: clusterName,
          clusterId: foreignId,
          partitions: q,
          n: 1,
          nodeId: 'imp',
          ringVersion: 99,
          members: [{ nodeId: 'imp', state: 'up', status: 'valid', partitions: Array.from({ length: q }, (_, i) => i) }],
        });
      } else if (req.kind === 'api.put' || req.kind === 'api.del') answer(msg, `${req.kind}.ok`, req.from, req.reqId, { context: new Uint8Array([0x90]) });
      else if (req.kind === 'api.get') answer(msg, 'api.get.ok', req.from, req.reqId, { found: false, values: [], context: new Uint8Array([0x90]) });
    },
  });
  const ping = (clusterId: string, node: string) => JSON.stringify({ type: 'io.nats.micro.v1.ping_response', name: 'ringkv', id: node, version: '0.0.0', metadata: { cluster: clusterName, clusterId, node, epoch: 'x', proof: 'ab'.repeat(32) } });
  for (const subject of ['$SRV.PING', '$SRV.PING.ringkv']) {
    nc.subscribe(subject, {
      callback: (_err, msg) => {
        if (!msg.reply) return;
        answered.ping = (answered.ping ?? 0) + 1;
        nc.publish(msg.reply, te.encode(ping(foreignId, 'imp')));
        nc.publish(msg.reply, te.encode(ping(realId, 'n9')));
      },
    });
  }
  await nc.flush();
  return { nc, answered };
}

describe('an impostor on an open NATS', () => {
  it('fresh clients given the cluster id never pin it: every write reaches the cluster, none is acknowledged by the impostor', async () => {
    const realId = (await env.client.status()).clusterId!;
    const imp = await startImpostor(realId);
    try {
      for (let i = 0; i < 20; i++) {
        const client = await RingkvClient.connect({ servers: env.nats.url, cluster: clusterName, clusterId: realId, timeoutMs: 3000 });
        try {
          // The very first request of a fresh client: before it has any ring.
          await client.putString(`fresh:${i}`, `v${i}`, { w: 2 });
          expect(client.clusterId).toBe(realId);
        } finally {
          await client.close();
        }
      }
      // Read back by a client that knows the id too: one that does not may ask the impostor before it
      // has a ring (an open NATS cannot stop that: README, Security).
      const reader = await RingkvClient.connect({ servers: env.nats.url, cluster: clusterName, clusterId: realId, timeoutMs: 3000 });
      try {
        for (let i = 0; i < 20; i++) expect((await reader.getString(`fresh:${i}`, { r: 3 })).values, `fresh:${i}`).toEqual([`v${i}`]);
      } finally {
        await reader.close();
      }
      // The CLI: `ringkv status` prints the id to give clients; the CLI given it (RINGKV_CLUSTER_ID) writes to the cluster.
      const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
        spawnSync(process.execPath, [ringkvBin, '--server', env.nats.url, '--cluster', clusterName, ...args], { encoding: 'utf8', env: { ...process.env, ...extraEnv } });
      let printed: string | undefined;
      for (let i = 0; i < 10 && printed === undefined; i++) printed = /RINGKV_CLUSTER_ID=([0-9a-f]+)/.exec(cli(['status'], { RINGKV_CLUSTER_ID: realId }).stdout)?.[1];
      expect(printed).toBe(realId);
      for (let i = 0; i < 5; i++) {
        const put = cli(['put', `cli:${i}`, `c${i}`], { RINGKV_CLUSTER_ID: realId });
        expect(put.status, put.stderr).toBe(0);
      }
      const reader2 = await RingkvClient.connect({ servers: env.nats.url, cluster: clusterName, clusterId: realId, timeoutMs: 3000 });
      try {
        for (let i = 0; i < 5; i++) expect((await reader2.getString(`cli:${i}`, { r: 3 })).values).toEqual([`c${i}`]);
      } finally {
        await reader2.close();
      }
      // It was there and asked: it answered status (ignored) and acknowledged no write.
      expect(imp.answered['api.status.ok'] ?? 0).toBeGreaterThan(0);
      expect(imp.answered['api.put.ok'] ?? 0).toBe(0);
      expect(imp.answered['api.get.ok'] ?? 0).toBe(0);
    } finally {
      await imp.nc.close();
    }
  }, 120_000);

  it('every member restarts beside it, the first with no fellow member up to vouch for the cluster', async () => {
    const { cluster: c } = env;
    const realId = (await env.client.status()).clusterId!;
    await env.client.putString('before-restart', 'kept', { w: 3 });
    const imp = await startImpostor(realId);
    try {
      for (const id of c.ids) await c.kill(id, 'SIGKILL');
      for (const id of c.ids) {
        await c.restart(id);
        expect(c.isRunning(id), id).toBe(true);
      }
      expect(imp.answered.ping ?? 0).toBeGreaterThanOrEqual(3);
      // Each said what answered without a member's proof; none exited.
      for (const id of c.ids) expect(c.logs(id)).toMatch(/answer \$SRV\.PING for cluster imp without a member's proof/);
      for (const id of c.ids) expect(c.lastExit(id)).toBeUndefined();
      expect((await env.client.getString('before-restart', { r: 3 })).values).toEqual(['kept']);
    } finally {
      await imp.nc.close();
    }
  }, 120_000);
});
