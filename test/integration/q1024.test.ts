/**
 * Q = 1024 on real processes (issue 20: "Q up to 1024 works everywhere"): three nodes with 1024
 * partitions take writes, `ringkv status` and `ringkv aae` show every partition, a fourth node
 * joins (claim, plan, commit), ownership transfer hands it its share, anti-entropy exchanges run,
 * and every acknowledged write reads back.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useAdminCluster } from '../support/admin-cluster.js';
import { repoRoot, ringkvBin } from '../support/cluster.js';
import { waitFor } from '../support/wait-for.js';

const q = 1024;
const keys = 3000;

describe('a ring of 1024 partitions', () => {
  const env = useAdminCluster({ nodes: 3, cluster: 'q1024', args: ['--partitions', String(q), '--gossip-round-ms', '250', '--aae-interval-ms', '1000'], timeoutMs: 5000 });

  const ringkv = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [ringkvBin, '--server', env.nats.url, '--cluster', 'q1024', ...args], { cwd: repoRoot, timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('takes writes, shows status and anti-entropy, joins a fourth node and hands it its share, and loses nothing', async () => {
    const { cluster, client, admin } = env;
    const acked: string[] = [];
    for (let i = 0; i < keys; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => client.putString(`q:${i + j}`, `v${i + j}`).then(() => acked.push(`q:${i + j}`))));
    }
    expect(acked).toHaveLength(keys);

    const status = await admin.status({ via: 'n1' });
    expect(status.members.reduce((n, m) => n + m.partitions.length, 0)).toBe(q);
    const cli = await ringkv(['status']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/n1\s+up\s+valid\s+34[12] \(/);
    const aae = await ringkv(['aae', '--node', 'n2', '--json']);
    expect(aae.code, aae.stderr).toBe(0);
    expect((JSON.parse(aae.stdout) as { partitions: unknown[] }).partitions.length).toBeGreaterThan(0);

    await cluster.add('n4', ['n1']);
    await waitFor('n4 known everywhere', async () => ((await admin.status({ via: 'n3' })).members.some((m) => m.nodeId === 'n4') ? true : undefined), 20_000);
    const plan = await admin.plan({ via: 'n1' });
    const after = plan.plan!.after.filter((s) => s.partitions > 0).map((s) => s.partitions);
    expect(Math.max(...after) - Math.min(...after)).toBeLessThanOrEqual(1);
    await admin.commit({ via: 'n1' });
    await waitFor(
      'every ownership transfer done',
      async () => {
        const all = await Promise.all(cluster.ids.map((id) => admin.transfers({ via: id })));
        return all.every((t) => t.transfers.length === 0 && t.inbound === 0) && (await admin.status({ via: 'n4' })).members.find((m) => m.nodeId === 'n4')!.partitions.length > 0 ? true : undefined;
      },
      120_000,
      1000,
    );
    const shares = (await admin.status({ via: 'n4' })).members.map((m) => m.partitions.length);
    expect(shares.sort()).toEqual([256, 256, 256, 256]);
    for (const key of acked) expect((await client.getString(key)).values).toEqual([`v${key.slice(2)}`]);
  }, 240_000);
});
