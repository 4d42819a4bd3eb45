/**
 * `ringkv sim`: the deterministic simulation (DESIGN.md §4, issue 7). One seed builds a whole cluster
 * in this process from the production machines, runs the cart workload under faults drawn from the
 * seed, heals, settles and checks the invariants. The same seed replays the same run: the trace
 * hash proves it.
 *
 *   ringkv sim --seed 42 --nodes 5 --ops 100 --faults swarm
 *   ringkv sim --seed 1 --faults drop,partition,crash --sweep 200
 *
 * Exit codes: 0 when every invariant held in every run; 1 when one broke (the seed and the command
 * that replays it are printed) or a run could not finish; 2 for usage errors.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { faultKinds, type FaultKind, isFaultKind, replayCommand, runSimulation, type SimOptions, type SimReport } from '../sim/runner.js';

const exitFailed = 1;
const seedMax = 0xffff_ffff;

interface SimCommandOptions {
  seed: number;
  nodes: number;
  ops: number;
  faults: readonly FaultKind[] | 'swarm';
  swarmExclude?: readonly FaultKind[];
  clients: number;
  keys: number;
  deletes: number;
  sweep?: number;
  json?: boolean;
}

function wholeNumber(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return value;
  };
}

export function parseFaults(text: string): readonly FaultKind[] | 'swarm' {
  const t = text.trim();
  if (t === 'swarm') return 'swarm';
  if (t === 'none' || t === '') return [];
  const kinds = t.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!isFaultKind(k)) throw new InvalidArgumentError(`unknown fault "${k}": use swarm, none, or a comma-separated list of ${faultKinds.join(', ')}.`);
  }
  return kinds as FaultKind[];
}

function parseExcludes(text: string): readonly FaultKind[] {
  const kinds = parseFaults(text);
  if (kinds === 'swarm') throw new InvalidArgumentError('--swarm-exclude takes a list of fault kinds');
  return kinds;
}

export function registerSimCommand(program: Command): Command {
  return program
    .command('sim')
    .description('run the deterministic simulation: a whole cluster in this process, faults and workload from one seed')
    .option('--seed <seed>', 'the seed (32-bit)', wholeNumber('seed', 0, seedMax), 1)
    .option('--nodes <count>', 'nodes in the simulated cluster', wholeNumber('nodes', 1, 64), 5)
    .option('--ops <count>', 'cart adds (each a get and a put with the context)', wholeNumber('ops', 0), 100)
    .option('--faults <kinds>', `swarm (the seed picks), none, or a list of ${faultKinds.join(',')}`, parseFaults, 'swarm' as const)
    .option('--swarm-exclude <kinds>', 'with --faults swarm: kinds the seed never picks (comma-separated)', parseExcludes)
    .option('--clients <count>', 'concurrent clients', wholeNumber('clients', 1, 1000), 3)
    .option('--keys <count>', 'shared keys', wholeNumber('keys', 1, 100_000), 3)
    .option('--deletes <count>', 'keys a deleter client writes and deletes, with the tombstone reaper on (0: none)', wholeNumber('deletes', 0, 1000), 2)
    .option('--sweep <count>', 'run seeds seed..seed+count-1 and summarise', wholeNumber('sweep', 1))
    .option('--json', 'print JSON')
    .action(async (o: SimCommandOptions, cmd: Command) => {
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      process.exitCode = o.sweep === undefined ? await single(o, json) : await sweep(o, json);
    });
}

function simOptions(o: SimCommandOptions, seed: number): SimOptions {
  return { seed, nodes: o.nodes, ops: o.ops, faults: o.faults, clients: o.clients, keys: o.keys, deletes: o.deletes, ...(o.swarmExclude ? { swarmExcludes: o.swarmExclude } : {}) };
}

/** One run, or the error that stopped it (a deadlock, a time limit, a crash of the simulator). */
async function runOne(opts: SimOptions): Promise<SimReport | { seed: number; error: string; replay: string }> {
  try {
    return await runSimulation(opts);
  } catch (err) {
    return { seed: opts.seed, error: err instanceof Error ? (err.stack ?? err.message) : String(err), replay: replayCommand(opts) };
  }
}

async function single(o: SimCommandOptions, json: boolean): Promise<number> {
  const r = await runOne(simOptions(o, o.seed));
  if ('error' in r) {
    if (json) write(JSON.stringify({ ok: false, seed: r.seed, error: r.error, replay: r.replay }, null, 2) + '\n');
    else write(`seed ${r.seed}: the simulation could not finish: ${r.error}\nreplay: ${r.replay}\n`);
    return exitFailed;
  }
  write(json ? JSON.stringify(r, null, 2) + '\n' : formatReport(r));
  return r.ok ? 0 : exitFailed;
}

