/**
 * Who burns the CPU during a measured window: each process the bench started (ringkv nodes and
 * their nats-server, or the JetStream servers) and the bench client itself, in CPU seconds over the
 * window. Divided by the window's operations it is the CPU one operation costs in each process: on a
 * machine where every process shares the same cores, that is what bounds ops/s at high concurrency,
 * and it shows which side of a comparison spends it (issue 8: "say which cost stands in the way").
 *
 * Other processes' times come from /proc/<pid>/stat (utime + stime, Linux); where it is not there,
 * only the bench client's own time (process.cpuUsage) is reported.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A process the bench started, by the role it plays: "node n1", "nats-server", "js2". */
export interface BenchProcess {
  role: string;
  pid: number;
}

/** CPU seconds one process used in a window. */
export interface CpuShare {
  role: string;
  seconds: number;
}

/** The bench client's own share is reported under this role. */
export const clientRole = 'bench client';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc's times (getconf CLK_TCK; 100 on every Linux seen). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (user + system) a process has used so far, or undefined when it cannot be read. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / clockTicks() : undefined;
  } catch {
    return undefined;
  }
}

function clientCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Measures one window: start() at its beginning, stop() at its end. */
export class CpuMeter {
  private startedAt: Map<string, number> | undefined;

  constructor(private readonly processes: () => BenchProcess[]) {}

  start(): void {
    this.startedAt = this.read();
  }

  /** The CPU seconds each process used since start(); processes that could not be read are left out. */
  stop(): CpuShare[] {
    const before = this.startedAt;
    if (!before) return [];
    const after = this.read();
    const shares: CpuShare[] = [];
    for (const [role, seconds] of after) {
      const was = before.get(role);
      if (was !== undefined && seconds >= was) shares.push({ role, seconds: seconds - was });
    }
    return shares;
  }

  private read(): Map<string, number> {
    const out = new Map<string, number>([[clientRole, clientCpuSeconds()]]);
    for (const p of this.processes()) {
      const s = processCpuSeconds(p.pid);
      if (s !== undefined) out.set(p.role, s);
    }
    return out;
  }
}

/**
 * One line for people: the CPU per operation of each role (a role's processes summed) and how busy
 * the machine's cores were: "cpu per op: node 455 µs (3 processes), nats-server 53 µs, bench client
 * 86 µs; all 594 µs, 97% of 2 cores busy".
 */
export function formatCpuSplit(shares: CpuShare[], ops: number, elapsedMs: number, cores: number): string {
  if (shares.length === 0 || ops === 0) return '';
  const groups = new Map<string, { count: number; seconds: number }>();
  for (const s of shares) {
    // Roles that differ only by their number (node n1, node n2; js1, js2) are one group.
    const group = s.role.replace(/\s*\S*\d+$/, '').replace(/\d+$/, '') || s.role;
    const g = groups.get(group) ?? { count: 0, seconds: 0 };
    g.count++;
    g.seconds += s.seconds;
    groups.set(group, g);
  }
  const us = (seconds: number) => `${Math.round((seconds * 1e6) / ops).toLocaleString('en-US')} µs`;
  // The servers first, the bench client last.
  const ordered = [...groups].sort(([a], [b]) => Number(a === clientRole) - Number(b === clientRole));
  const parts = ordered.map(([group, g]) => `${group} ${us(g.seconds)}${g.count > 1 ? ` (${g.count} processes)` : ''}`);
  const total = shares.reduce((sum, s) => sum + s.seconds, 0);
  const busy = elapsedMs > 0 ? Math.round((total * 1000 * 100) / (elapsedMs * cores)) : 0;
  return `cpu per op: ${parts.join(', ')}; all ${us(total)}, ${busy}% of ${cores} cores busy`;
}
