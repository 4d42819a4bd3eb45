/**
 * The `ringkv` command (commander). Every command finds NATS the way the nats tooling does:
 * --server URL, else NATS_URL, else nats://127.0.0.1:4222. Output is a readable table, or JSON with
 * --json. Errors print `error CODE: sentence` on stderr.
 *
 * Exit codes (see exit-codes.ts; scripts depend on them):
 *   0  ok
 *   1  unexpected error
 *   2  usage or bad input (BAD_REQUEST, TOO_LARGE)
 *   3  NATS unreachable, or no ringkv node answers (NO_CLUSTER)
 *   4  not found
 *   5  UNAVAILABLE: too few replicas alive for the quorum
 *   6  TIMEOUT: the outcome is unknown (a write may or may not have taken effect)
 *   7  any other error code from the cluster (TOO_MANY_SIBLINGS, NOT_OWNER, OVERLOADED, INTERNAL)
 *   8  NATS refused the credentials (NATS_AUTH)
 *   9  the cluster secret is missing or unusable (NO_SECRET, BAD_SECRET), or a node wants it (UNAUTHENTICATED)
 *   10 another cluster with this name but another id answers on this NATS (CLUSTER_MISMATCH)
 *   11 ringkv node: this node left the cluster (a supervisor must not restart it)
 *   12 not permitted: NATS refused this user the subject (NATS_PERMISSION), or a kind on another role's subject (WRONG_SUBJECT)
 */
import { defaultLimits } from '../protocol/limits.js';
import type { DepartureStatus } from '../protocol/messages.js';
import { formatUnfinished, formatUptime } from './status-format.js';
import { addNatsAuthFlags } from './nats-auth-flags.js';
import { addClusterSecretFlag } from './cluster-secret-flag.js';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ApiStatusOk } from '../protocol/messages.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isValidPartitionCount, partitionCountDefault, partitionCountMax } from '../core/ring.js';
import { fallbackWaitMsDefault } from '../core/targets.js';
import { bytesText, operatorDefaults } from '../core/defaults.js';
import { packageRoot, resolveServerUrl } from '../server/local-cluster.js';
import { registerInspectCommands } from './inspect-command.js';
import { registerDemoCommand } from './demo-cart-command.js';
import { registerBenchCommand } from './bench-command.js';
import { registerBackupCommand } from './backup-command.js';
import { registerHintsCommand } from './hints-command.js';
import { registerTransfersCommand } from './transfers-command.js';
import { registerSimCommand } from './sim-command.js';
import { registerSimScaleCommand } from './sim-scale-command.js';
import { registerRingCommand } from './ring-command.js';
import { registerAaeCommand } from './aae-command.js';
import { registerClusterCommand } from './cluster-command.js';
import { exitCodeForError, exitCodes, exitCodesHelp, isNatsUnreachable, ringkvErrorCode } from './exit-codes.js';
import { describeValue, formatIdList, formatJson, formatTable, fromBase64, renderValue, toBase64 } from './output.js';

/** The largest value `put` reads from stdin; the cluster's own limit (1 MiB by default) is lower. */
const stdinBytesMax = 64 * 1024 * 1024;

interface GlobalOptions {
  server?: string;
  cluster: string;
  json?: boolean;
}

interface NodeCommandOptions {
  id: string;
  data: string;
  members?: string[];
  seeds?: string[];
  partitions: number;
  n: number;
  valueBytesMax?: number;
  keyStoredBytesMax?: number;
  requestTimeoutMs?: number;
  fallbackWaitMs?: number;
  fsync?: boolean;
  gossipRoundMs: number;
  handoffRateBytes?: number;
  httpPort?: number;
  httpHost: string;
  statelyInspect?: string;
  aaeIntervalMs?: number;
  aaeBytesPerSec?: number;
  aaeExchangesMax?: number;
  transfersMax?: number;
  transfersInboundMax?: number;
  transferRateBytes?: number;
  scrubRateBytes?: number;
  backupDir?: string;
  restoreFrom?: string;
  restoreOlderThanGrace?: boolean;
  reapIntervalMs?: number;
  reapGraceMs?: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

interface QuorumOptions {
  n?: number;
  r?: number;
  w?: number;
  pr?: number;
  pw?: number;
  sloppy?: boolean;
  via?: string;
  timeoutMs?: number;
  context?: Uint8Array;
}

/** A usage error found by a command itself; reported like commander's own (exit 2). */
class UsageError extends Error {}

/** An error the CLI itself finds that carries a ringkv error code (so it maps like the client's). */
class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function nonNegativeInt(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) throw new InvalidArgumentError(`${name} must be a whole number.`);
    return value;
  };
}

