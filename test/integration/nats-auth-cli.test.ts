/**
 * A node process and the CLI against a real nats-server that requires a user and password: the node
 * serves with credentials from the nats CLI's environment, the CLI puts and gets with the --user
 * flag, and a wrong password exits 8 with a message that does not carry it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ringkvBin } from '../support/cluster.js';
import { testSecret } from '../support/cluster-secret.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';
import { waitFor } from '../support/wait-for.js';

// One member with the default N=3, so the CLI's get (which sends W=2 whatever --n says: with --n 1 a
// one-replica node refuses it as BAD_REQUEST, a CLI bug outside this test) can run with --r 1.
describe('node and CLI on a nats-server with user and password', () => {
  let server: NatsServerHandle;
  let node: ChildProcess;
  beforeAll(async () => {
    ensureBuilt();
    server = await startNatsServer({ args: ['--user', 'ringkv', '--pass', 'node-pass-314'] });
    node = spawn(process.execPath, [ringkvBin, 'node', '--id', 'n1', '--data', path.join(tempDir('ringkv-auth-'), 'n1'), '--members', 'n1', '--server', server.url], {
      env: { ...process.env, NATS_USER: 'ringkv', NATS_PASSWORD: 'node-pass-314', RINGKV_CLUSTER_SECRET: testSecret() },
      stdio: 'ignore',
    });
  }, 60_000);
  afterAll(async () => {
    node?.kill('SIGKILL');
    await server?.stop();
  });

  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [ringkvBin, ...args, '--server', server.url], { env: { ...process.env, ...env }, encoding: 'utf8' });

  it('puts and gets with --user and NATS_PASSWORD', async () => {
    await waitFor('the node to take a put', async () => (cli(['put', 'k', 'v1', '--w', '1', '--user', 'ringkv'], { NATS_PASSWORD: 'node-pass-314' }).status === 0 ? true : undefined), 30_000, 200);
    const got = cli(['get', 'k', '--r', '1', '--user', 'ringkv', '--password', 'node-pass-314']);
    expect(got.stderr).toBe('');
    expect(got.stdout).toContain('v1');
  }, 40_000);

  it('a wrong password exits 8 and never shows it', () => {
    const r = cli(['put', 'k', 'v2', '--user', 'ringkv', '--password', 'wrong-pass-271']);
    expect(r.status).toBe(8);
    expect(r.stderr + r.stdout).not.toContain('wrong-pass-271');
    expect(r.stderr).toContain('NATS_AUTH');
  });
});
