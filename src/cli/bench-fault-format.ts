/**
 * The fault part of `ringkv bench --fault`'s report, for people: when the node went and came back,
 * the longest gap with no successful operation of each kind, a table of outcomes and latency per
 * phase, how long the store took to settle, and whether every acknowledged write was read back.
 */
import type { FaultReport } from '../bench/fault.js';
import { phaseNames } from '../bench/phases.js';
import type { OpName } from '../bench/workload.js';
import { formatTable } from './output.js';

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const at = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);

export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${count(ms)} ms`;
}

export function formatFaultReport(f: FaultReport): string {
  const lifted = f.kind === 'kill-node' ? 'restarted' : 'resumed';
  let out = f.node === null ? `fault ${f.spec}: never applied (the run ended first)\n` : `fault ${f.spec} on ${f.node} (${f.why}): applied at ${at(f.appliedAtMs)}, ${lifted} at ${at(f.recoveredAtMs)}\n`;
  for (const [op, gap] of Object.entries(f.gaps) as [OpName, NonNullable<FaultReport['gaps'][OpName]>][]) {
    out += `  longest gap with no successful ${op}: ${formatMs(gap.longestMs)} (from ${at(gap.fromMs)} to ${at(gap.toMs)})\n`;
  }
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const phase of phaseNames) {
    const p = f.phases[phase];
    for (const [op, r] of Object.entries(p.perOp) as [OpName, NonNullable<(typeof p.perOp)[OpName]>][]) {
      rows.push([phase, at(p.fromMs), at(p.toMs), op, count(r.ok), count(r.failed), count(r.timedOut), formatMs(r.latencyMs.p50), formatMs(r.latencyMs.p99), formatMs(r.latencyMs.max)]);
      const codes = Object.entries(r.errorsByCode).map(([code, n]) => `${code} ×${count(n)}`);
      if (codes.length > 0) notes.push(`${phase} ${op} errors: ${codes.join(', ')}`);
    }
  }
  out += formatTable(rows, { header: ['PHASE', 'FROM', 'TO', 'OP', 'OK', 'FAILED', 'TIMED OUT', 'P50', 'P99', 'MAX'] })
    .split('\n')
    .map((line) => (line ? `  ${line}` : line))
    .join('\n');
  for (const note of notes) out += `  ${note}\n`;
  if (f.settle) out += `  settled: ${f.settle.settled ? 'yes' : 'NO'}, after ${formatMs(f.settle.ms)}: ${f.settle.detail}\n`;
  const d = f.durability;
  if (d) {
    out += `  durability: ${count(d.keysChecked)} keys read back after the fault (${count(d.acknowledgedWrites)} acknowledged writes, ${count(d.unknownWrites)} with an unknown outcome): `;
    out += d.lostKeys === 0 ? 'no acknowledged write lost' : `${count(d.lostKeys)} keys LOST an acknowledged write (${d.lostKeyNames.join(', ')})`;
    out += d.unreadKeys > 0 ? `; ${count(d.unreadKeys)} keys could not be read\n` : '\n';
  }
  for (const problem of f.problems) out += `  problem: ${problem}\n`;
  return out + '\n';
}