/** Names of client users for `up --secure-clients`: each a subject token of its inbox prefix (clientNamePattern, src/server/secure-nats.ts). */
function clientNames(text: string): string[] {
  const names = text.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const bad = names.find((n) => !/^[A-Za-z0-9-]{1,32}$/.test(n));
  if (names.length === 0 || bad !== undefined) throw new InvalidArgumentError(`client names are letters, digits and -, at most 32 each, comma separated${bad !== undefined ? ` (not ${JSON.stringify(bad)})` : ''}.`);
  return names;
}

function positiveInt(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`${name} must be a whole number of at least 1.`);
    }
    return value;
  };
}

function partitionCount(text: string): number {
  const value = positiveInt('partitions')(text);
  if (!isValidPartitionCount(value)) throw new InvalidArgumentError(`partitions must be a power of two from 1 to ${partitionCountMax}.`);
  return value;
}

function base64Context(text: string): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === undefined) throw new InvalidArgumentError('the context must be the base64 text that get or put printed.');
  return bytes;
}

function memberList(text: string): string[] {
  const members = text
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (members.length === 0) throw new InvalidArgumentError('members must be a comma-separated list of node ids.');
  if (new Set(members).size !== members.length) throw new InvalidArgumentError('members must not repeat a node id.');
  return members;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function write(text: string): void {
  process.stdout.write(text);
}

function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns : undefined;
}

async function readStdin(): Promise<Uint8Array> {
  if (process.stdin.isTTY) process.stderr.write('reading the value from stdin; end it with Ctrl-D\n');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > stdinBytesMax) throw new UsageError(`the value on stdin is larger than ${stdinBytesMax} bytes`);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function withClient<T>(globals: GlobalOptions, fn: (client: import('../client/client.js').RingkvClient) => Promise<T>): Promise<T> {
  // Loaded on demand so that `up`, `node` and `--help` do not pay for the NATS client.
  const { RingkvClient } = await import('../client/client.js');
  return withConnected(globals, (servers) => RingkvClient.connect({ servers, cluster: globals.cluster }), fn);
}

/** As withClient, for the admin operations (hints, transfers, backup): a ClusterAdmin. */
async function withAdmin<T>(globals: GlobalOptions, fn: (admin: import('../client/admin.js').ClusterAdmin) => Promise<T>): Promise<T> {
  const { ClusterAdmin } = await import('../client/admin.js');
  return withConnected(globals, (servers) => ClusterAdmin.connect({ servers, cluster: globals.cluster, timeoutMs: operatorDefaults.requestTimeoutMs }), fn);
}

/** Connects (NATS out of reach is NO_CLUSTER with a hint), runs `fn`, and closes again. */
async function withConnected<C extends { close(): Promise<void> }, T>(globals: GlobalOptions, open: (servers: string) => Promise<C>, fn: (c: C) => Promise<T>): Promise<T> {
  const servers = resolveServerUrl(globals.server);
  let client: C;
  try {
    client = await open(servers);
  } catch (err) {
    if (ringkvErrorCode(err) === undefined && isNatsUnreachable(err)) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new CliError('NO_CLUSTER', `cannot reach NATS at ${servers} (${reason}); start a cluster with npm start, or pass --server URL`);
    }
    throw err;
  }
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Only the options the user gave, so that the client applies its own defaults for the rest. */
function requestOptions(o: QuorumOptions, allowed: readonly (keyof QuorumOptions)[]): QuorumOptions {
  const out: QuorumOptions = {};
  for (const key of allowed) if (o[key] !== undefined) (out as Record<string, unknown>)[key] = o[key];
  return out;
}

