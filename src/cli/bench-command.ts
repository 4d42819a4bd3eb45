/**
 * `ringkv bench`: runs a YCSB workload (a, b, c), the cart read-merge-write or puts only (update)
 * against ringkv or, with --target nats-kv, against a NATS JetStream KV bucket with the identical
 * workload, and reports ops/s and p50/p99/p99.9 latency per operation for each concurrency level: a
 * table per level, or JSON with --json. It says which durability mode ran. A progress bar shows on
 * stderr when stderr is a terminal.
 *
 *   ringkv bench --local                             a throwaway 3-node cluster, stopped at the end
 *   ringkv --server nats://h:4222 bench              a running cluster (its --cluster name)
 *   ringkv bench --target nats-kv                    a throwaway 3-server JetStream cluster
 *   ringkv bench --target nats-kv --kv-server URL    an existing JetStream cluster
 *   ringkv bench --local --fault kill-node@10s       kill a node 10 s into the run, restart it 20 s
 *                                                    later, and report gaps, phases and durability
 */
import { availableParallelism } from 'node:os';
import { formatCpuSplit } from '../bench/cpu-split.js';
import { formatAnatomy } from '../bench/anatomy.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { faultForMsDefault, FaultSpecError, parseFaultSpec, type FaultReport, type FaultSpec } from '../bench/fault.js';
import { prepareFault, type PreparedFault } from '../bench/fault-session.js';
import { openNatsKvTargetIfInstalled } from '../bench/nats-kv-loader.js';
import { originalWriters, type Writers } from '../bench/output-diversion.js';
import { ProgressBar } from '../bench/progress.js';
import { localNodesDefault, localNodesMax, openRingkvTarget } from '../bench/ringkv-target.js';
import { formatMemory } from './bench-memory-output.js';
import type { NodeMemoryReading } from '../bench/memory.js';
import { describeMachine, loadConcurrencyDefault, runBench, type BenchReport, type LatencySummary, type LevelResult, type LoadResult } from '../bench/runner.js';
import { targetNames, type BenchTarget, type TargetName } from '../bench/target.js';
import { isWorkloadName, workloadNames, type OpName, type WorkloadName } from '../bench/workload.js';
import { recordCountMax, type Distribution } from '../bench/zipfian.js';
import { formatFaultReport } from './bench-fault-format.js';
import { formatJson, formatTable } from './output.js';

/** The most workers one concurrency level may run. */
export const concurrencyMax = 4096;
/** The most concurrency levels one run may have. */
export const levelsMax = 32;
/** The largest value the bench writes. */
export const valueBytesMax = 1024 * 1024;
/** The longest duration or warm-up a level may have. */
export const durationMsMax = 3_600_000;

export interface BenchCommandOptions {
  target: TargetName;
  local?: boolean;
  kvServer?: string;
  workload: WorkloadName;
  records: number;
  valueBytes: number;
  distribution: Distribution;
  concurrency: number[];
  duration: number;
  warmup: number;
  n: number;
  r: number;
  w: number;
  seed: number;
  json?: boolean;
  memory?: boolean;
  loadConcurrency?: number;
  fsync?: boolean;
  /** --local: nodes of the cluster the bench starts. */
  nodes?: number;
  server?: string;
  cluster?: string;
  /** --fault kill-node@10s[+20s] or pause-node@... */
  fault?: FaultSpec;
  /** --fault-node: which node to fault (default: the target's choice). */
  faultNode?: string;
}

/** Where the command writes; tests pass their own. */
export interface BenchIo extends Writers {
  /** Whether stderr is a terminal (the progress bar shows only then). */
  errIsTTY: boolean;
  columns(): number | undefined;
}

function wholeNumber(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return value;
  };
}

