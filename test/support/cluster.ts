/**
 * Test support: a cluster of real `ringkv node` processes (process.execPath + bin/ringkv.js) on a
 * nats-server the test started, each with its own LMDB data directory under `dataRoot`.
 *
 * - `startCluster` resolves once every node has logged {"msg":"node serving"}.
 * - `kill(id, signal)` sends a signal (SIGKILL for a crash) and waits for the process to exit;
 *   `signal(id, signal)` sends one without waiting (SIGSTOP, SIGCONT);
 *   `restart(id, args?)` starts the node again on the same data directory (stopping it first if it
 *   runs), with `args` added for that start only (e.g. ['--restore-from', dir]);
 *   `stopAll()` stops every node (SIGTERM, then SIGKILL after a grace period). Call it in afterAll.
 * - Each node's stdout and stderr are kept (the tail of every incarnation) for `logs()`, so a failing
 *   test can print what the nodes said.
 * - No process outlives the test worker: an exit hook SIGKILLs whatever is still running.
 *
 * The nodes run the compiled CLI in dist/. vitest has no globalSetup we may use, so the first
 * startCluster of a worker builds dist/ when it is older than any .ts file of src/ or actors/, with
 * a lock directory so that parallel workers build once.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach } from 'vitest';
import { testSecret } from './cluster-secret.js';
import { freePort } from '../../src/bench/free-port.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ringkvBin = path.join(repoRoot, 'bin', 'ringkv.js');
const cliMain = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** How long one node may take from spawn to "node serving". */
const servingTimeoutMs = 30_000;
/** Between SIGTERM and SIGKILL in stop(). */
const stopGraceMs = 3_000;
/** How much of each node's output is kept. */
const logBytesMax = 256 * 1024;
/** How long a build by another worker may take before its lock counts as stale. */
const buildLockStaleMs = 180_000;

export interface ClusterOptions {
  nodes: number;
  natsUrl: string;
  /** Node nK keeps its data in <dataRoot>/nK. */
  dataRoot: string;
  cluster: string;
  /** Extra arguments for every `ringkv node` (e.g. ['--value-bytes-max', '1000']). */
  args?: string[];
  /** Extra arguments for one node (e.g. its own --http-port). */
  nodeArgs?: (id: string) => string[];
  /** The NATS URL of one node, where nodes use different servers (default: natsUrl for all). */
  natsUrlOf?: (id: string) => string;
  /**
   * A command prefix each node runs under, e.g. test/support/hosts.ts's `ip netns exec <ns>` that puts
   * the node on its own host. The prefix must exec the node, so its pid is the node's.
   */
  launcher?: (id: string) => string[];
  /** The cluster secret every node gets through RINGKV_CLUSTER_SECRET (default: a fresh random one). */
  secret?: string;
  /** Give each node a free loopback port for /metrics (`--http-port`); read it with httpPort(id). */
  httpPorts?: boolean;
  /**
   * The `ringkv` bin to run instead of this checkout's (the package test runs an installed
   * package's node_modules/ringkv/bin/ringkv.js); the nodes then start in that package's directory.
   */
  bin?: string;
}

/** How one added node differs from the cluster's: another secret, or none at all (null). */
export interface AddOptions {
  secret?: string | null;
}

export interface Cluster {
  ids: string[];
  natsUrl: string;
  cluster: string;
  /** The cluster secret its nodes were given (tests seal with it as a member would). */
  secret: string;
  /** The node's /metrics port, with `httpPorts`. */
  httpPort(id: string): number | undefined;
  dataDir(id: string): string;
  isRunning(id: string): boolean;
  /** Sends the signal (default SIGKILL) and waits until the process has exited. */
  kill(id: string, signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal without waiting (SIGSTOP to pause a node, SIGCONT to resume it). */
  signal(id: string, signal: NodeJS.Signals): void;
  /** Starts the node again on the same data directory (stops it first if it is running). */
  restart(id: string, args?: string[]): Promise<void>;
  stopAll(): Promise<void>;
  /** Everything the nodes printed (or one node's), for debugging a failure. */
  logs(id?: string): string;
  /** How the node's last process ended, or undefined while it runs (or never ran). */
  lastExit(id: string): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The fields of every {"msg":"node serving"} line the node logged, one per start. */
  servingLines(id: string): Record<string, unknown>[];
  /**
   * Starts a new node that joins through seeds (`--seeds`, no `--members`): it learns the cluster from
   * a seed and stages its join; resolves once it is serving. Its id joins `ids`.
   */
  add(id: string, seeds: string[], opts?: AddOptions): Promise<void>;
  /** Resolves when the node's process has exited (at once if it is not running). */
  exited(id: string): Promise<void>;
}

interface NodeProc {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Every node process any cluster of this worker started and that has not exited yet. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: a test that forgot stopAll(), or a worker that is torn down, leaks nothing.
  const killAll = () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', killAll);
  // A worker stopped by a signal does not run 'exit' handlers: kill the nodes, then let the signal
  // do what it would have done (unless someone else handles it).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  ensureBuilt();
  installExitHook();
  const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const procs = new Map<string, NodeProc>();
  const logs = new Map<string, string>(ids.map((id) => [id, '']));
  const incarnation = new Map<string, number>(ids.map((id) => [id, 0]));
  const exits = new Map<string, { code: number | null; signal: NodeJS.Signals | null }>();
  const serving = new Map<string, Record<string, unknown>[]>(ids.map((id) => [id, []]));
  const dataDir = (id: string) => path.join(opts.dataRoot, id);

