/**
 * Hints for a member that has left for good, on real processes: 5 nodes; n5 is killed (SIGKILL) and
 * judged down; writes with W=2 leave hints for n5 at fallbacks; `cluster force-remove n5`, commit.
 * Every node drops its hints for n5 (they can never be delivered); the node that held the most of
 * them then leaves, hands everything over and exits 0 by itself (before the fix its pending hints
 * kept ownership transfer from going idle, so it never exited), and every acknowledged write reads
 * back with R=2 from the three that are left.
 */
import { expect, it } from 'vitest';
import { useAdminCluster } from '../support/admin-cluster.js';
import { waitFor } from '../support/wait-for.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = new TextEncoder();
const untext = new TextDecoder();

const env = useAdminCluster({ nodes: 5, cluster: 'dtest', args: ['--request-timeout-ms', '3000'] });

it('a force-removed member\'s hints are dropped, a leaving holder of them exits 0, nothing acknowledged is lost', async () => {
  const { cluster: c, client, admin } = env;
  const live = ['n1', 'n2', 'n3', 'n4'];
  await c.kill('n5');
  await waitFor(
    'n5 judged down everywhere',
    async () => ((await Promise.all(live.map((id) => admin.status({ via: id })))).every((s) => s.members.find((m) => m.nodeId === 'n5')?.state === 'down') ? true : undefined),
    30_000,
    250,
  );

  const acked = new Map<string, string>();
  for (let i = 0; i < 80; i++) {
    try {
      await client.put(`d${i}`, text.encode(`v${i}`), { w: 2 });
      acked.set(`d${i}`, `v${i}`);
    } catch {
      // not acknowledged: nothing to check
    }
  }
  expect(acked.size).toBeGreaterThan(60);
  const hintsFor5 = async (id: string) => (await admin.hints({ via: id })).targets.find((t) => t.target === 'n5')?.count ?? 0;
  const held = await Promise.all(live.map(async (id) => ({ id, count: await hintsFor5(id) })));
  held.sort((a, b) => b.count - a.count);
  expect(held[0]!.count).toBeGreaterThan(0);
  const holder = held[0]!.id;
  process.stdout.write(`hints for n5: ${held.map((h) => `${h.id}=${h.count}`).join(' ')}\n`);

  await admin.forceRemove('n5', { via: 'n1' });
  await admin.commit({ via: 'n1' });
  await waitFor('every node dropped its hints for n5', async () => ((await Promise.all(live.map(hintsFor5))).every((count) => count === 0) ? true : undefined), 30_000, 250);
  // Each node counts what it dropped (n5 was down throughout: none of them was delivered).
  for (const { id, count } of held) expect((await admin.hints({ via: id })).dropped, id).toBe(count);

  const via = live.find((id) => id !== holder)!;
  await admin.leave(holder, { via });
  await admin.commit({ via });
  const t0 = Date.now();
  await Promise.race([c.exited(holder), sleep(120_000).then(() => Promise.reject(new Error(`${holder} did not exit within 120 s of the commit`)))]);
  process.stdout.write(`${holder} handed over and exited ${Date.now() - t0} ms after the commit\n`);
  // A node that left exits 11 (exitCodes.nodeLeft), so a supervisor does not start it again.
  expect(c.lastExit(holder)).toEqual({ code: 11, signal: null });

  const rest = live.filter((id) => id !== holder);
  for (const id of rest) expect((await admin.hints({ via: id })).targets).toEqual([]);
  const missing: string[] = [];
  for (const [key, value] of acked) {
    const got = await client.get(key, { r: 2 });
    if (!got.found || !got.values.map((v) => untext.decode(v)).includes(value)) missing.push(key);
  }
  process.stdout.write(`departed hints: ${acked.size} acknowledged writes, ${missing.length} not read back\n`);
  expect(missing).toEqual([]);
}, 240_000);
