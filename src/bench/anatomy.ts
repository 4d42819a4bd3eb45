/**
 * The request anatomy (DESIGN.md §3): what one operation of a measured window cost each node, in
 * counts, from the nodes' own counters (src/protocol/cost-counters.ts, read from their api.status
 * answers just before and just after the window). Counts do not move with the machine's noise the
 * way times do: this is what says where a put's work goes (messages, bytes, store transactions,
 * transitions, encodes, seals) and what CI holds budgets on (test/integration/request-budget.test.ts).
 *
 * The readings travel as status requests, so a window's counts include those few requests; against
 * the thousands of operations of a window they are noise well under the figures' last digit.
 */
import { type CostCounts, costNames, costsSince, type CostName } from '../protocol/cost-counters.js';

export interface NodeCostReading {
  node: string;
  value: CostCounts;
}

/** Per operation of the window: each node's counts, and their sum over the nodes. */
export interface Anatomy {
  ops: number;
  perNode: { node: string; perOp: Record<CostName, number> }[];
  total: Record<CostName, number>;
  /** Bytes published per operation by what they were (a node role, or 'reply'), summed over the nodes. */
  bytesOutBy: Record<string, number>;
  messagesOutBy: Record<string, number>;
}

export function anatomyOf(before: readonly NodeCostReading[], after: readonly NodeCostReading[], ops: number): Anatomy | undefined {
  if (ops <= 0) return undefined;
  const perNode: Anatomy['perNode'] = [];
  const total = Object.fromEntries(costNames.map((n) => [n, 0])) as Record<CostName, number>;
  const bytesOutBy: Record<string, number> = {};
  const messagesOutBy: Record<string, number> = {};
  for (const a of after) {
    const b = before.find((r) => r.node === a.node);
    // A node missing from either reading (it did not answer) cannot be split into the window.
    if (!b) continue;
    const d = costsSince(b.value, a.value);
    const perOp = Object.fromEntries(costNames.map((n) => [n, d[n] / ops])) as Record<CostName, number>;
    perNode.push({ node: a.node, perOp });
    for (const n of costNames) total[n] += perOp[n];
    for (const [k, v] of Object.entries(d.bytesOutBy)) if (v > 0) bytesOutBy[k] = (bytesOutBy[k] ?? 0) + v / ops;
    for (const [k, v] of Object.entries(d.messagesOutBy)) if (v > 0) messagesOutBy[k] = (messagesOutBy[k] ?? 0) + v / ops;
  }
  if (perNode.length === 0) return undefined;
  return { ops, perNode, total, bytesOutBy, messagesOutBy };
}

/** The rows people read, in this order, with their names in the table. */
const shown: [CostName, string][] = [
  ['messagesIn', 'messages in'],
  ['messagesOut', 'messages out'],
  ['bytesIn', 'bytes in'],
  ['bytesOut', 'bytes out'],
  ['publishTurns', 'socket writes'],
  ['storeTxns', 'store transactions'],
  ['storeWrites', 'store writes'],
  ['transitions', 'transitions'],
  ['encodes', 'encodes'],
  ['decodes', 'decodes'],
  ['seals', 'seals'],
  ['opens', 'opens'],
];

function figure(x: number): string {
  if (x === 0) return '0';
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** The anatomy as a table: one row per count, one column per node and one for all nodes. */
export function formatAnatomy(a: Anatomy): string {
  const header = ['PER OPERATION', ...a.perNode.map((n) => n.node), 'ALL NODES'];
  const rows = shown.map(([name, label]) => [label, ...a.perNode.map((n) => figure(n.perOp[name])), figure(a.total[name])]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  let out = [line(header), ...rows.map(line)].map((l) => `    ${l}`).join('\n') + '\n';
  const by = Object.entries(a.bytesOutBy).sort((x, y) => y[1] - x[1]);
  if (by.length > 0) out += `    bytes out by kind: ${by.map(([k, v]) => `${k} ${figure(v)} (${figure(a.messagesOutBy[k] ?? 0)} msgs)`).join(', ')}\n`;
  return out;
}