  const append = (id: string, text: string) => {
    const next = (logs.get(id) ?? '') + text;
    logs.set(id, next.length > logBytesMax ? next.slice(-logBytesMax) : next);
  };

  // How each node finds its cluster: the first ones by --members, added ones by --seeds.
  const membership = new Map<string, string[]>(ids.map((id) => [id, ['--members', ids.join(',')]]));
  const secret = opts.secret ?? testSecret();
  // Per node, when it differs from the cluster's (a test of a wrong or missing secret).
  const secrets = new Map<string, string | null>();
  const httpPorts = new Map<string, number>();
  const httpArgs = async (id: string): Promise<string[]> => {
    if (!opts.httpPorts) return [];
    if (!httpPorts.has(id)) httpPorts.set(id, await freePort());
    return ['--http-port', String(httpPorts.get(id))];
  };

  // The secret travels in the environment, never argv; whatever the test runner's environment held is dropped.
  const nodeEnv = (id: string): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: opts.natsUrl, RINGKV_CLUSTER: opts.cluster };
    delete env.RINGKV_CLUSTER_SECRET_FILE;
    delete env.RINGKV_CLUSTER_SECRET;
    const own = secrets.has(id) ? secrets.get(id)! : secret;
    if (own !== null) env.RINGKV_CLUSTER_SECRET = own;
    return env;
  };

  /** `once`: arguments for this start only (restart(id, args)). */
  const startNode = async (id: string, once: string[] = []): Promise<void> => {
    const extra = await httpArgs(id);
    return startNodeWith(id, [...extra, ...once]);
  };

  const startNodeWith = (id: string, extra: string[]): Promise<void> => {
    mkdirSync(dataDir(id), { recursive: true });
    const n = (incarnation.get(id) ?? 0) + 1;
    incarnation.set(id, n);
    append(id, `--- ${id} start #${n}\n`);
    const natsUrl = opts.natsUrlOf?.(id) ?? opts.natsUrl;
    const args = [
      opts.bin ?? ringkvBin,
      '--server',
      natsUrl,
      '--cluster',
      opts.cluster,
      'node',
      '--id',
      id,
      '--data',
      dataDir(id),
      ...membership.get(id)!,
      ...(opts.args ?? []),
      ...(opts.nodeArgs?.(id) ?? []),
      ...extra,
    ];
    const [command, ...prefix] = [...(opts.launcher?.(id) ?? []), process.execPath];
    const child = spawn(command!, [...prefix, ...args], {
      cwd: opts.bin ? path.dirname(path.dirname(opts.bin)) : repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...nodeEnv(id), NATS_URL: natsUrl },
    });
    live.add(child);
    exits.delete(id);
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        exits.set(id, { code, signal });
        append(id, `--- ${id} start #${n} exited: code ${String(code)}, signal ${String(signal)}\n`);
        resolve();
      }),
    );
    procs.set(id, { child, exited });

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let pending = '';
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`${id} did not log "node serving" within ${servingTimeoutMs} ms:\n${logs.get(id)}`)), servingTimeoutMs);
      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        append(id, chunk);
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.includes('"node serving"')) {
            try {
              serving.get(id)!.push(JSON.parse(line) as Record<string, unknown>);
            } catch {
              // not JSON after all; the log keeps it
            }
            finish();
          }
        }
      });
      child.stderr!.on('data', (chunk: string) => append(id, chunk));
      void exited.then(() => finish(new Error(`${id} exited before it was serving:\n${logs.get(id)}`)));
    });
  };

  const isRunning = (id: string) => {
    const p = procs.get(id);
    return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
  };

  const kill = async (id: string, signal: NodeJS.Signals = 'SIGKILL') => {
    const p = procs.get(id);
    if (!p || !isRunning(id)) return;
    p.child.kill(signal);
    await p.exited;
  };

  const signal = (id: string, sig: NodeJS.Signals) => {
    const p = procs.get(id);
    if (p && isRunning(id)) p.child.kill(sig);
  };

  const stop = async (id: string) => {
    const p = procs.get(id);
    if (!p || !isRunning(id)) return;
    p.child.kill('SIGTERM');
    // A paused node (SIGSTOP) handles the SIGTERM only once it runs again.
    p.child.kill('SIGCONT');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), stopGraceMs);
    await p.exited;
    clearTimeout(timer);
  };

  const stopAll = async () => {
    await Promise.all(ids.map(stop));
  };

  const cluster: Cluster = {
    ids,
    natsUrl: opts.natsUrl,
    cluster: opts.cluster,
    secret,
    httpPort: (id) => httpPorts.get(id),
    dataDir,
    isRunning,
    kill,
    signal,
    async restart(id, args) {
      await stop(id);
      await startNode(id, args);
    },
    stopAll,
    logs(id) {
      return (id === undefined ? ids : [id]).map((n) => logs.get(n) ?? '').join('');
    },
    lastExit: (id) => exits.get(id),
    servingLines: (id) => [...(serving.get(id) ?? [])],
    async add(id, seeds, addOpts) {
      if (addOpts?.secret !== undefined) secrets.set(id, addOpts.secret);
      if (membership.has(id)) throw new Error(`node ${id} is already part of this test cluster`);
      membership.set(id, ['--seeds', seeds.join(',')]);
      ids.push(id);
      logs.set(id, '');
      incarnation.set(id, 0);
      serving.set(id, []);
      await startNode(id);
    },
    async exited(id) {
      await procs.get(id)?.exited;
    },
  };

  try {
    await Promise.all(ids.map((id) => startNode(id)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return cluster;
}

let built = false;

/**
 * Makes sure dist/ holds a build at least as new as every .ts file of src/ and actors/. Runs once
 * per worker; parallel workers serialise on a lock directory and the later ones find dist fresh.
 */
export function ensureBuilt(): void {
  if (built) return;
  const lock = path.join(os.tmpdir(), `ringkv-build-${createHash('sha256').update(repoRoot).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + buildLockStaleMs + 30_000;
  for (;;) {
    if (isBuildFresh()) {
      built = true;
      return;
    }
    try {
      mkdirSync(lock);
    } catch {
      // Another worker is building: wait for it, unless its lock is stale (it died mid-build).
      try {
        if (Date.now() - statSync(lock).mtimeMs > buildLockStaleMs) rmSync(lock, { recursive: true, force: true });
      } catch {
        // the lock went away meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${lock}`);
      sleepSync(200);
      continue;
    }
    try {
      if (!isBuildFresh()) build();
      built = true;
      return;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

function build(): void {
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: repoRoot, encoding: 'utf8', timeout: 170_000 });
  // Type errors still emit JavaScript (noEmitOnError is off); only a missing CLI is fatal here.
  if (!existsSync(cliMain)) {
    throw new Error(`tsc did not produce ${cliMain} (status ${String(result.status)}):\n${result.stdout}\n${result.stderr}`);
  }
  if (result.status !== 0) {
    process.stderr.write(`test/support/cluster.ts: tsc reported errors; the nodes run what it emitted anyway:\n${result.stdout}\n`);
  }
}

function isBuildFresh(): boolean {
  if (!existsSync(cliMain)) return false;
  const builtAt = statSync(cliMain).mtimeMs;
  return newestSourceMtime([path.join(repoRoot, 'src'), path.join(repoRoot, 'actors')]) <= builtAt;
}

function newestSourceMtime(dirs: string[]): number {
  let newest = 0;
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
    }
  };
  dirs.forEach(walk);
  return newest;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Registers a beforeEach (in the calling describe block or file) that prints the nodes' output (its
 * last `maxChars`) when a test fails: a failure on real processes is seldom clear without it.
 */
export function printNodeOutputOnFailure(cluster: () => Cluster | undefined, maxChars = 100_000): void {
  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      const c = cluster();
      if (c) process.stderr.write(`\n===== node output for "${ctx.task.name}" =====\n${c.logs().slice(-maxChars)}\n`);
    });
  });
}