/** `--sloppy true|false`: whether fallbacks count toward R and W. */
function booleanText(name: string) {
  return (text: string): boolean => {
    if (text === 'true') return true;
    if (text === 'false') return false;
    throw new InvalidArgumentError(`${name} must be true or false.`);
  };
}

/**
 * The client's per-request options. The defaults shown are the ones the client applies
 * (src/core/defaults.ts); the flags are passed on only when given.
 */
function addQuorumOptions(cmd: Command, which: { w: boolean; r: boolean; context: boolean }): Command {
  const d = operatorDefaults;
  if (which.context) cmd.option('--context <base64>', 'the context from an earlier get or put', base64Context);
  cmd.option('--n <n>', `replicas (default ${d.n})`, positiveInt('n'));
  if (which.r) {
    cmd.option('--r <r>', `read quorum (default ${d.r})`, positiveInt('r'));
    cmd.option('--pr <pr>', `primaries that must answer the read (default ${d.pr})`, nonNegativeInt('pr'));
  }
  if (which.w) {
    cmd.option('--w <w>', `write quorum (default ${d.w})`, positiveInt('w'));
    cmd.option('--pw <pw>', `primaries that must acknowledge the write (default ${d.pw})`, nonNegativeInt('pw'));
  }
  cmd.option('--sloppy <bool>', `fallbacks count toward the quorum: true or false (default ${d.sloppy})`, booleanText('sloppy'));
  cmd.option('--via <id>', 'this node coordinates the request (others only if it is gone); default: the key\'s first live node');
  cmd.option('--timeout-ms <ms>', `deadline of the request (default ${d.requestTimeoutMs})`, positiveInt('timeout-ms'));
  return cmd;
}

