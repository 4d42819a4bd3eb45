/**
 * `ringkv transfers`: every ownership transfer in progress in the cluster. Each member is asked on
 * its own subject (a transfer is reported by the node handing the partition over); a row shows the
 * partition, from and to, a progress bar over the objects found when it started, the rate and an
 * ETA. A node that does not answer is listed as such. `--json` gives the nodes' answers whole.
 */
import type { Command } from 'commander';
import type { ApiTransfersOk, TransferRow } from '../protocol/messages.js';
import { formatJson, formatTable } from './output.js';

type WithAdmin = <T>(globals: { server?: string; cluster: string }, fn: (admin: import('../client/admin.js').ClusterAdmin) => Promise<T>) => Promise<T>;

const barWidth = 20;

/** A text progress bar: `[#######.............]  35%`. */
export function progressBar(done: number, total: number, width = barWidth): string {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}%`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function rateText(t: TransferRow): string {
  if (t.elapsedMs === null) return '-';
  return `${t.objectsPerSec.toFixed(1)} obj/s, ${(t.bytesPerSec / 1024).toFixed(1)} KiB/s`;
}

export function registerTransfersCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('transfers')
    .description('show each ownership transfer in progress: partition, from, to, progress, rate and ETA')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; cluster: string; json?: boolean }>();
      const nodes = await withAdmin(g, async (admin) => {
        const status = await admin.status();
        return Promise.all(
          status.members.map(async (m): Promise<ApiTransfersOk | { nodeId: string; error: string }> => {
            try {
              return await admin.transfers({ via: m.nodeId });
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
      const notes: string[] = [];
      for (const n of nodes) {
        if ('error' in n) {
          notes.push(`${n.nodeId}: no answer (${n.error})`);
          continue;
        }
        notes.push(`${n.nodeId}: ${n.transfers.filter((t) => t.elapsedMs !== null).length} running, ${n.transfers.filter((t) => t.elapsedMs === null).length} waiting, ${n.inbound} inbound, ${n.completed} completed`);
        for (const t of n.transfers) {
          rows.push([
            String(t.p),
            t.from,
            t.to.join(','),
            t.state,
            progressBar(t.objectsSent, t.objectsTotal),
            `${t.objectsSent}/${t.objectsTotal}`,
            String(t.bytesSent),
            rateText(t),
            formatDuration(t.etaMs),
          ]);
        }
      }
      rows.sort((a, b) => Number(a[0]) - Number(b[0]) || a[1]!.localeCompare(b[1]!));
      if (rows.length === 0) process.stdout.write('no ownership transfer in progress\n');
      else process.stdout.write(formatTable(rows, { header: ['PARTITION', 'FROM', 'TO', 'STATE', 'PROGRESS', 'OBJECTS', 'BYTES SENT', 'RATE', 'ETA'] }));
      process.stdout.write(notes.join('\n') + '\n');
    });
}
