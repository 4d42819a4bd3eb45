/**
 * The local cluster launcher behind `ringkv up`: finds NATS the way the nats tooling does (--server,
 * else NATS_URL, else nats://127.0.0.1:4222), starts a nats-server there when nothing answers on a
 * loopback address, then runs each ringkv node as its own process (`ringkv node ...`), prefixing
 * their output with the node id. Ctrl-C (or SIGTERM, SIGHUP) stops every process it started: the
 * nodes first, so that they leave NATS cleanly, then the nats-server; each gets SIGTERM, then SIGKILL
 * after a grace period. A node that dies is reported and the others keep running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { clusterSecretFileVariable, ensureClusterSecretFile, findClusterSecret, requireClusterSecret, sealKeyOf } from './cluster-secret.js';
import { mkdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isValidPartitionCount, partitionCountMax } from '../core/ring.js';
import { natsEnvironmentVariables } from '../adapters/nats/connection-options.js';
import { ensureSecureNats, type SecureNats } from './secure-nats.js';
import { packageRoot } from './package-root.js';

export { packageRoot } from './package-root.js';

export const natsUrlDefault = 'nats://127.0.0.1:4222';
export const natsPortDefault = 4222;
/** How long a TCP probe of the NATS address may take before we call it silent. */
export const natsProbeTimeoutMs = 1000;
/** How long a nats-server we started may take to accept connections. */
export const natsStartTimeoutMs = 10_000;
/** Between SIGTERM and SIGKILL when stopping a process we started. */
export const stopGraceMs = 5000;
/** The most nodes `up` runs on one machine. */
export const nodesMax = 32;

export interface UpOptions {
  nodes: number;
  dataDir: string;
  /** The --server flag, if given; NATS_URL and the default are used otherwise. */
  server?: string;
  cluster: string;
  partitions: number;
  /**
   * Run as the foreground program: print the banner, stop on SIGINT/SIGTERM/SIGHUP. Without it the
   * caller stops the cluster with `stop()` (as tests do).
   */
  foreground?: true;
  /** Discard the processes' output (a demo or a bench prints its own report instead). */
  quiet?: true;
  /** Extra arguments for every `ringkv node` (for example a shorter gossip round). */
  nodeArgs?: string[];
  /** Node nK serves /metrics, /readyz and the dashboard on loopback port httpPortBase + K - 1. */
  httpPortBase?: number;
  /**
   * Start its own nats-server with users for nodes, admins and clients and their permissions
   * (src/server/secure-nats.ts), nkeys kept in <dataDir>/nats-secure; nodes get the node seed's
   * path through NATS_NKEY and their inbox prefix through RINGKV_INBOX_PREFIX. Refused when a
   * server already answers at the address.
   */
  secure?: true;
  /** With `secure`: client users of their own besides the shared one, by name (seed client-<name>.nk, inbox prefix _INBOX_client_<name>). */
  secureClients?: string[];
}