function buildProgram(json = false): Command {
  const program = new Command('ringkv');
  // With --json every error is one JSON object (reportError), so commander must not print its text;
  // set before the subcommands exist, which copy it.
  if (json) program.configureOutput({ outputError: () => undefined });
  program
    // Set before the subcommands exist, which copy it: usage errors throw, and map to exit 2.
    .exitOverride()
    .description('ringkv: a Dynamo-style key-value store on NATS')
    .version(packageVersion())
    .option('--server <url>', 'NATS server URL (default: $NATS_URL, else nats://127.0.0.1:4222)')
    .addOption(new Option('--cluster <name>', 'cluster name').env('RINGKV_CLUSTER').default('ringkv'))
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError(json ? false : '(run ringkv --help for usage)')
    .addHelpText('after', `\n${exitCodesHelp}\n`);
  addNatsAuthFlags(program);
  addClusterSecretFlag(program);

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();

  program
    .command('up')
    .description('start a local cluster: nats-server when none answers, and each node as its own process')
    .option('--nodes <count>', 'number of nodes', positiveInt('nodes'), 3)
    .option('--data <dir>', 'data directory (node nK uses <dir>/nK)', './data')
    .option('--partitions <q>', 'partitions of the ring (a power of two)', partitionCount, partitionCountDefault)
    .option('--http-port-base <port>', 'node nK serves its dashboard and /metrics on this port + K - 1 (0: none)', nonNegativeInt('http-port-base'), 8081)
    .option('--secure', 'start a nats-server of its own with users for nodes, admins and clients (nkeys kept in <data>/nats-secure)')
    .option('--secure-clients <names>', 'with --secure: more client users, comma separated, each with its own nkey and inbox (client-<name>.nk, _INBOX_client_<name>)', clientNames)
    .action(async (o: { nodes: number; data: string; partitions: number; httpPortBase: number; secure?: boolean; secureClients?: string[] }, cmd: Command) => {
      const g = globals(cmd);
      const { up } = await import('../server/local-cluster.js');
      const cluster = await up({
        nodes: o.nodes,
        dataDir: o.data,
        ...(g.server ? { server: g.server } : {}),
        cluster: g.cluster,
        partitions: o.partitions,
        ...(o.httpPortBase > 0 ? { httpPortBase: o.httpPortBase } : {}),
        ...(o.secure ? { secure: true as const } : {}),
        ...(o.secureClients ? { secureClients: o.secureClients } : {}),
        foreground: true,
      });
      process.exitCode = await cluster.stopped;
    });

  program
    .command('node')
    .description('run one node in this process')
    .requiredOption('--id <id>', 'this node id')
    .requiredOption('--data <dir>', 'data directory of this node')
    .option('--members <ids>', 'comma-separated node ids of a new cluster (each member forms the same first ring)', memberList)
    .option('--seeds <ids>', 'join an existing cluster through these members (comma-separated node ids); then plan and commit', memberList)
    .option('--partitions <q>', 'partitions of the ring (a power of two, fixed at cluster creation)', partitionCount, partitionCountDefault)
    .option('--n <n>', 'replicas per key', positiveInt('n'), operatorDefaults.n)
    .option('--value-bytes-max <bytes>', `largest value a put may carry (default ${bytesText(operatorDefaults.valueBytesMax)})`, positiveInt('value-bytes-max'))
    .option('--key-stored-bytes-max <bytes>', `largest stored size of one key with all its siblings; a put past it is TOO_LARGE (default ${bytesText(defaultLimits.keyStoredBytesMax)}, and at most half the NATS server's max_payload)`, positiveInt('key-stored-bytes-max'))
    .option('--request-timeout-ms <ms>', `default deadline of a client request (default ${operatorDefaults.requestTimeoutMs}); a graceful stop waits for the requests in flight at most this + ${operatorDefaults.stopDrainMarginMs} ms`, positiveInt('request-timeout-ms'))
    .option('--fallback-wait-ms <ms>', 'a replica silent this long is stood in for by the next node of the preference list, for that request (0: never)', nonNegativeInt('fallback-wait-ms'), fallbackWaitMsDefault)
    .option('--fsync', 'acknowledge a write only once it is on disk (default: once LMDB has committed it)')
    .option('--http-port <port>', 'serve /metrics, /livez, /readyz and /dashboard on this port (0: any free port, logged; default: no HTTP server)', nonNegativeInt('http-port'))
    .option('--http-host <host>', 'address the HTTP server listens on', '127.0.0.1')
    .option('--stately-inspect <ws-url>', 'stream the actors to the Stately inspector at this WebSocket URL (e.g. ws://127.0.0.1:8080; default: off)')
    .option('--gossip-round-ms <ms>', 'gossip round; a dead node is judged down after about five rounds', positiveInt('gossip-round-ms'), operatorDefaults.gossipRoundMs)
    .option('--handoff-rate-bytes <bytes>', `hinted handoff delivery limit in bytes per second (default ${bytesText(operatorDefaults.handoffRateBytesPerSec)})`, positiveInt('handoff-rate-bytes'))
    .option('--aae-interval-ms <ms>', `anti-entropy: a round of Merkle exchanges starts at most this often (default ${operatorDefaults.aaeIntervalMs})`, positiveInt('aae-interval-ms'))
    .option('--aae-bytes-per-sec <bytes>', `anti-entropy traffic limit of this node (default ${bytesText(operatorDefaults.aaeBytesPerSec)})`, positiveInt('aae-bytes-per-sec'))
    .option('--aae-exchanges-max <k>', `anti-entropy exchanges running at once on this node (default ${operatorDefaults.aaeExchangesMax})`, positiveInt('aae-exchanges-max'))
    .option('--transfers-max <k>', `ownership transfer: partitions this node hands over at once (default ${operatorDefaults.transfersMax})`, positiveInt('transfers-max'))
    .option('--transfers-inbound-max <k>', `ownership transfer: transfers this node takes at once; bounds the cluster-wide count (default ${operatorDefaults.transfersInboundMax})`, positiveInt('transfers-inbound-max'))
    .option('--transfer-rate-bytes <bytes>', `ownership transfer: bytes per second this node sends, all transfers together (default ${bytesText(operatorDefaults.transferRateBytesPerSec)})`, positiveInt('transfer-rate-bytes'))
    .option('--scrub-rate-bytes <bytes>', 'bytes of stored objects checked against their checksums per second; 0: no scrub (default 8 MiB)', nonNegativeInt('scrub-rate-bytes'))
    .option('--backup-dir <dir>', 'where `ringkv backup` may write this node\'s backups (default: backups/ beside the data directory)')
    .option('--restore-from <dir>', 'start from a backup (`ringkv backup`) into an empty data directory, with a new epoch; refused when the backup is older than the tombstone grace period')
    .option('--restore-older-than-grace', 'restore a backup older than the tombstone grace period anyway: values deleted since it was taken may come back')
    .option('--reap-interval-ms <ms>', `tombstone reaping: a sweep at most this often; 0: tombstones are kept (default ${operatorDefaults.reapIntervalMs})`, nonNegativeInt('reap-interval-ms'))
    .option('--reap-grace-ms <ms>', `tombstone reaping: how long a tombstone must be on every primary and nothing older anywhere before it goes; also the oldest backup a restore takes (default ${operatorDefaults.reapGraceMs})`, nonNegativeInt('reap-grace-ms'))
    .addOption(new Option('--log-level <level>', 'least severe log line to print').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .action(async (o: NodeCommandOptions, cmd: Command) => {
      const g = globals(cmd);
      // Loaded on demand: it pulls in LMDB and the actors, which the client commands do not need.
      const { runNodeProcess, ConfigError } = await import('../server/node-process.js');
      try {
        const end = await runNodeProcess({
          nodeId: o.id,
          dataDir: o.data,
          members: o.members ?? [],
          seeds: o.seeds,
          cluster: g.cluster,
          server: resolveServerUrl(g.server),
          partitions: o.partitions,
          n: o.n,
          valueBytesMax: o.valueBytesMax,
          keyStoredBytesMax: o.keyStoredBytesMax,
          requestTimeoutMs: o.requestTimeoutMs,
          fallbackWaitMs: o.fallbackWaitMs,
          fsync: o.fsync === true,
          gossipRoundMs: o.gossipRoundMs,
          handoffRateBytesPerSec: o.handoffRateBytes,
          httpPort: o.httpPort,
          httpHost: o.httpHost,
          statelyInspect: o.statelyInspect,
          aaeIntervalMs: o.aaeIntervalMs,
          aaeBytesPerSec: o.aaeBytesPerSec,
          aaeExchangesMax: o.aaeExchangesMax,
          transfersMax: o.transfersMax,
          transfersInboundMax: o.transfersInboundMax,
          transferRateBytesPerSec: o.transferRateBytes,
          scrubRateBytesPerSec: o.scrubRateBytes,
          backupDir: o.backupDir,
          restoreFrom: o.restoreFrom,
          restoreOlderThanGrace: o.restoreOlderThanGrace === true,
          reapIntervalMs: o.reapIntervalMs,
          reapGraceMs: o.reapGraceMs,
          logLevel: o.logLevel,
        });
        if (end.left) process.exitCode = exitCodes.nodeLeft;
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message);
        throw err;
      }
    });

  registerInspectCommands(program);
  registerBenchCommand(program);
  registerDemoCommand(program);
  registerHintsCommand(program, withAdmin);
  registerTransfersCommand(program, withAdmin);
  registerBackupCommand(program, withAdmin);
  registerSimCommand(program);
  registerSimScaleCommand(program);
  registerRingCommand(program, withClient);
  registerAaeCommand(program);

  addQuorumOptions(
    program
      .command('put')
      .description("store a value (from the argument, or stdin when it is omitted or '-'); prints the new context")
      .argument('<key>')
      .argument('[value]'),
    { w: true, r: false, context: true },
  ).action(async (key: string, value: string | undefined, o: QuorumOptions, cmd: Command) => {
    const g = globals(cmd);
    if (value === undefined && process.stdin.isTTY) throw new UsageError("give the value as an argument, or pipe it on stdin (or pass '-')");
    const bytes = value === undefined || value === '-' ? await readStdin() : new TextEncoder().encode(value);
    const { context } = await withClient(g, (c) => c.put(key, bytes, requestOptions(o, ['context', 'n', 'w', 'pw', 'sloppy', 'via', 'timeoutMs'])));
    if (g.json) write(formatJson({ key, stored: true, context: toBase64(context) }));
    else write(formatTable([['stored', key], ['context', toBase64(context)]]));
  });

  addQuorumOptions(program.command('get').description('read every sibling of a key and its context').argument('<key>'), {
    w: false,
    r: true,
    context: false,
  }).action(async (key: string, o: QuorumOptions, cmd: Command) => {
    const g = globals(cmd);
    const result = await withClient(g, (c) => c.get(key, requestOptions(o, ['n', 'r', 'pr', 'sloppy', 'via', 'timeoutMs'])));
    if (g.json) {
      write(formatJson({ key, found: result.found, values: result.values.map(renderValue), context: toBase64(result.context) }));
    } else if (!result.found) {
      process.stderr.write('not found\n');
    } else if (result.values.length === 1) {
      write(formatTable([['value', describeValue(result.values[0]!)], ['context', toBase64(result.context)]]));
    } else {
      const rows = result.values.map((v, i) => [`sibling ${i + 1}`, describeValue(v)]);
      write(formatTable([...rows, ['context', toBase64(result.context)]]));
      write(`${result.values.length} siblings: merge them, then put the result with this context\n`);
    }
    if (!result.found) process.exitCode = exitCodes.notFound;
  });

  addQuorumOptions(program.command('del').description('delete a key (pass the context of a get to delete what you read)').argument('<key>'), {
    w: true,
    r: true,
    context: true,
  }).action(async (key: string, o: QuorumOptions, cmd: Command) => {
    const g = globals(cmd);
    await withClient(g, (c) => c.delete(key, requestOptions(o, ['context', 'n', 'r', 'pr', 'w', 'pw', 'sloppy', 'via', 'timeoutMs'])));
    if (g.json) write(formatJson({ key, deleted: true }));
    else write(formatTable([['deleted', key]]));
  });

  program
    .command('status')
    .description('list the members of the cluster: liveness, membership status, ownership share, uptime, the ring version, tombstones kept and reaped')
    .action(async (_o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const { status, uptimes } = await withClient(g, async (c) => {
        const status = await c.status();
        // Each node reports its own start: asked directly, in parallel; a node that does not answer has none.
        const { ClusterAdmin } = await import('../client/admin.js');
        const admin = await ClusterAdmin.connect({ servers: resolveServerUrl(g.server), cluster: g.cluster, timeoutMs: 2_000 });
        try {
          const live = status.members;
          const answers = await Promise.all(live.map((m) => admin.status({ via: m.nodeId }).catch(() => undefined)));
          const uptimes = new Map<string, { startedAt?: number; ringVersion?: number; tombstones?: ApiStatusOk['tombstones']; departure?: DepartureStatus }>();
          answers.forEach((a, i) => uptimes.set(live[i]!.nodeId, { startedAt: a?.startedAt, ringVersion: a?.ringVersion, tombstones: a?.tombstones, ...(a?.departure ? { departure: a.departure } : {}) }));
          return { status, uptimes };
        } finally {
          await admin.close();
        }
      });
      const now = Date.now();
      const members = [...status.members].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
      if (g.json) {
        write(
          formatJson({
            ...status,
            members: members.map((m) => {
              const u = uptimes.get(m.nodeId);
              return {
                ...m,
                share: status.partitions === 0 ? 0 : m.partitions.length / status.partitions,
                uptimeMs: u?.startedAt === undefined ? null : now - u.startedAt,
                ringVersion: u?.ringVersion ?? null,
                tombstones: u?.tombstones ?? null,
                ...(u?.departure ? { departure: u.departure } : {}),
              };
            }),
          }),
        );
        return;
      }
      write(`cluster ${status.cluster}: ${members.length} member(s), ${status.partitions} partitions, N=${status.n}, ring version ${status.ringVersion ?? '?'} (as ${status.nodeId} sees it)\n`);
      // What clients should be given, so that they accept no other cluster of this name (README, Security).
      write(`cluster id ${status.clusterId ?? '?'} (give clients RINGKV_CLUSTER_ID=${status.clusterId ?? '?'})\n\n`);
      const rows = members.map((m) => {
        const u = uptimes.get(m.nodeId);
        const pct = status.partitions === 0 ? 0 : Math.round((m.partitions.length / status.partitions) * 1000) / 10;
        return [
          m.nodeId,
          m.state,
          `${m.status ?? 'valid'}${m.staged ? ` (${m.staged} staged)` : ''}`,
          `${m.partitions.length} (${pct}%)`,
          u?.startedAt === undefined ? '-' : formatUptime(now - u.startedAt),
          u?.ringVersion === undefined ? '-' : String(u.ringVersion),
          u?.tombstones === undefined ? '-' : `${u.tombstones.kept} / ${u.tombstones.reaped}`,
          formatIdList(m.partitions),
        ];
      });
      write(formatTable(rows, { header: ['MEMBER', 'STATE', 'STATUS', 'SHARE', 'UPTIME', 'RING', 'TOMBSTONES KEPT / REAPED', 'PARTITIONS'], width: terminalWidth() }));
      const departed = status.departed ?? [];
      if (departed.length > 0) write(`\ndeparted: ${departed.map((d) => `${d.nodeId} (${d.status})`).join(', ')}\n`);
      const unfinished = formatUnfinished(members, (id) => uptimes.get(id)?.departure);
      if (unfinished) write(`\n${unfinished}`);
    });

  registerClusterCommand(program);

  return program;
}


