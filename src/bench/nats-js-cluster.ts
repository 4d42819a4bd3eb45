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
  /** The servers' names (their server_name: js1, js2, ...), in the order of urls. */
  names: string[];
  /** SIGKILL one server and wait until it has exited. */
  kill(name: string): Promise<void>;
  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  signal(name: string, signal: NodeJS.Signals): void;
  /** Starts a server that has exited again, with its configuration and JetStream store. */
  restart(name: string): Promise<void>;
  stop(opts?: { keepLog?: boolean }): Promise<void>;
  /** The servers running now, by name and pid (the bench's CPU split). */
  processes(): { name: string; pid: number }[];
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
  const ports = await freePorts(servers * 2);
  const clientPorts = ports.slice(0, servers);
  const routePorts = ports.slice(servers);
  const routes = routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ');
  const children: { child: ChildProcess; exited: Promise<void> }[] = [];
  const names = Array.from({ length: servers }, (_, i) => `js${i + 1}`);
  const launch = (i: number) => {
    const log = openSync(logPath, 'a');
    const child = spawn(bin, ['-c', path.join(dir, `${names[i]}.conf`)], { stdio: ['ignore', log, log] });
    closeSync(log);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    children[i] = { child, exited };
  };

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
    launch(i);
  }

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
          // A server paused by a fault run handles the SIGTERM only once it runs again.
          child.kill('SIGCONT');
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
  const indexOf = (name: string) => {
    const i = names.indexOf(name);
    if (i < 0) throw new Error(`no nats-server ${name} in this cluster (${names.join(', ')})`);
    return i;
  };
  const running = (i: number) => children[i]!.child.exitCode === null && children[i]!.child.signalCode === null;
  const kill = async (name: string) => {
    const i = indexOf(name);
    if (running(i)) children[i]!.child.kill('SIGKILL');
    await children[i]!.exited;
  };
  const signal = (name: string, sig: NodeJS.Signals) => {
    const i = indexOf(name);
    if (running(i)) children[i]!.child.kill(sig);
  };
  const restart = async (name: string) => {
    const i = indexOf(name);
    if (stopping) throw new Error(`the JetStream cluster is stopping; ${name} is not restarted`);
    if (running(i)) throw new Error(`nats-server ${name} is still running`);
    launch(i);
  };
  const processes = () => names.flatMap((name, i) => (running(i) && children[i]!.child.pid !== undefined ? [{ name, pid: children[i]!.child.pid! }] : []));
  return { urls: clientPorts.map((p) => `nats://127.0.0.1:${p}`), dir, logPath, names, kill, signal, restart, stop, processes };
}
