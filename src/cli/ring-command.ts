/**
 * `ringkv ring`: every partition with its preference list (the N primaries, owner first), as the
 * answering node's ring has them, and each node's liveness as that node sees it.
 */
import type { Command } from 'commander';
import { preferenceList, type Ring } from '../core/ring.js';
import type { ApiStatusOk } from '../protocol/messages.js';
import { formatJson, formatTable } from './output.js';

type WithClient = <T>(globals: { server?: string; cluster: string }, fn: (client: import('../client/client.js').RingkvClient) => Promise<T>) => Promise<T>;

/** The ring a status answer describes: partition p's owner is the member that lists p. */
export function ringOfStatus(status: ApiStatusOk): Ring {
  const owners = new Array<string>(status.partitions);
  for (const m of status.members) for (const p of m.partitions) owners[p] = m.nodeId;
  return { q: status.partitions, owners };
}

export function registerRingCommand(program: Command, withClient: WithClient): void {
  program
    .command('ring')
    .description('list every partition with its preference list (owner first)')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; cluster: string; json?: boolean }>();
      const status = await withClient(g, (c) => c.status());
      const ring = ringOfStatus(status);
      const down = new Set(status.members.filter((m) => m.state !== 'up').map((m) => m.nodeId));
      const partitions = ring.owners.map((_, p) => ({ partition: p, preferenceList: preferenceList(ring, p, status.n) }));
      if (g.json) {
        process.stdout.write(formatJson({ cluster: status.cluster, n: status.n, answeredBy: status.nodeId, partitions }));
        return;
      }
      process.stdout.write(`cluster ${status.cluster}: ${status.partitions} partitions, N=${status.n} (as ${status.nodeId} sees it)\n\n`);
      const rows = partitions.map(({ partition, preferenceList: prefs }) => [String(partition), prefs.map((n) => (down.has(n) ? `${n} (down)` : n)).join(', ')]);
      process.stdout.write(formatTable(rows, { header: ['PARTITION', 'PREFERENCE LIST'] }));
    });
}
