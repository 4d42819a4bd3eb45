/**
 * A node that left the cluster exits 11 (exitCodes.nodeLeft), and started again on its data it exits
 * 11 again at once, without serving: the code a supervisor is told not to restart on (systemd
 * RestartPreventExitStatus=11; README, "Stopping a node"). On real processes: four `ringkv node`
 * processes, n4 force-removed while it runs.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { repoRoot, ringkvBin } from '../support/cluster.js';

const env = useAdminCluster({ nodes: 4, cluster: 'left', args: ['--gossip-round-ms', '250'] });

describe('a node that left', () => {
  it('exits 11, and exits 11 again when started on the same data', { timeout: 120_000 }, async () => {
    await env.admin.forceRemove('n4', { via: 'n1' });
    await env.admin.commit({ via: 'n1' });
    await env.cluster.exited('n4');
    expect(env.cluster.lastExit('n4')).toEqual({ code: exitCodes.nodeLeft, signal: null });

    const t0 = Date.now();
    const again = spawnSync(
      process.execPath,
      [ringkvBin, '--server', env.nats.url, '--cluster', 'left', 'node', '--id', 'n4', '--data', env.cluster.dataDir('n4'), '--members', 'n1,n2,n3,n4'],
      { cwd: repoRoot, timeout: 30_000, encoding: 'utf8', env: { ...process.env, RINGKV_CLUSTER_SECRET: env.cluster.secret } },
    );
    const ms = Date.now() - t0;
    process.stdout.write(`the removed node, started again, exited ${String(again.status)} after ${ms} ms\n`);
    expect(again.status, again.stdout.slice(-2000)).toBe(exitCodes.nodeLeft);
    expect(again.stdout).toContain('"left":true');
    expect(ms).toBeLessThan(15_000);
    // The others still serve without it.
    const status = await env.client.status({ via: 'n1' });
    expect(status.members.map((m) => m.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
  });
});