export interface LocalCluster {
  /** The NATS URL the nodes use. */
  natsUrl: string;
  /** Whether this launcher started the nats-server (and so will stop it). */
  natsStarted: boolean;
  /** Absolute data directory; node nK keeps its data in <dataDir>/nK. */
  dataDir: string;
  nodeIds: string[];
  /** Stops every process this launcher started. Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal to one node (SIGKILL by default) and waits for it to exit (demos, fault runs). */
  kill(nodeId: string, signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal to one node without waiting (SIGSTOP and SIGCONT for a paused node). */
  signal(nodeId: string, signal: NodeJS.Signals): void;
  /** Starts a node that has exited again, on its data directory, with the arguments it had. */
  restart(nodeId: string): Promise<void>;
  /**
   * Settles once everything has stopped, with the exit code for the launcher: 0 after a requested
   * stop, 1 when every node had died on its own.
   */
  stopped: Promise<number>;
  /** The processes running now that this launcher started (nodes, and the nats-server if it started one). */
  processes(): { label: string; pid: number; isNode: boolean }[];
  /** With `secure`: the configuration and the nkey seed file of each role. */
  secure?: SecureNats;
}

/** A failure that ends `up` with a message for people and an exit code (3: NATS is the problem). */
export class LocalClusterError extends Error {
  override readonly name = 'LocalClusterError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * The NATS URL to use, by the precedence of the nats tooling: the --server flag, else the NATS_URL
 * environment variable, else nats://127.0.0.1:4222. Empty values count as absent.
 */
export function resolveServerUrl(flag: string | undefined, env: { NATS_URL?: string | undefined } = process.env): string {
  const fromFlag = flag?.trim();
  if (fromFlag) return fromFlag;
  const fromEnv = env.NATS_URL?.trim();
  if (fromEnv) return fromEnv;
  return natsUrlDefault;
}

/**
 * Host and port of the first server of a NATS URL list ("nats://h:4222,nats://h2:4222", or bare
 * "h:4222" or "h" as the nats tooling accepts). IPv6 hosts come back without brackets.
 */
export function natsAddress(url: string): { host: string; port: number } {
  const first = url.split(',')[0]!.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(first) ? first : `nats://${first}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new LocalClusterError(`"${url}" is not a NATS URL (expected nats://host:port)`, 2);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = parsed.port ? Number(parsed.port) : natsPortDefault;
  return { host, port };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * What answers at host:port: 'nats' when the peer greets with the NATS INFO line, 'other' when it
 * accepts the connection but does not, 'none' when nothing accepts within the timeout.
 */
export function probeNats(host: string, port: number, timeoutMs = natsProbeTimeoutMs): Promise<'nats' | 'other' | 'none'> {
  return new Promise((resolvePromise) => {
    let connected = false;
    let settled = false;
    const socket = connect({ host, port });
    const finish = (result: 'nats' | 'other' | 'none') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(result);
    };
    const timer = setTimeout(() => finish(connected ? 'other' : 'none'), timeoutMs);
    socket.once('connect', () => (connected = true));
    socket.once('data', (chunk: Buffer) => finish(chunk.subarray(0, 4).toString('latin1') === 'INFO' ? 'nats' : 'other'));
    socket.once('error', () => finish(connected ? 'other' : 'none'));
    socket.once('close', () => finish(connected ? 'other' : 'none'));
  });
}

/** The nats-server binary: on the PATH, or where packages put it (Debian puts it in /usr/sbin). */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export const natsInstallHelp = `Install nats-server, then run this again:
  Debian or Ubuntu:  sudo apt-get install nats-server
  macOS:             brew install nats-server
  elsewhere:         a release binary from https://github.com/nats-io/nats-server/releases, on your PATH
Or use a NATS server that runs elsewhere: --server nats://host:4222 or NATS_URL.`;

const ansi = { reset: '\x1b[0m', dim: '\x1b[2m', bold: '\x1b[1m' };
const labelColours = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m', '\x1b[91m'];

/** The local cluster's secret file, in its data directory. */
export const clusterSecretFileName = 'cluster.secret';

interface Managed {
  label: string;
  child: ChildProcess;
  isNode: boolean;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a local cluster; see the module comment. Throws LocalClusterError for people-facing failures. */
export async function up(opts: UpOptions): Promise<LocalCluster> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > nodesMax) {
    throw new LocalClusterError(`--nodes must be a whole number from 1 to ${nodesMax}, not ${opts.nodes}`, 2);
  }
  if (!isValidPartitionCount(opts.partitions)) {
    throw new LocalClusterError(`--partitions must be a power of two from 1 to ${partitionCountMax}, not ${opts.partitions}`, 2);
  }
  const root = packageRoot();
  const binPath = join(root, 'bin', 'ringkv.js');
  const natsConf = join(root, 'infra', 'nats-server.conf');
  const dataDir = resolve(opts.dataDir);
  const natsUrl = resolveServerUrl(opts.server);
  const { host, port } = natsAddress(natsUrl);

  const colour = opts.foreground && process.stdout.isTTY && !process.env.NO_COLOR;
  const nodeIds = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const labelWidth = Math.max(4, ...nodeIds.map((id) => id.length));
  const say = (text: string) => void (opts.quiet || process.stdout.write(colour ? `${ansi.bold}ringkv${ansi.reset} ${text}\n` : `ringkv ${text}\n`));
  const managed: Managed[] = [];
  /** What node processes get: this environment, plus the local cluster's secret file when it has none. */
  let baseEnv: NodeJS.ProcessEnv = process.env;

  const pipeOutput = (label: string, index: number, child: ChildProcess) => {
    const prefix = colour
      ? `${labelColours[index % labelColours.length]}${label.padEnd(labelWidth)}${ansi.reset} ${ansi.dim}|${ansi.reset} `
      : `${label.padEnd(labelWidth)} | `;
    for (const [stream, sink] of [
      [child.stdout, process.stdout],
      [child.stderr, process.stderr],
    ] as const) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => sink.write(prefix + line + '\n'));
    }
  };

