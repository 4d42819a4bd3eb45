/**
 * Test support: a real nats-server on a free loopback port, and temporary directories.
 *
 * The server gets its own port (never 4222, so a developer's server is never touched) and a max
 * payload of 8MB through a temporary config file, since nats-server 2.9 has no flag for it.
 * `startNatsServer` resolves once the port accepts TCP connections; `stop` kills the process and
 * removes its config.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// The bench's loopback helpers: free ports (never 4222) and waiting for one to accept.
import { accepts, freePort, sleep } from '../../src/bench/free-port.js';

export interface NatsServerHandle {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const host = '127.0.0.1';
const startTimeoutMs = 10_000;
const stopTimeoutMs = 5_000;

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startNatsServer(opts: { args?: string[] } = {}): Promise<NatsServerHandle> {
  const port = await freePort();
  const dir = tempDir('ringkv-nats-');
  const config = path.join(dir, 'nats.conf');
  writeFileSync(config, 'max_payload: 8MB\n');
  const child = spawn(natsServerBinary(), ['-c', config, '-a', host, '-p', String(port), ...(opts.args ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await Promise.race([exited, sleep(stopTimeoutMs)]);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + startTimeoutMs;
  while (!(await accepts(port))) {
    if (exitedEarly || Date.now() > deadline) {
      await stop();
      throw new Error(`nats-server did not start on port ${port}: ${stderr}`);
    }
    await sleep(20);
  }
  return { url: `nats://${host}:${port}`, port, stop };
}

/**
 * Two nats-servers routed into one NATS cluster (`name`), for tests that kill the server a
 * connection is on: a client of either reaches subscribers on both, and learns of the other from
 * the cluster's INFO, so it reconnects there. B is started first, so A's route finds it at once.
 */
export async function startNatsServerPair(name: string): Promise<{ a: NatsServerHandle; b: NatsServerHandle }> {
  const [routeA, routeB] = [await freePort(), await freePort()];
  const routes = (own: number, other: number) => ['--cluster', `nats://${host}:${own}`, '--cluster_name', name, '--routes', `nats://${host}:${other}`];
  const b = await startNatsServer({ args: routes(routeB, routeA) });
  const a = await startNatsServer({ args: routes(routeA, routeB) }).catch(async (err: unknown) => {
    await b.stop();
    throw err;
  });
  return { a, b };
}

export function natsServerBinary(): string {
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server';
  const found = spawnSync('which', ['nats-server'], { encoding: 'utf8' });
  const bin = found.stdout.trim();
  if (found.status !== 0 || bin === '') throw new Error('nats-server is neither at /usr/sbin nor on PATH');
  return bin;
}
