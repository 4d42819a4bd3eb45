/**
 * `ringkv hints`: per node, the hints it keeps for replicas that were down (by target: how many,
 * the bytes they will deliver, the oldest one's age) and how fast it is delivering them. Each node
 * is asked on its own subject; a node that does not answer is shown as such.
 */
import type { Command } from 'commander';
import type { ApiHintsOk } from '../protocol/messages.js';
import { formatJson, formatTable } from './output.js';

type WithAdmin = <T>(globals: { server?: string; cluster: string }, fn: (admin: import('../client/admin.js').ClusterAdmin) => Promise<T>) => Promise<T>;

export function registerHintsCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('hints')
    .description('show the hints each node keeps for replicas that were down, and their delivery')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; cluster: string; json?: boolean }>();
      const nodes = await withAdmin(g, async (admin) => {
        const status = await admin.status();
        return Promise.all(
          status.members.map(async (m) => {
            try {
              return await admin.hints({ via: m.nodeId });
            } catch (err) {
              // A user without the admin permissions is refused by every node alike: say so, exit 12.
              if ((err as { code?: string }).code === 'NATS_PERMISSION') throw err;
              return { nodeId: m.nodeId, error: (err as Error).message };
            }
          }),
        );
      });
      if (g.json) {
        process.stdout.write(formatJson({ nodes }));
        return;
      }
      const rows: string[][] = [];
      for (const n of nodes) {
        if ('error' in n) {
          rows.push([n.nodeId, '-', '-', '-', '-', `no answer: ${n.error}`]);
          continue;
        }
        const h = n as ApiHintsOk;
        const dropped = h.dropped > 0 ? `; ${h.dropped} dropped (target departed)` : '';
        const rate = `${h.deliveredPerSec.toFixed(1)}/s, ${(h.deliveredBytesPerSec / 1024).toFixed(1)} KiB/s${dropped}`;
        if (h.targets.length === 0) rows.push([h.nodeId, '-', '0', '0', '-', rate]);
        for (const t of h.targets) rows.push([h.nodeId, t.target, String(t.count), String(t.bytes), `${(t.oldestAgeMs / 1000).toFixed(1)} s`, rate]);
      }
      process.stdout.write(formatTable(rows, { header: ['NODE', 'TARGET', 'HINTS', 'BYTES', 'OLDEST', 'DELIVERY'] }));
    });
}