  // A secured cluster: its nodes authenticate with the node nkey, whatever the launcher's own NATS
  // environment says (the seed's path travels in the environment; the seed stays in its 0600 file).
  const secure = opts.secure ? ensureSecureNats(join(dataDir, 'nats-secure'), opts.cluster, opts.secureClients ?? []) : undefined;
  const nodeEnv = (): NodeJS.ProcessEnv => {
    if (!secure) return baseEnv;
    const env = { ...baseEnv };
    for (const name of Object.values(natsEnvironmentVariables)) if (name !== 'NATS_URL') delete env[name];
    // Nodes' own requests (the cluster probe, the dashboard's questions to other nodes) are answered
    // in the node inbox family, the only one the node user may subscribe to.
    return { ...env, NATS_NKEY: secure.seeds.node, RINGKV_INBOX_PREFIX: secure.inboxPrefixes.node };
  };

  const launch = (label: string, index: number, command: string, args: string[], isNode: boolean): Managed => {
    // Own process group: a terminal's Ctrl-C reaches only the launcher, which stops the nodes before
    // the nats-server they depend on.
    const child = spawn(command, args, { stdio: opts.quiet ? 'ignore' : ['ignore', 'pipe', 'pipe'], detached: true, env: isNode ? nodeEnv() : process.env });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (err) => {
        process.stderr.write(`${label}: could not start ${command}: ${err.message}\n`);
        done({ code: null, signal: null });
      });
    });
    pipeOutput(label, index, child);
    const entry = { label, child, isNode, exit };
    managed.push(entry);
    return entry;
  };

  // NATS: use what answers, or start a nats-server on a loopback address.
  let natsStarted = false;
  const found = await probeNats(host, port);
  if (secure && found !== 'none') {
    throw new LocalClusterError(`--secure starts its own nats-server, but one already answers at ${host}:${port}; stop it or pass --server with a free port`, 3);
  }
  if (found === 'other') {
    throw new LocalClusterError(`something that is not a NATS server answers at ${host}:${port}; free the port or pass --server URL`, 3);
  }
  if (found === 'none') {
    if (!isLoopbackHost(host)) {
      throw new LocalClusterError(`no NATS server answers at ${natsUrl}; start one there, or pass --server URL (or set NATS_URL)`, 3);
    }
    const natsBin = findNatsServer();
    if (!natsBin) throw new LocalClusterError(`no NATS server answers at ${natsUrl}, and nats-server is not installed.\n${natsInstallHelp}`, 3);
    const listenHost = host === 'localhost' ? '127.0.0.1' : host;
    const nats = launch('nats', labelColours.length - 1, natsBin, ['-c', secure ? secure.config : natsConf, '-a', listenHost, '-p', String(port)], false);
    natsStarted = true;
    const ready = await waitForNats(host, port, nats);
    if (!ready) {
      await stopAll(managed);
      throw new LocalClusterError(`the nats-server started for ${natsUrl} did not become ready (see its output above)`, 3);
    }
  }

  mkdirSync(dataDir, { recursive: true });
  // The cluster secret: the one the environment names (flag or variable), else the local cluster's
  // own file in the data directory, made at its first start (mode 0600) and kept, so a restart finds
  // the same cluster id its nodes stored. Nodes get it through their environment, never argv.
  if (findClusterSecret(process.env) === undefined) {
    const secretFile = join(dataDir, clusterSecretFileName);
    const { created } = ensureClusterSecretFile(secretFile);
    baseEnv = { ...process.env, [clusterSecretFileVariable]: secretFile };
    say(`${created ? 'made the cluster secret' : 'cluster secret'}: ${secretFile} (admin tools: --cluster-secret-file ${secretFile})`);
  }
  // The id the secret gives this cluster name: what clients are given to accept no other.
  const clusterId = sealKeyOf(requireClusterSecret(baseEnv, 'ringkv up').secret, opts.cluster).clusterId;
  const members = nodeIds.join(',');
  const nodeArgs = (id: string, i: number) => {
    // RINGKV_NODE_EXEC_ARGV: Node options for the nodes alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
    // to profile them under `ringkv bench --local` (NODE_OPTIONS does not allow --cpu-prof).
    const execArgv = (process.env.RINGKV_NODE_EXEC_ARGV ?? '').split(' ').filter((a) => a !== '');
    const args = [...execArgv, binPath, 'node', '--id', id, '--data', join(dataDir, id), '--members', members];
    args.push('--cluster', opts.cluster, '--server', natsUrl, '--partitions', String(opts.partitions), ...(opts.nodeArgs ?? []));
    if (opts.httpPortBase !== undefined) args.push('--http-port', String(opts.httpPortBase + i));
    return args;
  };
  for (const [i, id] of nodeIds.entries()) launch(id, i, process.execPath, nodeArgs(id, i), true);

  let stopping: Promise<void> | undefined;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((done) => (resolveStopped = done));
  let stopExitCode = 0;
  const stop = () => {
    stopping ??= stopAll(managed).then(() => resolveStopped(stopExitCode));
    return stopping;
  };

  const watch = (entry: Managed) => {
    void entry.exit.then(({ code, signal }) => {
      if (stopping) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      if (entry.isNode) {
        const alive = managed.filter((m) => m.isNode && m.child.exitCode === null && m.child.signalCode === null);
        if (alive.length > 0) {
          say(`node ${entry.label} ${how} unexpectedly; ${alive.length} other node(s) keep running`);
        } else {
          say(`node ${entry.label} ${how} unexpectedly, and no node is left running; stopping`);
          stopExitCode = 1;
          void stop();
        }
      } else {
        say(`nats-server ${how} unexpectedly; the nodes cannot reach each other until a NATS server answers at ${natsUrl}`);
      }
    });
  };
  for (const entry of managed) watch(entry);

  // If the launcher itself ends abruptly, take its children with it rather than leave them orphaned.
  const killOnExit = () => {
    for (const m of managed) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void stopped.then(() => process.removeListener('exit', killOnExit));

  if (opts.foreground) {
    let signalled = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signalled++;
      if (signalled === 1) {
        const running = managed.filter((m) => m.isNode && m.child.exitCode === null && m.child.signalCode === null).length;
        say(`${signal}: stopping ${running} node(s)${natsStarted ? ' and nats-server' : ''} (again to kill at once)`);
        void stop();
      } else {
        killOnExit();
      }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    void stopped.then(() => {
      for (const s of signals) process.removeListener(s, onSignal);
    });
    printBanner({ say: (t) => process.stdout.write(t), natsUrl, natsStarted, dataDir, nodeIds, opts, colour: Boolean(colour), secure, clusterId });
  }

  // A restarted node has a newer entry than its dead one: the last entry of a label is the node now.
  const current = (nodeId: string): Managed => {
    const entry = managed.filter((m) => m.isNode && m.label === nodeId).at(-1);
    if (!entry) throw new LocalClusterError(`no node ${nodeId} in this cluster`, 2);
    return entry;
  };
  const isRunning = (m: Managed) => m.child.exitCode === null && m.child.signalCode === null;

  const kill = async (nodeId: string, signal: NodeJS.Signals = 'SIGKILL') => {
    const entry = current(nodeId);
    if (isRunning(entry)) entry.child.kill(signal);
    await entry.exit;
  };

  const signal = (nodeId: string, sig: NodeJS.Signals) => {
    const entry = current(nodeId);
    if (isRunning(entry)) entry.child.kill(sig);
  };

  const restart = async (nodeId: string) => {
    const entry = current(nodeId);
    if (stopping) throw new LocalClusterError(`the cluster is stopping; ${nodeId} is not restarted`, 2);
    if (isRunning(entry)) throw new LocalClusterError(`node ${nodeId} is still running`, 2);
    const i = nodeIds.indexOf(nodeId);
    watch(launch(nodeId, i, process.execPath, nodeArgs(nodeId, i), true));
  };

  const processes = () =>
    managed.filter((m) => isRunning(m) && m.child.pid !== undefined).map((m) => ({ label: m.label, pid: m.child.pid!, isNode: m.isNode }));

  return { natsUrl, natsStarted, dataDir, nodeIds, stop, kill, signal, restart, stopped, processes, ...(secure ? { secure } : {}) };
}