async function sweep(o: SimCommandOptions, json: boolean): Promise<number> {
  const count = o.sweep!;
  const started = performance.now();
  const failures: { seed: number; replay: string; why: string }[] = [];
  const reports: unknown[] = [];
  let acked = 0;
  let lost = 0;
  let ops = 0;
  for (let i = 0; i < count; i++) {
    const seed = (o.seed + i) >>> 0;
    const r = await runOne(simOptions(o, seed));
    if ('error' in r) {
      failures.push({ seed, replay: r.replay, why: `could not finish: ${r.error.split('\n')[0]}` });
      if (json) reports.push({ seed, ok: false, error: r.error, replay: r.replay });
      else write(`seed ${seed}  ERROR  ${r.error.split('\n')[0]}\n`);
    } else {
      acked += r.acked;
      lost += r.lost;
      ops += r.ops;
      if (!r.ok) failures.push({ seed, replay: r.replay, why: r.violations.map((v) => `${v.invariant}: ${v.message}`)[0] ?? '' });
      if (json) reports.push(summaryOf(r));
      else write(sweepLine(r));
    }
    // Let the output flush between runs: a run never yields to the event loop on its own.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const wallMs = Math.round(performance.now() - started);
  if (json) {
    write(JSON.stringify({ ok: failures.length === 0, seeds: count, from: o.seed, failed: failures, ops, acked, lost, wallMs, runs: reports }, null, 2) + '\n');
  } else {
    write(`\nsweep of ${count} seeds from ${o.seed}: ${count - failures.length} ok, ${failures.length} failed; ${ops} ops, ${acked} acked, ${lost} lost; ${wallMs} ms\n`);
    for (const f of failures) write(`FAILED seed ${f.seed}: ${f.why}\n  replay: ${f.replay}\n`);
  }
  return failures.length === 0 ? 0 : exitFailed;
}

function summaryOf(r: SimReport) {
  return {
    seed: r.seed,
    ok: r.ok,
    faults: r.faults.kinds,
    acked: r.acked,
    unknown: r.unknown,
    failed: r.failed,
    lost: r.lost,
    settleMs: r.settleMs,
    messagesPerOp: r.messagesPerOp,
    traceHash: r.traceHash,
    violations: r.violations,
    replay: r.replay,
  };
}

function sweepLine(r: SimReport): string {
  const faults = r.faults.kinds.length === 0 ? 'none' : r.faults.kinds.join(',');
  const rounds = r.membershipRounds === undefined ? '' : `  ring changes done in ${r.membershipRounds ?? '(not)'} rounds`;
  return `seed ${r.seed}  ${r.ok ? 'ok    ' : 'FAILED'}  acked ${r.acked}/${r.ops}  lost ${r.lost}  settle ${r.settleMs} ms  ${r.messagesPerOp} msg/op  ${r.traceHash}  faults ${faults}${rounds}\n`;
}

export function formatReport(r: SimReport): string {
  const f = r.faults;
  const i = r.injected;
  const kinds = f.kinds.map((k) => {
    if (k === 'drop') return `drop~${f.drop}`;
    if (k === 'duplicate') return `duplicate~${f.duplicate}`;
    if (k === 'delay') return `delay<=${f.delayMaxMs}ms`;
    return k;
  });
  const rows: [string, string][] = [
    ['seed', String(r.seed)],
    ['cluster', `${r.nodes} nodes, N=${r.quorum.n} R=${r.quorum.r} W=${r.quorum.w}; ${r.clients} clients on ${r.keys} keys`],
    ['faults', kinds.length === 0 ? 'none' : kinds.join(', ')],
    [
      'injected',
      `${i.partitions} partitions, ${i.crashes} crashes (${i.powerLosses} power losses), ${i.wipes} disk losses, ${i.restarts} restarts, ` +
        `${i.lostWrites} uncommitted writes lost; messages: ${i.dropped} dropped, ${i.duplicated} duplicated, ${i.cut} cut by partitions, ${i.undeliverable} to a node that was down`,
    ],
    ...(f.kinds.includes('join') || f.kinds.includes('leave') || f.kinds.includes('force-remove')
      ? [['membership', r.events.filter((e) => / (start|join|leave|force-remove|exit|machine lost:|restart) n\d/.test(e) && !/^t=\d+ restart n\d$/.test(e)).join('; ') || 'no change happened'] as [string, string]]
      : []),
    ...(r.membershipRounds !== undefined
      ? [['liveness', r.membershipRounds === null ? 'ring changes not finished within the bound' : `ring changes finished ${r.membershipRounds} gossip rounds after the heal or the last commit`] as [string, string]]
      : []),
    ['detector', `${i.judgedDown} times a member was judged down, ${i.judgedUp} times up again (gossip every ${f.gossipRoundMs} ms)`],
    ['repair', `${f.repairBy === 'anti-entropy' ? 'anti-entropy alone, then reads' : 'reads with R = N'} (anti-entropy rounds every ${f.aaeIntervalMs} ms)`],
    ['ops', `${r.ops} cart adds: ${r.acked} acked, ${r.unknown} unknown (TIMEOUT), ${r.failed} failed`],
    ['lost', `${r.lost} acknowledged items`],
    ['deletes', `${r.deletesAcked} acknowledged; ${r.tombstonesReaped} tombstones deleted by the stores, per replica (sweeps every ${f.reapIntervalMs} ms, grace ${f.reapGraceMs} ms)`],
    ['settle', `${r.settleMs} simulated ms after the heal at t=${r.healAtMs} ms (the workload ended at t=${r.workloadMs} ms)`],
    ['messages', `${r.messages} in all, ${r.messagesPerOp} per op during the workload`],
    ['trace', `${r.traceHash} (${r.traceEvents} events)`],
    ['result', r.ok ? 'ok: every invariant held' : `FAILED: ${r.violations.length} invariant violation(s)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
  if (!r.ok) {
    for (const v of r.violations) out += `  ${v.invariant}: ${v.message}\n`;
    out += `replay: ${r.replay}\n`;
  }
  return out;
}

function write(text: string): void {
  process.stdout.write(text);
}