/** What went wrong, for a person (text) or, with --json, for a program. */
interface ErrorReport {
  /** A ringkv error code (BAD_REQUEST, TIMEOUT, ...), USAGE for a command line it could not take, or UNEXPECTED. */
  code: string;
  message: string;
  exitCode: number;
  needed?: number;
  alive?: number;
}

function errorReport(err: unknown): ErrorReport | undefined {
  if (err instanceof CommanderError) {
    // Help and version requests exit 0. A command's own cmd.error() chose its exit code; everything
    // else commander rejects (unknown option, missing argument, bad value) is a usage error.
    if (err.exitCode === 0) return undefined;
    const message = err.message.replace(/^error: /, '');
    return { code: 'USAGE', message, exitCode: err.code === 'commander.error' ? err.exitCode : exitCodes.usage };
  }
  if (err instanceof UsageError) return { code: 'USAGE', message: err.message, exitCode: exitCodes.usage };
  const exitCode = (err as { exitCode?: unknown; name?: unknown }).exitCode;
  if ((err as { name?: unknown }).name === 'LocalClusterError' && typeof exitCode === 'number') {
    return { code: 'UNEXPECTED', message: (err as Error).message, exitCode };
  }
  const code = ringkvErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code !== undefined) {
    const { needed, alive } = err as { needed?: number; alive?: number };
    return { code, message, exitCode: exitCodeForError(err), ...(needed !== undefined ? { needed } : {}), ...(alive !== undefined ? { alive } : {}) };
  }
  return { code: 'UNEXPECTED', message: err instanceof Error && err.stack ? err.stack : message, exitCode: exitCodeForError(err) };
}

