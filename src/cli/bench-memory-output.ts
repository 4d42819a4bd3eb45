/** How `ringkv bench --memory` prints each node's memory (src/bench/memory.ts). */
import type { NodeMemoryReading } from '../bench/memory.js';
import { formatTable } from './output.js';

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** A table of one set of readings, headed by when they were taken. */
export function formatMemory(when: string, readings: NodeMemoryReading[]): string {
  if (readings.length === 0) return `memory ${when}: no node reported its memory\n\n`;
  const rows = readings.map((r) => [
    r.node,
    mib(r.heapUsedBytes),
    r.heapAfterGcBytes === undefined ? '-' : mib(r.heapAfterGcBytes),
    mib(r.heapTotalBytes),
    mib(r.externalBytes),
    mib(r.rssBytes),
  ]);
  const table = formatTable(rows, { header: ['NODE', 'HEAP USED', 'AFTER LAST FULL GC', 'HEAP TOTAL', 'EXTERNAL', 'RSS'] })
    .split('\n')
    .map((line) => (line ? `  ${line}` : line))
    .join('\n');
  return `memory ${when}:\n${table}\n`;
}
