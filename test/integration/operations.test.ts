/**
 * Operations that answer (issue 18, item 6), on real processes: three `ringkv node` processes on a
 * real nats-server, the `ringkv` command and the admin library.
 *
 * - With one node paused (SIGSTOP: it keeps its NATS subscriptions, so the API queue group still
 *   hands it a share of the requests), `ringkv status`, `ringkv cluster plan` and the library's
 *   status and plan answer well inside their deadline, every time: they hedge across nodes.
 * - A node name the cluster does not know is UNKNOWN_NODE (exit 7) for every command that takes one.
 * - With --json, errors are one JSON object on stderr (code, message, exit code), usage errors too.
 * - put/get/del take the client's --pr, --pw, --sloppy and --via.
 * - `ringkv node --help` shows the defaults the code applies (src/core/defaults.ts).
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { operatorDefaults, bytesText } from '../../src/core/defaults.js';
import { useAdminCluster } from '../support/admin-cluster.js';
import { repoRoot, ringkvBin } from '../support/cluster.js';

const clusterName = 'ops';
const env = useAdminCluster({ nodes: 3, cluster: clusterName, args: ['--gossip-round-ms', '250'] });

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ringkvBin, '--server', env.nats.url, '--cluster', clusterName, ...args],
      { cwd: repoRoot, timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

describe('operations', () => {
  it('put, get and del take --pr, --pw, --sloppy and --via', async () => {
    const put = await cli(['put', 'ops:1', 'one', '--via', 'n2', '--pw', '2', '--sloppy', 'false', '--json']);
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ key: 'ops:1', stored: true });
    const got = await cli(['get', 'ops:1', '--pr', '2', '--r', '3', '--via', 'n3', '--json']);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ found: true, values: [{ encoding: 'utf8', data: 'one' }] });
    // The node checks them: PW above N is BAD_REQUEST (exit 2); a malformed flag is a usage error.
    expect((await cli(['put', 'ops:1', 'two', '--pw', '4'])).code).toBe(2);
    expect((await cli(['get', 'ops:1', '--sloppy', 'maybe'])).code).toBe(2);
    const del = await cli(['del', 'ops:1', '--via', 'n1', '--pw', '1']);
    expect(del.code, del.stderr).toBe(0);
    expect((await cli(['get', 'ops:1'])).code).toBe(4);
  });

  it('gives UNKNOWN_NODE (exit 7) for a node the cluster does not know, wherever a node is named', async () => {
    const commands = [
      ['get', 'k', '--via', 'n9'],
      ['put', 'k', 'v', '--via', 'n9'],
      ['aae', '--node', 'n9'],
      ['aae', 'pause', '--node', 'n9'],
      ['inspect', 'n9'],
      ['cluster', 'leave', 'n9'],
      ['cluster', 'join', 'n9', '--node', 'n1'],
      ['cluster', 'plan', '--via', 'n9'],
      ['cluster', 'force-remove', 'n9'],
    ];
    for (const args of commands) {
      const r = await cli(args);
      expect(`${args.join(' ')}: ${r.code} ${r.stderr.trim()}`).toMatch(/: 7 error UNKNOWN_NODE: /);
    }
    // The library says so too.
    await expect(env.client.status({ via: 'n9' })).rejects.toMatchObject({ code: 'UNKNOWN_NODE' });
    await expect(env.admin.plan({ via: 'n9' })).rejects.toMatchObject({ code: 'UNKNOWN_NODE' });
  });

  it('with --json, errors are JSON on stderr: cluster errors and usage errors alike', async () => {
    const unknown = await cli(['get', 'k', '--via', 'n9', '--json']);
    expect(unknown.code).toBe(7);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ error: { code: 'UNKNOWN_NODE', exitCode: 7, message: expect.stringContaining('n9') } });
    const usage = await cli(['get', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
    const noChanges = await cli(['cluster', 'commit', '--json']);
    expect(noChanges.code).toBe(7);
    expect(JSON.parse(noChanges.stderr)).toMatchObject({ error: { code: 'NO_CHANGES', exitCode: 7 } });
    const bad = await cli(['put', 'k', 'v', '--pw', '4', '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr)).toMatchObject({ error: { code: 'BAD_REQUEST', exitCode: 2 } });
  });

  it('shows the real defaults in the help', async () => {
    const help = (await cli(['node', '--help'])).stdout.replace(/\s+/g, ' ');
    const d = operatorDefaults;
    for (const [flag, value] of [
      ['--transfers-inbound-max', String(d.transfersInboundMax)],
      ['--transfers-max', String(d.transfersMax)],
      ['--transfer-rate-bytes', bytesText(d.transferRateBytesPerSec)],
      ['--handoff-rate-bytes', bytesText(d.handoffRateBytesPerSec)],
      ['--aae-interval-ms', String(d.aaeIntervalMs)],
      ['--aae-bytes-per-sec', bytesText(d.aaeBytesPerSec)],
      ['--aae-exchanges-max', String(d.aaeExchangesMax)],
      ['--request-timeout-ms', String(d.requestTimeoutMs)],
      ['--value-bytes-max', bytesText(d.valueBytesMax)],
    ] as const) {
      // The flag's own description (up to the next flag) names the default.
      expect(help, flag).toMatch(new RegExp(`${flag} <[^>]+> (?:(?! --).)*?\\(default ${value.replace(/[()]/g, '\\$&')}\\)`));
    }
    expect(help).toMatch(/--gossip-round-ms <ms> .*?\(default: 1000\)/);
    const get = (await cli(['get', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(get).toContain(`read quorum (default ${d.r})`);
    expect(get).toContain(`(default ${d.sloppy})`);
    expect(get).toContain(`deadline of the request (default ${d.requestTimeoutMs})`);
  });

  it('answers status and plan in time, every time, while one node is paused', { timeout: 120_000 }, async () => {
    const { cluster, client, admin } = env;
    cluster.signal('n3', 'SIGSTOP');
    try {
      for (let i = 0; i < 12; i++) {
        const t0 = Date.now();
        const s = await client.status({ timeoutMs: 3_000 });
        expect(s.members.length).toBe(3);
        expect(await admin.plan().then(() => 'ok', (e: { code?: string }) => e.code)).toBe('NO_CHANGES');
        // A paused node costs a hedge delay (at most 250 ms each), not a 3 s deadline.
        expect(Date.now() - t0, `round ${i}`).toBeLessThan(2_000);
      }
      for (let i = 0; i < 3; i++) {
        const r = await cli(['status', '--json']);
        expect(r.code, r.stderr).toBe(0);
        const members = (JSON.parse(r.stdout) as { members: { nodeId: string }[] }).members;
        expect(members.map((m) => m.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
        const plan = await cli(['cluster', 'plan']);
        expect(plan.code, plan.stderr).toBe(7); // NO_CHANGES, answered in time, not TIMEOUT (6)
        expect(plan.stderr).toContain('NO_CHANGES');
      }
    } finally {
      cluster.signal('n3', 'SIGCONT');
    }
  });
});