/** Writes the error to stderr (one JSON object with --json) and returns the exit code. */
function reportError(err: unknown, json: boolean): number {
  const r = errorReport(err);
  if (r === undefined) return exitCodes.ok;
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: r })}\n`);
  } else if (err instanceof CommanderError) {
    // commander has printed its own message (and the usage hint) already.
  } else if (r.code === 'USAGE' || r.code === 'UNEXPECTED') {
    process.stderr.write(`error: ${r.message}\n`);
  } else {
    const quorum = r.code === 'UNAVAILABLE' && r.needed !== undefined && !/needed/.test(r.message) ? ` (needed ${r.needed}, alive ${r.alive ?? '?'})` : '';
    process.stderr.write(`error ${r.code}: ${r.message}${quorum}\n`);
  }
  return r.exitCode;
}

async function main(argv: readonly string[]): Promise<number> {
  // Known before commander parses anything, so that even a usage error comes out as JSON.
  const json = argv.slice(2).includes('--json');
  const program = buildProgram(json);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : exitCodes.ok;
  } catch (err) {
    return reportError(err, json);
  }
}

// Exits explicitly: a NATS connection or timer left behind must not keep a finished command alive.
const code = await main(process.argv);
// process.exit does not wait for a pipe to take what was written (a large --json answer was cut at
// 64 KiB): an empty write's callback runs once everything written before it is handed over.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
process.exit(code);
