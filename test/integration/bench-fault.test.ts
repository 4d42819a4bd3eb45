/**
 * `ringkv bench --fault` for real, short: a local ringkv cluster and a local JetStream cluster, one
 * node killed or paused a second into a 5 s window and brought back 2 s later. The JSON report must
 * carry the fault (which node, when), the phases, the gaps and a read-back with no lost
 * acknowledged write; options the fault cannot run with are refused with exit code 2.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { FaultBenchReport } from '../../src/bench/fault.js';
import { registerBenchCommand, type BenchIo } from '../../src/cli/bench-command.js';
import { ensureBuilt } from '../support/cluster.js';

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: BenchIo = { out: (t) => (stdout += t), err: (t) => (stderr += t), errIsTTY: false, columns: () => undefined };
  const program = new Command('ringkv').exitOverride();
  registerBenchCommand(program, io);
  const saved = process.exitCode;
  await program.parseAsync(['node', 'ringkv', 'bench', ...args]);
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = saved;
  return { code, stdout, stderr };
}

const short = ['--records', '100', '--concurrency', '4', '--duration', '5s', '--warmup', '200ms', '--workload', 'a', '--json'];

function expectFaultReport(report: FaultBenchReport, node: string | RegExp, kind: string): void {
  const f = report.fault!;
  expect(f.kind).toBe(kind);
  expect(f.node).toMatch(node);
  expect(f.appliedAtMs).toBeGreaterThanOrEqual(900);
  expect(f.recoveredAtMs! - f.appliedAtMs!).toBeGreaterThanOrEqual(1900);
  for (const phase of ['before', 'during', 'after'] as const) {
    expect(f.phases[phase].perOp.read, phase).toBeDefined();
    expect(f.phases[phase].perOp.update, phase).toBeDefined();
  }
  expect(f.phases.before.perOp.update!.ok).toBeGreaterThan(0);
  expect(f.phases.after.perOp.update!.ok + f.phases.after.perOp.update!.failed).toBeGreaterThan(0);
  expect(f.gaps.read!.longestMs).toBeGreaterThan(0);
  expect(f.gaps.update!.longestMs).toBeGreaterThan(0);
  expect(f.successesPerSecond.update!.length).toBe(5);
  expect(f.settle?.settled, f.settle?.detail).toBe(true);
  expect(f.durability).toMatchObject({ keysChecked: 100, lostKeys: 0, unreadKeys: 0 });
  expect(f.durability!.acknowledgedWrites).toBeGreaterThan(100);
  expect(f.problems).toEqual([]);
}

describe('ringkv bench --fault', () => {
  it('kills a node of a local ringkv cluster, restarts it, and reads every acknowledged write back', { timeout: 180_000 }, async () => {
    ensureBuilt();
    const { code, stdout, stderr } = await bench(['--local', '--fault', 'kill-node@1s+2s', '--fault-node', 'n2', ...short]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as FaultBenchReport;
    expectFaultReport(report, 'n2', 'kill-node');
    expect(report.fault!.why).toBe('named with --fault-node');
  });

  it('pauses the stream leader of a JetStream KV bucket and resumes it', { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await bench(['--target', 'nats-kv', '--fault', 'pause-node@1s+2s', ...short]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as FaultBenchReport;
    expectFaultReport(report, /^js[123]$/, 'pause-node');
    expect(report.fault!.why).toMatch(/Raft leader/);
  });

  it('refuses what it cannot fault, with exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--fault', 'kill-node@1s', '--concurrency', '4'], /needs --local/],
      [['--target', 'nats-kv', '--kv-server', 'nats://127.0.0.1:1', '--fault', 'kill-node@1s', '--concurrency', '4'], /--kv-server/],
      [['--local', '--fault', 'kill-node@1s', '--concurrency', '1,2'], /one concurrency level/],
      [['--local', '--fault', 'kill-node@20s', '--duration', '10s', '--concurrency', '4'], /after the 10000 ms measured window/],
      [['--local', '--fault', 'kill-node@1s', '--value-bytes', '4', '--concurrency', '4'], /at least 8/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await bench(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(message);
    }
    // A malformed spec is refused by the option parser.
    await expect(bench(['--local', '--fault', 'explode@1s'])).rejects.toThrow(/unknown fault "explode"/);
  });
});
