/**
 * `ringkv aae`: anti-entropy (Merkle exchanges between the replicas of each partition).
 *
 *   ringkv aae [status] [--node ID]    per partition: the last exchange, keys repaired, bytes sent
 *                                      (summed over the nodes; --json adds each node's own rows)
 *   ringkv aae pause [--node ID]       stop the running exchanges, start none, refuse peers' ones
 *   ringkv aae resume [--node ID]      start again
 *
 * Each node is asked on its own subject (api.aae); without --node every member is. A node that does
 * not answer is reported as such; pause and resume exit 3 (NO_CLUSTER) when a node did not answer.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { AaeOp, AaePartitionStats, ApiAaeOk } from '../protocol/aae-messages.js';
import { exitCodes } from './exit-codes.js';
import { formatJson, formatTable } from './output.js';

interface Globals {
  server?: string;
  cluster: string;
  json?: boolean;
}

/** How long one node has to answer. */
const nodeAnswerTimeoutMs = 3_000;

type NodeAnswer = ApiAaeOk | { nodeId: string; error: string };

function action(text: string): AaeOp {
  if (text !== 'status' && text !== 'pause' && text !== 'resume') throw new InvalidArgumentError('the action must be status, pause or resume.');
  return text;
}

export function registerAaeCommand(program: Command): void {
  program
    .command('aae')
    .description('anti-entropy: per partition the last exchange, keys repaired and bytes sent; pause or resume the exchanges')
    .argument('[action]', 'status (default), pause or resume', action, 'status')
    .option('--node <id>', 'only this node (default: every member)')
    .action(async (op: AaeOp, o: { node?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const answers = await askNodes(g, op, o.node);
      if (g.json) {
        process.stdout.write(formatJson({ nodes: answers, partitions: combine(answers) }));
      } else {
        process.stdout.write(op === 'status' ? formatStatus(answers, Date.now()) : formatSwitch(answers, op));
      }
      if (answers.some((a) => 'error' in a) && op !== 'status') process.exitCode = exitCodes.noCluster;
    });
}

async function askNodes(g: Globals, op: AaeOp, only: string | undefined): Promise<NodeAnswer[]> {
  const { ClusterAdmin } = await import('../client/admin.js');
  const { resolveServerUrl } = await import('../server/local-cluster.js');
  const admin = await ClusterAdmin.connect({ servers: resolveServerUrl(g.server), cluster: g.cluster, timeoutMs: nodeAnswerTimeoutMs });
  try {
    const nodes = only !== undefined ? [only] : (await admin.status()).members.map((m) => m.nodeId);
    return await Promise.all(
      nodes.map(async (nodeId): Promise<NodeAnswer> => {
        try {
          return await admin.aae(op, { via: nodeId });
        } catch (err) {
          // One node named: its failure is the command's (UNKNOWN_NODE, NO_CLUSTER, TIMEOUT exit codes).
          if (only !== undefined) throw err;
          // A user without the admin permissions is refused by every node alike: say so, exit 12.
          if ((err as { code?: string }).code === 'NATS_PERMISSION') throw err;
          return { nodeId, error: (err as Error).message };
        }
      }),
    );
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** Per partition, over the nodes that answered: the latest exchange, and the sums. */
export function combine(answers: readonly NodeAnswer[]): AaePartitionStats[] {
  const byPartition = new Map<number, AaePartitionStats>();
  for (const a of answers) {
    if ('error' in a) continue;
    for (const s of a.partitions) {
      const c = byPartition.get(s.p) ?? { p: s.p, lastExchangeAt: null, exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0 };
      if (s.lastExchangeAt !== null && (c.lastExchangeAt === null || s.lastExchangeAt > c.lastExchangeAt)) c.lastExchangeAt = s.lastExchangeAt;
      c.exchanges += s.exchanges;
      c.failed += s.failed;
      c.keysRepaired += s.keysRepaired;
      c.bytesSent += s.bytesSent;
      byPartition.set(s.p, c);
    }
  }
  return [...byPartition.values()].sort((x, y) => x.p - y.p);
}

function age(at: number | null, now: number): string {
  if (at === null) return 'never';
  const s = Math.max(0, (now - at) / 1000);
  return s < 120 ? `${s.toFixed(1)} s ago` : `${(s / 60).toFixed(1)} min ago`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function nodeLine(a: NodeAnswer): string {
  if ('error' in a) return `${a.nodeId}: no answer (${a.error})`;
  const state = a.paused ? 'paused' : `active, ${a.running} running, ${a.queued} queued`;
  return `${a.nodeId}: ${state}; a round every ${(a.intervalMs / 1000).toFixed(1)} s, ${bytes(a.bytesPerSec)}/s, ${a.exchangesMax} at a time`;
}

export function formatStatus(answers: readonly NodeAnswer[], now: number): string {
  const head = answers.map(nodeLine).join('\n');
  const rows = combine(answers).map((s) => [String(s.p), age(s.lastExchangeAt, now), String(s.exchanges), String(s.failed), String(s.keysRepaired), bytes(s.bytesSent)]);
  const table = formatTable(rows, { header: ['PARTITION', 'LAST EXCHANGE', 'EXCHANGES', 'FAILED', 'KEYS REPAIRED', 'BYTES SENT'] });
  return `${head}\n\n${table}`;
}

function formatSwitch(answers: readonly NodeAnswer[], op: AaeOp): string {
  return `${answers.map((a) => ('error' in a ? `${a.nodeId}: no answer (${a.error})` : `${a.nodeId}: ${op === 'pause' ? 'paused' : 'resumed'}`)).join('\n')}\n`;
}
