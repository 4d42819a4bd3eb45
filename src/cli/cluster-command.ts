/**
 * `ringkv cluster`: staged membership changes, as in Riak. Stage, look at the plan, then commit or
 * clear. Only commit changes the ring; gossip spreads it, and ownership transfer moves the data.
 *
 *   ringkv cluster join <seed> --node <id>   stage the join of <id> (started with --seeds), asked at <seed>
 *   ringkv cluster leave [node]               stage the leave of a node, by default the node asked (it hands its data over, then exits)
 *   ringkv cluster force-remove <node>        stage the removal of a node without handoff (it is gone)
 *   ringkv cluster plan                       the staged changes, each partition move, shares before/after
 *   ringkv cluster commit                     apply the plan: the next ring
 *   ringkv cluster clear                      drop every staged change
 *
 * Every change is made by one member, the claimant (the lowest-id valid member of the ring not
 * staged for removal): the node asked forwards it there, and the claimant answers. A commit waits a
 * few gossip rounds for the claimant's cluster state to converge. --via <id> asks that node instead
 * of any node of the queue group. Refusals print their code (NO_CHANGES, UNKNOWN_NODE,
 * TOO_FEW_NODES, ALREADY_MEMBER, NOT_READY: no ring yet, the claimant is down, or the cluster state
 * has not converged) and exit 7.
 */
import type { Command } from 'commander';
import type { ClusterAdmin } from '../client/admin.js';
import type { Plan } from '../core/cluster-state.js';
import type { ApiClusterOk } from '../protocol/messages.js';
import { formatJson, formatTable } from './output.js';

interface Globals {
  server?: string;
  cluster: string;
  json?: boolean;
}

async function withAdmin<T>(g: Globals, fn: (admin: ClusterAdmin) => Promise<T>): Promise<T> {
  const { ClusterAdmin } = await import('../client/admin.js');
  const { resolveServerUrl } = await import('../server/local-cluster.js');
  const admin = await ClusterAdmin.connect({ servers: resolveServerUrl(g.server), cluster: g.cluster });
  try {
    return await fn(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** The plan as text: staged changes, the moves, and each node's share before and after. */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [];
  lines.push(`staged changes (on ring version ${plan.ringVersion}):`);
  lines.push(formatTable(plan.changes.map((c) => [c.op, c.node]), { header: ['CHANGE', 'NODE'] }));
  lines.push(`\n${plan.moves.length} of ${plan.next.q} partitions move:`);
  if (plan.moves.length > 0) lines.push(formatTable(plan.moves.map((m) => [String(m.partition), m.from, m.to]), { header: ['PARTITION', 'FROM', 'TO'] }));
  lines.push('\nownership:');
  const after = new Map(plan.after.map((s) => [s.node, s]));
  const rows = plan.before.map((b) => {
    const a = after.get(b.node);
    return [b.node, `${b.partitions} (${b.percent}%)`, a ? `${a.partitions} (${a.percent}%)` : '0 (0%)'];
  });
  lines.push(formatTable(rows, { header: ['NODE', 'BEFORE', 'AFTER'] }));
  return `${lines.join('\n')}\n`;
}

function report(g: Globals, answer: ApiClusterOk, done: string): void {
  if (g.json) {
    process.stdout.write(formatJson(answer));
    return;
  }
  process.stdout.write(`${done}\n`);
  if (answer.plan) process.stdout.write(formatPlan(answer.plan));
  else if (answer.changes.length > 0) {
    process.stdout.write(`staged changes:\n${formatTable(answer.changes.map((c) => [c.op, c.node]), { header: ['CHANGE', 'NODE'] })}`);
    process.stdout.write('run `ringkv cluster plan` to see the moves, then `ringkv cluster commit`\n');
  }
}

export function registerClusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('membership: stage joins, leaves and removals, then plan and commit them');
  const g = (cmd: Command) => cmd.optsWithGlobals<Globals & { via?: string }>();

  cluster
    .command('join')
    .description('stage the join of a node started with --seeds; asked at <seed>, a member of the cluster')
    .argument('<seed>', 'a member of the cluster')
    .requiredOption('--node <id>', 'the node that joins')
    .action(async (seed: string, o: { node: string }, cmd: Command) => {
      const answer = await withAdmin(g(cmd), (a) => a.join(o.node, { via: seed }));
      report(g(cmd), answer, `join of ${o.node} staged`);
    });

  cluster
    .command('leave')
    .description('stage the leave of a node: after commit it hands its partitions over, then exits')
    .argument('[node]', 'the node that leaves (default: the node asked)')
    .option('--via <id>', 'ask this node')
    .action(async (node: string | undefined, o: { via?: string }, cmd: Command) => {
      const answer = await withAdmin(g(cmd), (a) => a.leave(node, { via: o.via }));
      report(g(cmd), answer, `leave of ${node ?? answer.node ?? answer.nodeId} staged`);
    });

  cluster
    .command('force-remove')
    .description('stage the removal of a node without handoff (its replicas are rebuilt from the others)')
    .argument('<node>')
    .option('--via <id>', 'ask this node')
    .action(async (node: string, o: { via?: string }, cmd: Command) => {
      const answer = await withAdmin(g(cmd), (a) => a.forceRemove(node, { via: o.via }));
      report(g(cmd), answer, `removal of ${node} staged`);
    });

  for (const [name, description, done] of [
    ['plan', 'show the staged changes, each partition move, and the ownership share per node before and after', 'plan:'],
    ['commit', 'commit the staged changes: the next ring', 'committed:'],
    ['clear', 'drop every staged change', 'staged changes cleared'],
  ] as const) {
    cluster
      .command(name)
      .description(description)
      .option('--via <id>', 'ask this node')
      .action(async (o: { via?: string }, cmd: Command) => {
        const answer = await withAdmin(g(cmd), (a) => a[name]({ via: o.via }));
        report(g(cmd), answer, name === 'commit' ? `committed by the claimant ${answer.nodeId}: ring version ${answer.ringVersion}` : done);
      });
  }
}
