/**
 * One claimant, on real processes (issue 18, item 3): two membership changes staged and committed
 * at once at different nodes. Before the claimant, each node wrote its own ring of the same version,
 * and the merge kept one: the other change was answered "committed" and silently lost. Now both
 * requests go to the claimant (n1, the lowest-id valid member), which applies them one after the
 * other: every commit answered ok ends in the ring, and a commit that is refused says why with a code.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterAdmin } from '../../src/client/admin.js';
import type { ApiClusterOk, ApiStatusOk } from '../../src/protocol/messages.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { waitFor } from '../support/wait-for.js';

const args = ['--gossip-round-ms', '250', '--aae-interval-ms', '600000', '--request-timeout-ms', '3000'];

type Outcome = { ok: true; answer: ApiClusterOk } | { ok: false; code: string; message: string };

const outcome = (p: Promise<ApiClusterOk>): Promise<Outcome> =>
  p.then(
    (answer) => ({ ok: true as const, answer }),
    (err: { code?: string; message?: string }) => ({ ok: false as const, code: err.code ?? '?', message: err.message ?? '' }),
  );

async function statuses(admin: ClusterAdmin, ids: string[]): Promise<ApiStatusOk[]> {
  return Promise.all(ids.map((id) => admin.status({ via: id })));
}

describe('one claimant: changes committed at once on different nodes', () => {
  const env = useAdminCluster({ nodes: 4, cluster: 'claimtest', args, adminTimeoutMs: 5000 });

  it('two joins, each staged and committed at its own node at the same moment: both end in the ring, none is lost', async () => {
    const { cluster: c, admin } = env;
    await c.add('n5', ['n2']);
    await c.add('n6', ['n4']);
    // Both are known (joining) everywhere before the operators act.
    await waitFor(
      'n5 and n6 known to every node',
      async () => ((await statuses(admin, c.ids)).every((s) => ['n5', 'n6'].every((id) => s.members.some((m) => m.nodeId === id))) ? true : undefined),
      20_000,
    );
    await admin.clear({ via: 'n1' }).catch(() => undefined);

    // Two operators at once: one joins n5 at n2 and commits there, the other joins n6 at n4 and
    // commits there. Neither waits for the other's change to spread.
    const operator = async (node: string, at: string) => {
      const staged = await outcome(admin.join(node, { via: at }));
      const committed = await outcome(admin.commit({ via: at }));
      return { node, at, staged, committed };
    };
    const runs = await Promise.all([operator('n5', 'n2'), operator('n6', 'n4')]);
    for (const r of runs) {
      process.stdout.write(`join ${r.node} at ${r.at}: staged ${r.staged.ok ? 'ok' : r.staged.code}, commit ${r.committed.ok ? `ok (ring version ${r.committed.answer.ringVersion}, by ${r.committed.answer.nodeId})` : `${r.committed.code}: ${r.committed.message}`}\n`);
      expect(r.staged.ok, JSON.stringify(r.staged)).toBe(true);
      // The claimant answers, wherever the request was asked.
      if (r.staged.ok) expect(r.staged.answer.nodeId).toBe('n1');
      // A refusal names its reason: nothing left to commit (the other commit took this change too),
      // or a cluster state that had not converged. Never another failure.
      if (!r.committed.ok) expect(['NO_CHANGES', 'NOT_READY']).toContain(r.committed.code);
    }
    expect(runs.some((r) => r.committed.ok)).toBe(true);
    // Each commit answered ok made its own ring version: they were applied one after the other.
    const versions = runs.flatMap((r) => (r.committed.ok ? [r.committed.answer.ringVersion] : []));
    expect(new Set(versions).size).toBe(versions.length);

    // What a commit answered ok committed is in the ring every node ends up with.
    const committedJoins = new Set(runs.flatMap((r) => (r.committed.ok ? r.committed.answer.plan!.changes.filter((ch) => ch.op === 'join').map((ch) => ch.node) : [])));
    const settled = (all: ApiStatusOk[]) => new Set(all.map((s) => s.ringVersion)).size === 1;
    const inRing = (s: ApiStatusOk, id: string) => (s.members.find((m) => m.nodeId === id)?.partitions.length ?? 0) > 0;
    const afterCommits = await waitFor(
      'one ring on every node',
      async () => {
        const all = await statuses(admin, c.ids);
        return settled(all) && all[0]!.ringVersion === Math.max(...versions) ? all : undefined;
      },
      20_000,
    );
    for (const id of committedJoins) expect(afterCommits.every((s) => inRing(s, id)), `${id} was committed but is not in the ring`).toBe(true);
    // A join no commit took is still staged, not lost: committing again brings it in.
    const leftOver = ['n5', 'n6'].filter((id) => !committedJoins.has(id));
    if (leftOver.length > 0) {
      expect((await admin.plan({ via: 'n1' })).plan!.changes.map((ch) => ch.node)).toEqual(leftOver);
      await waitFor('the left-over join committed', async () => ((await outcome(admin.commit({ via: 'n3' }))).ok ? true : undefined), 20_000, 500);
    }
    const final = await waitFor(
      'n5 and n6 in the ring on every node',
      async () => {
        const all = await statuses(admin, c.ids);
        return settled(all) && all.every((s) => inRing(s, 'n5') && inRing(s, 'n6')) ? all : undefined;
      },
      20_000,
    );
    for (const s of final) {
      for (const id of ['n5', 'n6']) expect(s.members.find((m) => m.nodeId === id)!.status).toBe('valid');
    }
  }, 120_000);

  it('a commit asked at two nodes at once is applied once; the other answers NO_CHANGES', async () => {
    const { cluster: c, admin } = env;
    await admin.leave('n6', { via: 'n3' });
    const before = (await admin.status({ via: 'n1' })).ringVersion;
    const [a, b] = await Promise.all([outcome(admin.commit({ via: 'n2' })), outcome(admin.commit({ via: 'n5' }))]);
    const oks = [a, b].filter((o) => o.ok);
    expect(oks, JSON.stringify([a, b])).toHaveLength(1);
    const refused = [a, b].find((o) => !o.ok) as Extract<Outcome, { ok: false }>;
    expect(refused.code).toBe('NO_CHANGES');
    expect((oks[0] as Extract<Outcome, { ok: true }>).answer.ringVersion).toBe(before + 1);
    await waitFor(
      'n6 out of the ring on every node that stays',
      async () => {
        const all = await statuses(admin, c.ids.filter((id) => id !== 'n6'));
        return all.every((s) => s.ringVersion === before + 1 && !(s.members.find((m) => m.nodeId === 'n6')?.partitions.length ?? 0)) ? true : undefined;
      },
      20_000,
    );
  }, 60_000);
});
