/**
 * A leave that cannot finish, on real processes (issue 27, item 6): 4 nodes, keys written; n3 is
 * paused (SIGSTOP: NATS still takes its messages, nothing answers) so every partition n4 has to hand
 * to n3 waits. The operator:
 * - stages n4's leave and cancels it before it commits (`cluster clear`);
 * - stages and commits it again; `ringkv status` shows n4 leaving, for how long, and each partition
 *   it still has to hand over, to whom, with n3 judged down (what holds it);
 * - force-removes n4 after the commit: n4 exits without handoff, and is listed as removed.
 */
import { afterAll, expect, it } from 'vitest';
import { formatUnfinished } from '../../src/cli/status-format.js';
import { useAdminCluster } from '../support/admin-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = new TextEncoder();

const env = useAdminCluster({ nodes: 4, cluster: 'stuck', args: ['--request-timeout-ms', '3000'] });

afterAll(() => {
  if (env.cluster.isRunning('n3')) env.cluster.signal('n3', 'SIGCONT');
});

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await sleep(250);
  }
}

it('shows a leave that waits for a paused node, cancels a staged leave, and force-removes a committed one', async () => {
  const { cluster: c, client, admin } = env;
  for (let i = 0; i < 200; i++) await client.put(`s${i}`, text.encode(`v${i}`), { w: 3 });

  c.signal('n3', 'SIGSTOP');
  await until('n1 judges n3 down', 30_000, async () => ((await admin.status({ via: 'n1' })).members.find((m) => m.nodeId === 'n3')?.state === 'down' ? true : undefined));

  // Cancelled before it commits.
  expect((await admin.leave('n4', { via: 'n1' })).changes).toEqual([{ node: 'n4', op: 'leave' }]);
  const shown = formatUnfinished((await admin.status({ via: 'n1' })).members, () => undefined);
  expect(shown).toContain('staged, not committed: leave n4');
  expect((await admin.clear({ via: 'n1' })).changes).toEqual([]);
  expect((await admin.status({ via: 'n1' })).members.find((m) => m.nodeId === 'n4')).toMatchObject({ status: 'valid', staged: null });

  // Committed: n4 hands over what it can, and waits for n3 for the rest.
  await admin.leave('n4', { via: 'n1' });
  const committed = await admin.commit({ via: 'n1' });
  expect(committed.changes).toEqual([]);
  const stuck = await until('n4 reports partitions waiting for n3', 30_000, async () => {
    const s = await admin.status({ via: 'n4' });
    const d = s.departure;
    return d && d.step === 'transfer' && d.partitions.some((p) => p.down.includes('n3')) ? s : undefined;
  });
  const members = (await admin.status({ via: 'n1' })).members;
  expect(members.find((m) => m.nodeId === 'n4')?.status).toBe('leaving');
  const report = formatUnfinished(members, (id) => (id === 'n4' ? stuck.departure : undefined));
  expect(report).toMatch(/n4 leaving( for \d+s)?: hands over \d+ partition\(s\)/);
  expect(report).toMatch(/partition \d+ -> [n0-9,]*n3[n0-9,]*: .*\(judged down: n3\)/);
  process.stdout.write(report);
  // Still there a while later: it does not finish while n3 is paused.
  await sleep(3_000);
  expect((await admin.status({ via: 'n4' })).departure?.partitions.length).toBeGreaterThan(0);

  // Force-removed after the commit: it exits without handing over the rest.
  await admin.forceRemove('n4', { via: 'n1' });
  await admin.commit({ via: 'n1' });
  await Promise.race([c.exited('n4'), sleep(30_000).then(() => Promise.reject(new Error('n4 did not exit within 30 s of its removal')))]);
  await until('n1 lists n4 as removed', 20_000, async () => ((await admin.status({ via: 'n1' })).departed?.some((d) => d.nodeId === 'n4' && d.status === 'removed') ? true : undefined));
  c.signal('n3', 'SIGCONT');
}, 180_000);