async function waitForNats(host: string, port: number, nats: Managed): Promise<boolean> {
  const deadline = Date.now() + natsStartTimeoutMs;
  let exited = false;
  void nats.exit.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    if ((await probeNats(host, port, 250)) === 'nats') return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Stops the nodes, then everything else; each gets SIGTERM, then SIGKILL after the grace period. */
async function stopAll(managed: readonly Managed[]): Promise<void> {
  await Promise.all(managed.filter((m) => m.isNode).map(stopOne));
  await Promise.all(managed.filter((m) => !m.isNode).map(stopOne));
}

async function stopOne(m: Managed): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null || m.child.pid === undefined) return;
  m.child.kill('SIGTERM');
  // A node paused with SIGSTOP (a fault run) handles the SIGTERM only once it runs again.
  m.child.kill('SIGCONT');
  const timer = setTimeout(() => m.child.kill('SIGKILL'), stopGraceMs);
  await m.exit;
  clearTimeout(timer);
}

function printBanner(b: {
  say: (text: string) => void;
  natsUrl: string;
  natsStarted: boolean;
  dataDir: string;
  nodeIds: string[];
  opts: UpOptions;
  colour: boolean;
  secure: SecureNats | undefined;
  clusterId: string;
}): void {
  // The examples carry the flags a user gave, so that they work when pasted into another shell.
  const flags = [b.opts.server ? `--server ${b.natsUrl}` : '', b.opts.cluster !== 'ringkv' ? `--cluster ${b.opts.cluster}` : '']
    .filter(Boolean)
    .join(' ');
  const base = (role: 'client' | 'admin') =>
    [flags, b.secure ? `--nkey ${b.secure.seeds[role]} --inbox-prefix ${b.secure.inboxPrefixes[role]}` : ''].filter(Boolean).join(' ');
  const cmd = (rest: string, role: 'client' | 'admin' = 'client') => `npx ringkv ${base(role) ? base(role) + ' ' : ''}${rest}`;
  const bold = (t: string) => (b.colour ? `${ansi.bold}${t}${ansi.reset}` : t);
  b.say(
    [
      '',
      bold(`ringkv: local cluster "${b.opts.cluster}", ${b.nodeIds.length} node(s) (${b.nodeIds.join(', ')}), ${b.opts.partitions} partitions`),
      `  NATS     ${b.natsUrl}${b.natsStarted ? ' (nats-server started here)' : ' (already running)'}`,
      `  data     ${b.dataDir}`,
      `  id       ${b.clusterId} (clients: RINGKV_CLUSTER_ID=${b.clusterId}, or clusterId in the client's options: they then accept no other cluster)`,
      `  try      ${cmd(`put cart:1 '{"items":["a"]}'`)}`,
      `           ${cmd('get cart:1')}`,
      `           ${cmd('status')}`,
      ...(b.secure
        ? [
            `  secure   users for nodes, admins, clients and readers (${b.secure.config}); a client may only get, put, del and read status, a reader only get and status`,
            `  admin    ${cmd('cluster plan', 'admin')}`,
            `           (or export NATS_NKEY=${b.secure.seeds.admin} RINGKV_INBOX_PREFIX=${b.secure.inboxPrefixes.admin};`,
            `            clients: NATS_NKEY=${b.secure.seeds.client} RINGKV_INBOX_PREFIX=${b.secure.inboxPrefixes.client};`,
            `            read-only: NATS_NKEY=${b.secure.seeds.reader} RINGKV_INBOX_PREFIX=${b.secure.inboxPrefixes.reader})`,
            ...Object.entries(b.secure.clients).map(([name, c]) => `  client   ${name}: --nkey ${c.seed} --inbox-prefix ${c.inboxPrefix}`),
          ]
        : []),
      ...(b.opts.httpPortBase !== undefined
        ? [`  web      http://127.0.0.1:${b.opts.httpPortBase}/dashboard (node ${b.nodeIds[0]}; /metrics, /readyz; the other nodes on the ports after it)`]
        : []),
      `  stop     Ctrl-C`,
      '',
      '',
    ].join('\n'),
  );
}
