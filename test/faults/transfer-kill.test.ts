/**
 * Ownership transfer survives kill -9 of the receiving node (issue 4): real `ringkv node` processes
 * on a real nats-server, real LMDB. Three nodes hold every key (N = 3, W = 3); a 4th joins through
 * its seeds and the plan is committed (ringkv's own membership), so each old node must hand some
 * partitions to their new primaries, n4 among them. The transfer rate is kept low
 * (--transfer-rate-bytes) so that it is mid-way when n4 is killed with SIGKILL; n4 is then started
 * again on its data directory. Anti-entropy is effectively off (one round an hour), so only ownership
 * transfer can move the data.
 *
 * Asserted: the transfer was in progress at the kill; after the restart every node reports nothing
 * left to hand over; every acknowledged write (before and during the transfer) reads back with R = 2;
 * and, reading each node's LMDB after a clean stop, every key written before the transfer is on each
 * of its three primaries under the new ring (writes made meanwhile, W = 2, on at least two), and no
 * node keeps a key of a partition it does not replicate.
 */
import { describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { partitionOf, preferenceList, type Ring } from '../../src/core/ring.js';
import type { ApiTransfersOk } from '../../src/protocol/messages.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { waitFor } from '../support/wait-for.js';

const q = 16;
const keyCount = 2000;
const rateBytes = 20_000;
const te = new TextEncoder();
const td = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const env = useAdminCluster({
  nodes: 3,
  cluster: 'tkill',
  args: ['--partitions', String(q), '--transfer-rate-bytes', String(rateBytes), '--aae-interval-ms', '3600000', '--request-timeout-ms', '3000'],
  outputChars: 30_000,
});

async function transfersOf(ids: string[]): Promise<ApiTransfersOk[]> {
  return Promise.all(ids.map((id) => env.admin.transfers({ via: id })));
}

describe('ownership transfer under kill -9 of the receiver', () => {
  it('resumes after the receiving node restarts, completes, and loses nothing', { timeout: 300_000 }, async () => {
    const { cluster: c, client, admin } = env;
    const acked = new Map<string, string>();
    const value = (i: number) => `value ${i} ${'x'.repeat(80)}`;
    for (let i = 0; i < keyCount; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, keyCount - i) }, async (_, j) => {
          await client.putString(`k${i + j}`, value(i + j), { w: 3 });
          acked.set(`k${i + j}`, value(i + j));
        }),
      );
    }

    await c.add('n4', ['n1']);
    await waitFor('the join of n4 staged', async () => ((await admin.status({ via: 'n1' })).members.find((m) => m.nodeId === 'n4')?.staged === 'join' ? true : undefined), 20_000);
    const committed = await admin.commit({ via: 'n1' });
    const ids = ['n1', 'n2', 'n3', 'n4'];
    await waitFor(
      'the new ring on every node',
      async () => ((await Promise.all(ids.map((id) => admin.status({ via: id })))).every((s) => s.ringVersion === committed.ringVersion) ? true : undefined),
      20_000,
    );
    const t0 = Date.now();

    // A writer keeps going through the transfer, the kill and the restart.
    let writing = true;
    let during = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        try {
          await client.putString(`d${i}`, value(i), { w: 2 });
          acked.set(`d${i}`, value(i));
          during++;
        } catch {
          // Not acknowledged (n4 is down for a while): nothing is asserted about it.
        }
        await sleep(20);
      }
    })();

    // Mid-way: some objects confirmed, more to go.
    const mid = await waitFor(
      'a transfer in progress',
      async () => {
        const all = await transfersOf(['n1', 'n2', 'n3']);
        const rows = all.flatMap((n) => n.transfers);
        const sent = rows.reduce((a, t) => a + t.objectsSent, 0);
        return sent > 0 && rows.some((t) => t.elapsedMs !== null && t.objectsSent < t.objectsTotal && t.to.includes('n4')) ? rows : undefined;
      },
      60_000,
      100,
    );
    process.stdout.write(`mid-way at ${Date.now() - t0} ms: ${mid.map((t) => `p${t.p} ${t.from}->${t.to.join(',')} ${t.objectsSent}/${t.objectsTotal} ${t.state}`).join('; ')}\n`);
    await c.kill('n4', 'SIGKILL');
    await sleep(3000);
    // While n4 is gone, no transfer aimed at it can finish.
    const stalled = (await transfersOf(['n1', 'n2', 'n3'])).flatMap((n) => n.transfers).filter((t) => t.to.includes('n4'));
    expect(stalled.length).toBeGreaterThan(0);
    await c.restart('n4');
    const restartedAt = Date.now();

    await waitFor(
      'every transfer finished',
      async () => {
        const all = await transfersOf(ids);
        return all.every((n) => n.transfers.length === 0) && all.some((n) => n.completed > 0) ? true : undefined;
      },
      180_000,
      500,
    );
    const doneMs = Date.now() - t0;
    writing = false;
    await writer;
    process.stdout.write(
      `ownership transfer with kill -9 of the receiver: ${keyCount} keys, Q=${q}, --transfer-rate-bytes ${rateBytes}: finished ${doneMs} ms after the commit ` +
        `(${Date.now() - restartedAt} ms after n4 restarted); ${during} writes acknowledged meanwhile\n`,
    );

    // Late writes that reached an old holder are handed over by the next scans.
    await sleep(3000);
    await waitFor('no transfer left', async () => ((await transfersOf(ids)).every((n) => n.transfers.length === 0) ? true : undefined), 60_000, 500);

    const missing: string[] = [];
    const entries = [...acked];
    for (let i = 0; i < entries.length; i += 32) {
      await Promise.all(
        entries.slice(i, i + 32).map(async ([key, v]) => {
          const got = await client.getString(key, { r: 2 });
          if (!got.values.includes(v)) missing.push(key);
        }),
      );
    }
    expect(missing, `acknowledged keys not read back with R=2 (${missing.length} of ${entries.length})`).toEqual([]);

    // The ring as the cluster has it, then every node's LMDB after a clean stop.
    const status = await admin.status({ via: 'n1' });
    const owners: string[] = [];
    for (const m of status.members) for (const p of m.partitions) owners[p] = m.nodeId;
    const ring: Ring = { q, owners };
    await c.stopAll();
    const stores = new Map(ids.map((id) => [id, LmdbStore.open(c.dataDir(id))]));
    try {
      let misplaced = 0;
      for (const [id, store] of stores) for (let p = 0; p < q; p++) if (!preferenceList(ring, p, 3).includes(id)) for (const _ of store.keys(p)) misplaced++;
      expect(misplaced, 'objects kept by a node that does not replicate their partition').toBe(0);
      // The keys written before (W = 3, so on all three old holders) must be on all three new
      // primaries: that is what the transfer moved. A write made meanwhile was acknowledged by
      // W = 2 replicas (n4 was killed mid-way, and anti-entropy is off here), so it must be on at
      // least two of its primaries.
      const notOnPrimary: string[] = [];
      for (const [key, v] of acked) {
        const k = te.encode(key);
        const p = partitionOf(k, q);
        const holders = preferenceList(ring, p, 3).filter((owner) => {
          const state = stores.get(owner)!.get(p, k) ?? [];
          return state.some(([, , vals]) => vals.some((x) => x !== null && td.decode(x) === v));
        });
        if (holders.length < (key.startsWith('k') ? 3 : 2)) notOnPrimary.push(`${key} on ${holders.join(',') || 'none'}`);
      }
      expect(notOnPrimary.slice(0, 20), `${notOnPrimary.length} keys on too few primaries`).toEqual([]);
    } finally {
      for (const store of stores.values()) await store.close();
    }
  });
});
