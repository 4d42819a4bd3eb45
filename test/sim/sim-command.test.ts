// `ringkv sim`: the report, the sweep summary, and the exit code.
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatReport, parseFaults, registerSimCommand } from '../../src/cli/sim-command.js';
import { runSimulation, type SimOptions } from '../../src/sim/runner.js';

// The CLI has no way to inject a bug (that stays test-only); seed 1 gets one here, so that the
// failure path of the command can be seen: exit 1, the violations, the seed and the replay command.
const buggySeed = 1;
vi.mock('../../src/sim/runner.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../src/sim/runner.js')>();
  return {
    ...mod,
    runSimulation: (o: SimOptions) => mod.runSimulation(o.seed === buggySeed ? { ...o, bugs: { dropSiblingsOnSync: true } } : o),
  };
});

async function sim(args: string[]): Promise<{ out: string; exitCode: number | undefined }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    const program = new Command('ringkv').option('--json').exitOverride();
    registerSimCommand(program);
    await program.parseAsync(['node', 'ringkv', 'sim', ...args]);
    return { out, exitCode: typeof process.exitCode === 'number' ? process.exitCode : undefined };
  } finally {
    spy.mockRestore();
    process.exitCode = saved;
  }
}

afterEach(() => vi.restoreAllMocks());

describe('ringkv sim', () => {
  it('prints a report and exits 0 when every invariant holds', async () => {
    const { out, exitCode } = await sim(['--seed', '3', '--nodes', '4', '--ops', '20', '--faults', 'drop,delay']);
    expect(exitCode).toBe(0);
    for (const field of ['seed', 'faults', 'injected', 'ops', 'lost', 'settle', 'messages', 'trace', 'result']) {
      expect(out).toMatch(new RegExp(`^${field} `, 'm'));
    }
    expect(out).toMatch(/^result +ok/m);
    expect(out).toMatch(/^faults +drop~[\d.]+, delay<=\d+ms$/m);
  });

  it('prints JSON with --json, with the same trace hash as the library', async () => {
    const { out } = await sim(['--seed', '5', '--ops', '10', '--faults', 'none', '--json']);
    const report = JSON.parse(out) as { traceHash: string; ok: boolean; acked: number };
    const direct = await runSimulation({ seed: 5, nodes: 5, ops: 10, faults: [], clients: 3, keys: 3 });
    expect(report.ok).toBe(true);
    expect(report.traceHash).toBe(direct.traceHash);
  });

  it('sweeps seeds and summarises', async () => {
    const { out, exitCode } = await sim(['--seed', '10', '--ops', '10', '--sweep', '3']);
    expect(exitCode).toBe(0);
    expect(out.match(/^seed 1[012] +ok/gm)).toHaveLength(3);
    expect(out).toMatch(/sweep of 3 seeds from 10: 3 ok, 0 failed/);
  });

  it('exits 1 and prints the seed and the replay command when an invariant breaks', async () => {
    const { out, exitCode } = await sim(['--seed', String(buggySeed), '--nodes', '3', '--ops', '30', '--faults', 'none']);
    expect(exitCode).toBe(1);
    expect(out).toMatch(/^result +FAILED/m);
    expect(out).toContain('acked-in-final-read');
    expect(out).toContain(`replay: ringkv sim --seed ${buggySeed} --nodes 3 --ops 30 --faults none --clients 3 --keys 3`);
    const sweep = await sim(['--seed', String(buggySeed), '--nodes', '3', '--ops', '30', '--faults', 'none', '--sweep', '2']);
    expect(sweep.exitCode).toBe(1);
    expect(sweep.out).toMatch(/sweep of 2 seeds from 1: 1 ok, 1 failed/);
    expect(sweep.out).toContain(`FAILED seed ${buggySeed}:`);
  });

  it('formats a failed report with its violations and replay command', async () => {
    const r = await runSimulation({ seed: 2, nodes: 3, ops: 30, faults: [], bugs: { dropSiblingsOnSync: true } });
    expect(r.ok).toBe(false);
    const text = formatReport(r);
    expect(text).toContain('FAILED');
    expect(text).toContain(`replay: ${r.replay}`);
  });

  it('parses fault lists', () => {
    expect(parseFaults('swarm')).toBe('swarm');
    expect(parseFaults('none')).toEqual([]);
    expect(parseFaults('drop, crash')).toEqual(['drop', 'crash']);
    expect(() => parseFaults('drop,meteor')).toThrow(/unknown fault "meteor"/);
  });
});
