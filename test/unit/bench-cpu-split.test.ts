/**
 * The bench's CPU split (src/bench/cpu-split.ts): another process's CPU seconds read from /proc,
 * the meter's window, and the line people read.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CpuMeter, clientRole, formatCpuSplit, processCpuSeconds } from '../../src/bench/cpu-split.js';

describe('cpu split', () => {
  it('reads the CPU a busy child process used, and reports it in the window', async () => {
    // A child that spins until it has used 300 ms of CPU (however loaded the machine), says so, then idles.
    const spin = 'const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; }; const s = c(); while (c() - s < 300); console.log("spun"); setInterval(() => {}, 1000);';
    const child = spawn(process.execPath, ['-e', spin]);
    try {
      const meter = new CpuMeter(() => [{ role: 'spinner', pid: child.pid! }]);
      meter.start();
      const own = process.cpuUsage();
      while ((process.cpuUsage(own).user + process.cpuUsage(own).system) / 1e3 < 30); // the client's own share
      await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('spun') && resolve()));
      const shares = meter.stop();
      const spinner = shares.find((s) => s.role === 'spinner');
      // At least the 300 ms spun (less the start-up before the meter's first reading, at most a tick more).
      expect(spinner?.seconds).toBeGreaterThanOrEqual(0.25);
      expect(spinner!.seconds).toBeLessThan(5);
      expect(shares.find((s) => s.role === clientRole)?.seconds).toBeGreaterThanOrEqual(0.02);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('leaves out a process it cannot read', () => {
    expect(processCpuSeconds(2 ** 30)).toBeUndefined();
    const meter = new CpuMeter(() => [{ role: 'gone', pid: 2 ** 30 }]);
    meter.start();
    expect(meter.stop().map((s) => s.role)).toEqual([clientRole]);
  });

  it('sums the processes of a role and puts the bench client last', () => {
    const line = formatCpuSplit(
      [
        { role: clientRole, seconds: 0.5 },
        { role: 'node n1', seconds: 1 },
        { role: 'node n2', seconds: 1 },
        { role: 'nats-server', seconds: 0.5 },
      ],
      1000,
      2000,
      2,
    );
    expect(line).toBe('cpu per op: node 2,000 µs (2 processes), nats-server 500 µs, bench client 500 µs; all 3,000 µs, 75% of 2 cores busy');
    expect(formatCpuSplit([], 1000, 2000, 2)).toBe('');
    expect(formatCpuSplit([{ role: 'nats-server js1', seconds: 1 }, { role: 'nats-server js2', seconds: 1 }], 100, 1000, 2)).toContain('nats-server 20,000 µs (2 processes)');
  });
});
