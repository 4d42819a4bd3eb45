/**
 * A node leaves on real processes (issue 4): 4 nodes formed by --members, a writer at steady load
 * (W=2, acknowledged writes recorded); `cluster leave n4`, commit: n4 keeps serving until ownership
 * transfer has handed every partition it no longer replicates to the new owners (transfer.idle for
 * the ring that leaves it out), then marks itself exiting, tells every member, and its process exits
 * 0 by itself. Nothing acknowledged is lost: every write reads back with R=2 from the other three,
 * whose shares are balanced.
 */
import { expect, it } from 'vitest';
import { useAdminCluster } from '../support/admin-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = new TextEncoder();
const untext = new TextDecoder();

const env = useAdminCluster({ nodes: 4, cluster: 'ltest', args: ['--request-timeout-ms', '3000'] });

it('a leaving node hands its partitions over and exits 0 by itself; nothing acknowledged is lost', async () => {
  const { cluster: c, client, admin } = env;
  const acked = new Map<string, string>();
  let running = true;
  const lanes = Array.from({ length: 3 }, async (_, lane) => {
    for (let i = 0; running; i++) {
      const key = `l${lane}-${i}`;
      try {
        await client.put(key, text.encode(`v${i}`), { w: 2 });
        acked.set(key, `v${i}`);
      } catch {
        // not acknowledged: nothing to check
      }
      await sleep(5);
    }
  });
  await sleep(3000);

  // Staged and committed at the same node: a commit elsewhere could come before gossip brings the
  // staged change there (and answer NO_CHANGES).
  const staged = await admin.leave('n4', { via: 'n1' });
  expect(staged.changes).toEqual([{ node: 'n4', op: 'leave' }]);
  const committed = await admin.commit({ via: 'n1' });
  expect(committed.plan!.after.find((s) => s.node === 'n4')!.partitions).toBe(0);
  const t0 = Date.now();
  await Promise.race([c.exited('n4'), sleep(150_000).then(() => Promise.reject(new Error('n4 did not exit within 150 s of the commit')))]);
  process.stdout.write(`n4 handed over and exited ${Date.now() - t0} ms after the commit\n`);
  // A node that left exits 11 (exitCodes.nodeLeft), so a supervisor does not start it again.
  expect(c.lastExit('n4')).toEqual({ code: 11, signal: null });
  running = false;
  await Promise.all(lanes);
  expect(acked.size).toBeGreaterThan(100);

  const rest = ['n1', 'n2', 'n3'];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answers = await Promise.all(rest.map((id) => admin.status({ via: id })));
    // Gone from the members (so nothing that asks each member waits for it), listed as departed.
    if (answers.every((s) => !s.members.some((m) => m.nodeId === 'n4') && s.departed?.some((d) => d.nodeId === 'n4' && d.status === 'exiting'))) break;
    if (Date.now() > deadline) throw new Error('n4 is not exiting on every other node');
    await sleep(200);
  }
  const status = await admin.status({ via: 'n1' });
  expect(status.members.filter((m) => m.partitions.length > 0).map((m) => m.partitions.length).sort()).toEqual([21, 21, 22]);

  const missing: string[] = [];
  const entries = [...acked];
  for (let i = 0; i < entries.length; i += 32) {
    await Promise.all(
      entries.slice(i, i + 32).map(async ([key, value]) => {
        const got = await client.get(key, { r: 2 });
        if (!got.found || !got.values.map((v) => untext.decode(v)).includes(value)) missing.push(key);
      }),
    );
  }
  process.stdout.write(`leave: ${acked.size} acknowledged writes, ${missing.length} not read back\n`);
  expect(missing).toEqual([]);
}, 240_000);
