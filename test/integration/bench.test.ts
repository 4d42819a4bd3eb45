/**
 * `ringkv bench` for real, very short: 200 records, concurrency 1 and 4, one second each, against a
 * local ringkv cluster the bench starts (nodes run the compiled CLI in dist/) and against a local
 * three-server JetStream cluster. The JSON report must show operations at every level and no errors,
 * and nothing the bench started may be left behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../src/bench/runner.js';
import { registerBenchCommand, type BenchIo } from '../../src/cli/bench-command.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function bench(args: string[]): Promise<{ code: number; report: BenchReport; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: BenchIo = { out: (t) => (stdout += t), err: (t) => (stderr += t), errIsTTY: false, columns: () => undefined };
  const program = new Command('ringkv').exitOverride();
  registerBenchCommand(program, io);
  const saved = process.exitCode;
  await program.parseAsync(['node', 'ringkv', 'bench', ...args, '--json']);
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = saved;
  if (code !== 0) throw new Error(`bench exited ${code}: ${stderr}`);
  return { code, report: JSON.parse(stdout) as BenchReport, stderr };
}

// The bench makes its temporary directories under os.tmpdir(). This file points TMPDIR at a
// directory of its own, so what another test file running alongside makes (bench-fault runs the
// bench too) is never taken for a leftover of this one.
const systemTmp = os.tmpdir();
let scratch = '';
const savedTmpdir = process.env.TMPDIR;
beforeAll(() => {
  scratch = mkdtempSync(path.join(systemTmp, 'ringkv-bench-test-'));
  process.env.TMPDIR = scratch;
});
afterAll(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function tempLeftovers(): string[] {
  return readdirSync(scratch).filter((name) => name.startsWith('ringkv-bench-'));
}

function expectHealthy(report: BenchReport): void {
  expect(report.aborted).toBe(false);
  expect(report.load).toMatchObject({ records: 200, errors: 0 });
  expect(report.levels.map((l) => l.concurrency)).toEqual([1, 4]);
  for (const level of report.levels) {
    expect(level.ops, `concurrency ${level.concurrency}`).toBeGreaterThan(0);
    expect(level.errors, JSON.stringify(level.perOp)).toBe(0);
    expect(level.opsPerSec).toBeGreaterThan(0);
    expect(level.latencyUs.p50).toBeGreaterThan(0);
    expect(level.latencyUs.p99).toBeGreaterThanOrEqual(level.latencyUs.p50);
    expect(level.perOp.read?.ops).toBeGreaterThan(0);
    expect(level.perOp.update?.ops).toBeGreaterThan(0);
  }
}

const short = ['--records', '200', '--concurrency', '1,4', '--duration', '1s', '--warmup', '200ms', '--workload', 'a'];

describe('ringkv bench', () => {
  beforeAll(() => {
    // The nodes of a local cluster run dist/; `npm test` builds it, a lone vitest run may not have.
    if (!existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) {
      const built = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'inherit', timeout: 180_000 });
      if (built.status !== 0) throw new Error('the TypeScript build failed');
    }
  }, 200_000);

  it('measures a local ringkv cluster and stops it', async () => {
    const before = new Set(tempLeftovers());
    const { report, stderr } = await bench(['--local', ...short, '--memory']);
    expect(report.target).toBe('ringkv');
    // --memory: every node's heap and RSS after the load and at the end (from its api.status answer).
    for (const readings of [report.memory?.afterLoad, report.memory?.atEnd]) {
      expect(readings?.map((r) => r.node).sort(), stderr).toEqual(['n1', 'n2', 'n3']);
      for (const r of readings!) {
        expect(r.heapUsedBytes).toBeGreaterThan(1 << 20);
        expect(r.heapTotalBytes).toBeGreaterThanOrEqual(r.heapUsedBytes);
        expect(r.rssBytes).toBeGreaterThan(r.heapUsedBytes);
      }
    }
    expect(report.durability.mode).toBe('committed');
    expect(report.settings).toMatchObject({ N: 3, R: 2, W: 2 });
    expectHealthy(report);
    // The CPU split: every process the bench started, and the bench client, used CPU in the window.
    const roles = report.levels[1]!.cpu.map((s) => s.role).sort();
    expect(roles).toEqual(['bench client', 'nats-server', 'node n1', 'node n2', 'node n3']);
    for (const share of report.levels[1]!.cpu) expect(share.seconds, share.role).toBeGreaterThan(0);
    expect(tempLeftovers().filter((d) => !before.has(d))).toEqual([]);
  }, 60_000);

  it('measures NATS JetStream KV with the identical workload and stops it', async () => {
    const before = new Set(tempLeftovers());
    const { report } = await bench(['--target', 'nats-kv', ...short]);
    expect(report.target).toBe('nats-kv');
    expect(report.durability.mode).toBe('replicated');
    expect(report.settings).toMatchObject({ replicas: 3 });
    expectHealthy(report);
    expect(report.levels[1]!.cpu.map((s) => s.role).sort()).toEqual(['bench client', 'nats-server js1', 'nats-server js2', 'nats-server js3']);
    expect(tempLeftovers().filter((d) => !before.has(d))).toEqual([]);
  }, 60_000);
});
