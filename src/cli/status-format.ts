/**
 * The text of `ringkv status` beyond its member table: durations, and the changes that have not
 * finished (issue 27, item 6). Pure: main.ts runs the command on import, so tests import this.
 */
import type { DepartureStatus } from '../protocol/messages.js';

/** 3d 4h, 5m 12s, 40s: the two largest units. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [number, string][] = [[86_400, 'd'], [3_600, 'h'], [60, 'm'], [1, 's']];
  const parts: string[] = [];
  let rest = s;
  for (const [size, name] of units) {
    if (rest >= size || (parts.length === 0 && size === 1)) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/**
 * Changes that have not finished (issue 27, item 6): staged ones not committed, and leaves still
 * running, each with how long, what it waits for, and what to do (README, Operations).
 */
export function formatUnfinished(
  members: readonly { nodeId: string; state: string; status?: string; staged?: string | null }[],
  departureOf: (nodeId: string) => DepartureStatus | undefined,
): string {
  const lines: string[] = [];
  const staged = members.filter((m) => m.staged);
  if (staged.length > 0) {
    lines.push(`staged, not committed: ${staged.map((m) => `${m.staged} ${m.nodeId}`).join(', ')} (ringkv cluster plan; commit, or cancel with ringkv cluster clear)`);
  }
  for (const m of members.filter((x) => x.status === 'leaving' || x.status === 'exiting')) {
    const d = departureOf(m.nodeId);
    if (!d) {
      lines.push(`${m.nodeId} is leaving and did not answer (${m.state}): if its machine is gone for good, ringkv cluster force-remove ${m.nodeId}, then commit`);
      continue;
    }
    const since = d.forMs === null ? '' : ` for ${formatUptime(d.forMs)}`;
    const what =
      d.step === 'transfer'
        ? `hands over ${d.partitions.length + d.partitionsMore} partition(s)${d.hints > 0 ? ` and ${d.hints} hint(s)` : ''}`
        : `has handed everything over; waits for ${d.waitsFor.join(', ') || 'nobody'} to acknowledge ${d.step === 'ring' ? 'the ring without it' : 'its exit'}`;
    lines.push(`${m.nodeId} leaving${since}: ${what}`);
    for (const p of d.partitions) lines.push(`  partition ${p.p} -> ${p.to.join(',')}: ${p.state}${p.down.length > 0 ? ` (judged down: ${p.down.join(',')})` : ''}`);
    if (d.partitionsMore > 0) lines.push(`  ... and ${d.partitionsMore} more`);
  }
  return lines.length === 0 ? '' : `not finished:\n${lines.join('\n')}\n`;
}