/** "10s", "500ms", "2m", "1.5s", or a bare number of seconds, in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m) throw new InvalidArgumentError('a duration is a number with ms, s or m (such as 10s or 500ms).');
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms > durationMsMax) throw new InvalidArgumentError(`a duration may be at most ${durationMsMax / 60_000} minutes.`);
  return Math.round(ms);
}

/** --fault's value, with the parser's message as commander's error. */
export function parseFaultOption(text: string): FaultSpec {
  try {
    return parseFaultSpec(text);
  } catch (err) {
    if (err instanceof FaultSpecError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** "1,16,128" as [1, 16, 128]. */
export function parseConcurrencyList(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.length > levelsMax || parts.some((p) => p === '')) {
    throw new InvalidArgumentError(`concurrency is a comma-separated list of 1 to ${levelsMax} whole numbers, such as 1,16,128.`);
  }
  return parts.map(wholeNumber('each concurrency', 1, concurrencyMax));
}

function defaultIo(): BenchIo {
  return { ...originalWriters(), errIsTTY: process.stderr.isTTY === true, columns: () => process.stderr.columns };
}

export function registerBenchCommand(program: Command, io: BenchIo = defaultIo()): Command {
  const cmd = program
    .command('bench')
    .description('measure throughput and latency with a YCSB workload, against ringkv or NATS JetStream KV')
    .addOption(new Option('--target <name>', 'what to measure').choices(targetNames).default('ringkv'))
    .option('--local', 'ringkv: start a throwaway cluster (--nodes) on a free port for the run, and stop it after')
    .option('--nodes <count>', 'ringkv --local: nodes of the cluster the bench starts', wholeNumber('nodes', 1, localNodesMax), localNodesDefault)
    .option('--kv-server <url>', 'nats-kv: an existing JetStream cluster (without it the bench starts 3 nats-servers)')
    .addOption(new Option('--workload <name>', 'a (50% read, 50% update), b (95/5), c (read only), cart (read, merge, write back), update (puts only)').choices(workloadNames).default('a'))
    .option('--records <count>', 'records loaded before the run', wholeNumber('records', 1, recordCountMax), 1000)
    .option('--value-bytes <bytes>', 'size of every value written', wholeNumber('value-bytes', 1, valueBytesMax), 100)
    .addOption(new Option('--distribution <name>', "key choice: YCSB's scrambled zipfian (0.99) or uniform").choices(['zipfian', 'uniform']).default('zipfian'))
    .option('--concurrency <list>', 'requests in flight, one level or a list (one run per level)', parseConcurrencyList, [1, 16, 128])
    .option('--duration <time>', 'measured time per level (10s, 500ms, 2m)', parseDuration, 10_000)
    .option('--warmup <time>', 'unmeasured time before each level', parseDuration, 2_000)
    .option('--n <n>', 'ringkv: replicas; nats-kv: the bucket replicas', wholeNumber('n', 1, 7), 3)
    .option('--r <r>', 'ringkv: read quorum', wholeNumber('r', 1, 7), 2)
    .option('--w <w>', 'ringkv: write quorum', wholeNumber('w', 1, 7), 2)
    .option('--fsync', 'ringkv --local: run the nodes with --fsync (an ack means on disk; the report says which mode ran)')
    .option('--memory', "ringkv: report each node's JavaScript heap and RSS after the load and at the end")
    .option('--load-concurrency <count>', 'requests in flight while loading the records', wholeNumber('load-concurrency', 1, concurrencyMax), loadConcurrencyDefault)
    .option('--seed <seed>', 'seed of the key, operation and value choices', wholeNumber('seed', 0, 2 ** 32 - 1), 1)
    .option(
      '--fault <spec>',
      `kill-node@TIME[+FOR] (SIGKILL, then restart) or pause-node@TIME[+FOR] (SIGSTOP, then SIGCONT): TIME into the measured window, for FOR (default ${faultForMsDefault / 1000}s); with --local or a nats-kv cluster the bench starts`,
      parseFaultOption,
    )
    .option('--fault-node <node>', 'the node to fault: n1..n3 for ringkv (default n1), js1..js3 for nats-kv (default: the stream leader)');
  // The ringkv program has these as global options; a program without them (a test's) gets them here.
  const has = (flag: string) => program.options.some((o) => o.long === flag);
  if (!has('--json')) cmd.option('--json', 'print the report as JSON');
  if (!has('--server')) cmd.option('--server <url>', 'NATS server URL of the ringkv cluster');
  if (!has('--cluster')) cmd.option('--cluster <name>', 'ringkv cluster name', 'ringkv');

  cmd.action(async (_o: unknown, command: Command) => {
    const o = command.optsWithGlobals<BenchCommandOptions>();
    process.exitCode = await runBenchCommand(o, io);
  });
  return cmd;
}

/** Runs the bench as the command line asked; resolves with the exit code. */
export async function runBenchCommand(o: BenchCommandOptions, io: BenchIo): Promise<number> {
  if (o.target === 'ringkv' && (o.r > o.n || o.w > o.n)) {
    io.err(`error: --r and --w must not exceed --n (${o.n})\n`);
    return 2;
  }
  if (o.nodes !== undefined && o.nodes !== localNodesDefault && (o.target !== 'ringkv' || !o.local)) {
    io.err('error: --nodes is for a ringkv cluster the bench starts (--local)\n');
    return 2;
  }
  if (o.fsync && (o.target !== 'ringkv' || !o.local)) {
    io.err('error: --fsync is for a ringkv cluster the bench starts (--local); a running cluster keeps the mode its nodes were started with\n');
    return 2;
  }
  if (o.target === 'ringkv' && o.kvServer) {
    io.err('error: --kv-server is for --target nats-kv\n');
    return 2;
  }
  if (o.fault) {
    const problem = faultProblem(o);
    if (problem) {
      io.err(`error: ${problem}\n`);
      return 2;
    }
  }
  const say = (text: string) => io.err(text);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      say('\nstopping: finishing the requests in flight, then stopping what the bench started (again to quit at once)\n');
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let target: BenchTarget | undefined;
  let faulting: PreparedFault | undefined;
  const bar = io.errIsTTY ? new ProgressBar(io.err, io.columns) : undefined;
  try {
    target =
      o.target === 'nats-kv'
        ? await openNatsKvTargetIfInstalled({ ...(o.kvServer ? { kvServer: o.kvServer } : {}), replicas: o.n, say })
        : await openRingkvTarget({
            local: o.local === true,
            ...(o.server ? { server: o.server } : {}),
            cluster: o.cluster ?? 'ringkv',
            n: o.n,
            r: o.r,
            w: o.w,
            say,
            ...(o.fsync ? { fsync: true } : {}),
            ...(o.nodes !== undefined ? { nodes: o.nodes } : {}),
          });
    const header = {
      target: target.name,
      endpoint: target.endpoint,
      durability: target.durability,
      settings: target.settings,
    };
    if (!o.json) io.out(formatHeader(o, header));
    if (o.fault) {
      faulting = prepareFault(target, o.fault, { workload: o.workload, ...(o.faultNode ? { node: o.faultNode } : {}), say });
      if (!o.json) io.out(`fault: ${faulting.description}\n\n`);
    }
    const report = await runBench(faulting?.target ?? target, {
      workload: o.workload,
      records: o.records,
      valueBytes: o.valueBytes,
      distribution: o.distribution,
      concurrency: o.concurrency,
      durationMs: o.duration,
      warmupMs: o.warmup,
      seed: o.seed,
      signal: controller.signal,
      ...(o.loadConcurrency !== undefined ? { loadConcurrency: o.loadConcurrency } : {}),
      ...(o.memory
        ? {
            memory: true,
            onMemory: (when: string, readings: NodeMemoryReading[]) => {
              bar?.clear();
              if (!o.json) io.out(formatMemory(when, readings));
            },
            onMemoryMissing: (when: string, node: string, why: string) => {
              bar?.clear();
              io.err(`ringkv bench: no memory reading ${when} from ${node}: ${why}\n`);
            },
          }
        : {}),
      ...(faulting ? { observer: faulting.observer } : {}),
      ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
      onLoad: (load) => {
        bar?.clear();
        if (!o.json) io.out(formatLoad(load));
      },
      onLevel: (level) => {
        bar?.clear();
        if (!o.json) io.out(formatLevel(level, o.warmup));
      },
    });
    bar?.clear();
    if (!o.json) io.out(formatSummary(report));
    let fault: FaultReport | undefined;
    if (faulting) {
      fault = await faulting.finish({ checkDurability: !report.aborted });
      if (!o.json) io.out(formatFaultReport(fault));
    }
    await target.close();
    if (o.json) io.out(formatJson(fault ? { ...report, fault } : report));
    if (report.aborted) return 130;
    const failed = report.levels.some((l) => l.ops === 0) || report.load.errors === report.load.records;
    const lost = (fault?.durability?.lostKeys ?? 0) > 0;
    if (lost) io.err(`error: ${fault!.durability!.lostKeys} keys lost an acknowledged write (see the fault report)\n`);
    return failed || lost ? 1 : 0;
  } catch (err) {
    bar?.clear();
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    // A node left paused or dead by a run that ended early is brought back before the cluster stops.
    await faulting?.heal();
    await target?.close().catch(() => undefined);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** Why --fault cannot run with these options, or undefined when it can. */
export function faultProblem(o: BenchCommandOptions): string | undefined {
  const fault = o.fault!;
  if (o.target === 'ringkv' && !o.local) return '--fault needs --local: the bench faults only a cluster it started';
  if (o.target === 'nats-kv' && o.kvServer) return '--fault cannot be used with --kv-server: the bench faults only a cluster it started';
  if (o.concurrency.length !== 1) return '--fault runs one concurrency level: give --concurrency a single number';
  if (fault.atMs >= o.duration) return `the fault is due at ${fault.atMs} ms, after the ${o.duration} ms measured window has ended: make --duration longer`;
  if (o.valueBytes < 8) return '--fault tags every written value with its write id: --value-bytes must be at least 8';
  return undefined;
}

/** Microseconds for people: 412 µs, 1.25 ms, 38.2 ms, 1,204 ms. */
export function formatLatency(us: number): string {
  if (us < 1000) return `${Math.round(us)} µs`;
  const ms = us / 1000;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms).toLocaleString('en-US')} ms`;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function formatHeader(o: BenchCommandOptions, h: Pick<BenchReport, 'target' | 'endpoint' | 'durability' | 'settings'>): string {
  const settings = Object.entries(h.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const m = describeMachine();
  const rows = [
    ['machine', `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}`],
    ['workload', `${o.workload}: ${describeWorkload(o.workload)}; ${count(o.records)} records of ${count(o.valueBytes)} B, ${o.distribution} keys, seed ${o.seed}`],
    ['target', `${h.target}: ${h.endpoint}`],
    ['settings', settings],
    ['durability', `${h.durability.mode}: ack ${h.durability.ack}; ${h.durability.flush}`],
    ['levels', `concurrency ${o.concurrency.join(', ')}: ${seconds(o.warmup)} warm-up, then ${seconds(o.duration)} measured each`],
  ];
  return formatTable(rows) + '\n';
}

function describeWorkload(name: WorkloadName): string {
  return {
    a: '50% read, 50% update',
    b: '95% read, 5% update',
    c: '100% read',
    cart: 'read every sibling, merge, write back with the context',
    update: '100% update (puts only)',
  }[name];
}

function latencyCells(l: LatencySummary): string[] {
  return [formatLatency(l.p50), formatLatency(l.p99), formatLatency(l.p999), formatLatency(l.max)];
}

export function formatLevel(level: LevelResult, warmupMs: number): string {
  const rows: string[][] = [];
  const ops = Object.entries(level.perOp) as [OpName, NonNullable<LevelResult['perOp'][OpName]>][];
  for (const [op, r] of ops) rows.push([op, count(r.ops), count(r.opsPerSec), ...latencyCells(r.latencyUs), count(r.errors)]);
  if (ops.length > 1) rows.push(['all', count(level.ops), count(level.opsPerSec), ...latencyCells(level.latencyUs), count(level.errors)]);
  let out = `concurrency ${level.concurrency}: ${count(level.opsPerSec)} ops/s over ${seconds(level.elapsedMs)}`;
  out += warmupMs > 0 ? ` (after ${seconds(warmupMs)} warm-up)\n` : '\n';
  out += formatTable(rows, { header: ['OP', 'OPS', 'OPS/S', 'P50', 'P99', 'P99.9', 'MAX', 'ERRORS'] })
    .split('\n')
    .map((line) => (line ? `  ${line}` : line))
    .join('\n');
  const notes: string[] = [];
  for (const [op, r] of ops) {
    const codes = Object.entries(r.errorsByCode).map(([code, n]) => `${code} ×${count(n)}`);
    if (codes.length > 0) notes.push(`${op} errors: ${codes.join(', ')}`);
  }
  if (level.notFound > 0) notes.push(`${count(level.notFound)} reads found no value`);
  if (level.readsWithSiblings > 0) notes.push(`${count(level.readsWithSiblings)} reads saw siblings (at most ${level.siblingsMax})`);
  if (level.cartRetries > 0) notes.push(`${count(level.cartRetries)} cart updates met a newer revision and were tried again`);
  const cpu = formatCpuSplit(level.cpu ?? [], level.ops, level.elapsedMs, availableParallelism());
  if (cpu) notes.push(cpu);
  for (const note of notes) out += `  ${note}\n`;
  if (level.anatomy) out += `  the nodes' work per operation (their own counters):\n${formatAnatomy(level.anatomy)}`;
  return out + '\n';
}

function formatLoad(l: LoadResult): string {
  let out = `load: ${count(l.records)} records in ${seconds(l.elapsedMs)} (${count(l.opsPerSec)}/s)`;
  out += l.errors > 0 ? `, ${count(l.errors)} errors: ${Object.entries(l.errorsByCode).map(([c, n]) => `${c} ×${count(n)}`).join(', ')}\n` : ', no errors\n';
  return out + '\n';
}

function formatSummary(report: BenchReport): string {
  let out = '';
  if (report.levels.length > 1) {
    const ops = Object.keys(report.levels[0]!.perOp) as OpName[];
    const header = ['CONCURRENCY', 'OPS/S', ...ops.flatMap((op) => [`${op.toUpperCase()} P50`, `${op.toUpperCase()} P99`]), 'ERRORS'];
    const rows = report.levels.map((level) => [
      String(level.concurrency),
      count(level.opsPerSec),
      ...ops.flatMap((op) => {
        const r = level.perOp[op];
        return r ? [formatLatency(r.latencyUs.p50), formatLatency(r.latencyUs.p99)] : ['', ''];
      }),
      count(level.errors),
    ]);
    out += formatTable(rows, { header });
  }
  if (report.aborted) out += '\nstopped early: the levels above are all that ran\n';
  return out;
}
