/**
 * A throwaway NATS JetStream cluster for the `nats-kv` bench target: `servers` nats-server processes
 * on free loopback ports, routed to each other as one cluster, each with its JetStream store in a
 * temporary directory, and their output in a log file there. stop() kills them and deletes the
 * directory (keeping the log when asked, for a failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findNatsServer, natsInstallHelp } from '../server/local-cluster.js';
import { freePorts, sleep, waitForPort } from './free-port.js';

export interface NatsJsCluster {
  /** Client URLs, one per server. */
  urls: string[];
  dir: string;
  logPath: string;
  stop(opts?: { keepLog?: boolean }): Promise<void>;
}

export const jsServersDefault = 3;
const startTimeoutMs = 15_000;
const stopGraceMs = 5_000;
const clusterName = 'ringkv-bench';

export async function startNatsJsCluster(servers = jsServersDefault): Promise<NatsJsCluster> {
  const bin = findNatsServer();
  if (!bin) throw new Error(`nats-server is not installed, and the nats-kv target needs it to start a JetStream cluster.\n${natsInstallHelp}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-js-'));
  const logPath = path.join(dir, 'nats-servers.log');
  const logFd = openSync(logPath, 'a');
  const ports = await freePorts(servers * 2);
  const clientPorts = ports.slice(0, servers);
  const routePorts = ports.slice(servers);
  const routes = routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ');
  const children: { child: ChildProcess; exited: Promise<void> }[] = [];

  for (let i = 0; i < servers; i++) {
    const name = `js${i + 1}`;
    const store = path.join(dir, name);
    mkdirSync(store, { recursive: true });
    const config = path.join(dir, `${name}.conf`);
    writeFileSync(
      config,
      [
        `server_name: "${name}"`,
        `listen: "127.0.0.1:${clientPorts[i]}"`,
        `jetstream { store_dir: "${store}" }`,
        `cluster { name: "${clusterName}", listen: "127.0.0.1:${routePorts[i]}", routes: [${routes}] }`,
        '',
      ].join('\n'),
    );
    const child = spawn(bin, ['-c', config], { stdio: ['ignore', logFd, logFd] });
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    children.push({ child, exited });
  }
  closeSync(logFd);

  // The servers must not outlive the bench, however it ends.
  const killAll = () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  let stopping: Promise<void> | undefined;
  const stop = (opts: { keepLog?: boolean } = {}) => {
    stopping ??= (async () => {
      await Promise.all(
        children.map(async ({ child, exited }) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
          await exited;
          clearTimeout(timer);
        }),
      );
      process.removeListener('exit', killAll);
      if (opts.keepLog) {
        for (let i = 0; i < servers; i++) rmSync(path.join(dir, `js${i + 1}`), { recursive: true, force: true });
      } else {
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    return stopping;
  };

  for (const [i, port] of clientPorts.entries()) {
    const ready = await waitForPort(port, startTimeoutMs, () => children[i]!.child.exitCode !== null);
    if (!ready) {
      await stop({ keepLog: true });
      throw new Error(`nats-server js${i + 1} did not start on port ${port} (see ${logPath})`);
    }
  }
  // Routes connect right after the client ports open; JetStream then elects its meta leader, which
  // the caller waits for by retrying the bucket's creation.
  await sleep(100);
  return { urls: clientPorts.map((p) => `nats://127.0.0.1:${p}`), dir, logPath, stop };
}
