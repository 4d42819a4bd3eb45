/**
 * Each sealed request takes effect once (issue 28, items 1 and 6), on real `ringkv node` processes,
 * real NATS and LMDB. A listener on an open NATS copies members' sealed messages and publishes them
 * again byte for byte, on the same subject and within the seal's window, as the issue's attacker
 * did: a staged and then cleared force-remove's claim and a later commit's (which made n4 exit
 * before), and forwarded puts replayed after their keys were deleted (which brought the values
 * back). Here nothing changes, and every copy is counted in ringkv_messages_replayed_total. A
 * forward copied with the listener's own reply subject fails the seal (the reply subject is under
 * it) and is counted as unauthenticated.
 */
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { batchItems, batchKind } from '../../src/protocol/batch.js';
import { decodeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import { sealedPayloadUnchecked } from '../../src/protocol/seal.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { waitFor } from '../support/wait-for.js';

const clusterName = 'replay';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const env = useAdminCluster({ nodes: 4, cluster: clusterName, args: ['--partitions', '16', '--gossip-round-ms', '250', '--request-timeout-ms', '3000'], httpPorts: true, adminTimeoutMs: 5000 });

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

async function total(name: string, labels: Record<string, string> = {}): Promise<number> {
  let sum = 0;
  for (const id of env.cluster.ids) sum += sample(await metrics(id), name, labels);
  return sum;
}

/** The envelopes inside a captured sealed message (a batch's items one by one), read without checking the seal. */
function envelopesOf(data: Uint8Array): Envelope[] {
  const inner = sealedPayloadUnchecked(data);
  if (inner === undefined) return [];
  const e = decodeEnvelope(inner);
  if (typeof e === 'string') return [];
  if (e.kind !== batchKind) return [e];
  const items = batchItems(e.body);
  if (typeof items === 'string') return [];
  return items.flatMap((item) => {
    const x = decodeEnvelope(item as Uint8Array);
    return typeof x === 'string' ? [] : [x];
  });
}
const kindsOf = (data: Uint8Array) => envelopesOf(data).map((e) => e.kind);
/** The cluster operation a captured gossip.claim carries, if it carries one. */
const claimOpOf = (data: Uint8Array) => envelopesOf(data).find((e) => e.kind === 'gossip.claim')?.body as { request?: { op?: string } } | undefined;

/** A listener on every node subject of the cluster: what an open NATS lets anyone see. */
async function listen(nc: NatsConnection, pattern: string): Promise<Msg[]> {
  const seen: Msg[] = [];
  nc.subscribe(pattern, { callback: (err, msg) => void (err ? undefined : seen.push(msg)) });
  await nc.flush();
  return seen;
}

describe('replay: copied sealed messages take effect once', () => {
  it('a force-remove claim and a commit claim, replayed byte for byte, neither stage nor commit anything', async () => {
    const { admin, cluster: c } = env;
    const nc = await connect({ servers: env.nats.url, name: 'listener' });
    try {
      const captured = await listen(nc, `ringkv.${clusterName}.node.n1.gossip`);
      // Asked at n2, so each change travels to the claimant (n1) as a sealed gossip.claim.
      await admin.forceRemove('n4', { via: 'n2' });
      await admin.clear({ via: 'n2' });
      // An unrelated change committed: a new node joins.
      await c.add('n5', ['n2']);
      await waitFor('n5 known to n1', async () => ((await admin.status({ via: 'n1' })).members.some((m) => m.nodeId === 'n5') ? true : undefined), 20_000);
      await admin.join('n5', { via: 'n2' });
      await admin.commit({ via: 'n2' });
      const ringVersion = await waitFor(
        'the join committed on every node',
        async () => {
          const all = await Promise.all(c.ids.map((id) => admin.status({ via: id })));
          return new Set(all.map((s) => s.ringVersion)).size === 1 && all[0]!.members.find((m) => m.nodeId === 'n5')?.status === 'valid' ? all[0]!.ringVersion : undefined;
        },
        30_000,
      );
      // The attack: the force-remove's claim, then the commit's, without the clear between.
      const claimOf = (op: string) => captured.find((m) => claimOpOf(m.data)?.request?.op === op);
      const claims = [claimOf('force-remove'), claimOf('commit')].filter((m) => m !== undefined);
      expect(claims).toHaveLength(2);
      const before = await total('ringkv_messages_replayed_total', { role: 'gossip', reason: 'replayed' });

      // The replay: every captured claim, in order, byte for byte, twice over.
      for (let round = 0; round < 2; round++) for (const m of claims) nc.publish(m.subject, m.data, m.reply ? { reply: m.reply } : undefined);
      await nc.flush();
      await sleep(3000);

      for (const id of c.ids) expect(c.isRunning(id), `${id} still runs`).toBe(true);
      for (const id of c.ids) {
        const s = await admin.status({ via: id });
        expect(s.ringVersion, `${id}'s ring`).toBe(ringVersion);
        expect(s.members.find((m) => m.nodeId === 'n4')?.status, `n4 at ${id}`).toBe('valid');
      }
      // Nothing staged either: the replayed force-remove was not taken.
      await expect(admin.plan({ via: 'n1' })).rejects.toMatchObject({ code: 'NO_CHANGES' });
      const after = await total('ringkv_messages_replayed_total', { role: 'gossip', reason: 'replayed' });
      expect(after - before).toBe(2 * claims.length);
    } finally {
      await nc.close();
    }
  }, 120_000);

  it('forwarded puts replayed after their keys were deleted bring nothing back; one with another reply subject fails the seal', async () => {
    const { client, cluster: c } = env;
    const nc = await connect({ servers: env.nats.url, name: 'listener' });
    try {
      const captured = await listen(nc, `ringkv.${clusterName}.node.*.forward`);
      // N=1 and asked at n1: every key n1 does not own is forwarded to its owner.
      const keys = Array.from({ length: 12 }, (_, i) => `replay:${i}`);
      for (const k of keys) await client.putString(k, `old ${k}`, { n: 1, w: 1, via: 'n1' });
      await nc.flush();
      const forwards = captured.filter((m) => kindsOf(m.data).includes('api.put'));
      expect(forwards.length).toBeGreaterThan(0);
      for (const k of keys) await client.delete(k, { n: 1, w: 1, r: 1 });
      for (const k of keys) expect((await client.getString(k, { n: 1, r: 1 })).found, k).toBe(false);

      const replayedBefore = await total('ringkv_messages_replayed_total', { role: 'forward', reason: 'replayed' });
      const forgedBefore = await total('ringkv_messages_unauthenticated_total', { role: 'forward', reason: 'bad-mac' });
      const inbox = `_INBOX.listener.${Date.now()}`;
      const answers: Msg[] = [];
      nc.subscribe(`${inbox}.>`, { callback: (err, msg) => void (err ? undefined : answers.push(msg)) });
      for (const [i, m] of forwards.entries()) {
        // Byte for byte, with the client's reply subject; and with the listener's own.
        nc.publish(m.subject, m.data, { reply: m.reply });
        nc.publish(m.subject, m.data, { reply: `${inbox}.${i}` });
      }
      await nc.flush();
      await sleep(1500);

      for (const k of keys) expect((await client.getString(k, { n: 1, r: 1 })).found, `${k} stays deleted`).toBe(false);
      expect(answers).toHaveLength(0);
      expect((await total('ringkv_messages_replayed_total', { role: 'forward', reason: 'replayed' })) - replayedBefore).toBe(forwards.length);
      expect((await total('ringkv_messages_unauthenticated_total', { role: 'forward', reason: 'bad-mac' })) - forgedBefore).toBe(forwards.length);
      for (const id of c.ids) expect(c.isRunning(id)).toBe(true);
    } finally {
      await nc.close();
    }
  }, 120_000);
});
