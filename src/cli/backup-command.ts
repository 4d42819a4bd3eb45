/**
 * `ringkv backup --node ID DIR`: asks node ID for a consistent, compacted copy of its LMDB
 * environment while it serves. The node writes it on its own host, into DIR inside its backup
 * directory (`ringkv node --backup-dir`, default `backups/` beside its data directory; a relative DIR
 * is taken relative to it), and answers once the copy is complete. Restore with
 * `ringkv node --restore-from DIR` (src/server/backup.ts).
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { ApiBackupOk } from '../protocol/messages.js';
import { formatJson, formatTable } from './output.js';

type WithAdmin = <T>(globals: { server?: string; cluster: string }, fn: (admin: import('../client/admin.js').ClusterAdmin) => Promise<T>) => Promise<T>;

/** A compacted copy runs at disk speed; a large store takes minutes. */
const backupTimeoutMsDefault = 600_000;

export function registerBackupCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('backup')
    .description("copy one node's store (consistent and compacted, taken while it serves) into DIR inside the node's backup directory")
    .requiredOption('--node <id>', 'the node to back up')
    .argument('<dir>', "the new backup directory, relative to the node's --backup-dir (or an absolute path inside it)")
    .option('--timeout-ms <ms>', `how long the node has to finish the copy (default ${backupTimeoutMsDefault})`, (t: string) => {
      const ms = Number(t);
      if (!/^\d+$/.test(t.trim()) || !Number.isSafeInteger(ms) || ms < 1) throw new InvalidArgumentError('timeout-ms must be a whole number of at least 1.');
      return ms;
    })
    .action(async (dir: string, o: { node: string; timeoutMs?: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; cluster: string; json?: boolean }>();
      const ok: ApiBackupOk = await withAdmin(g, (admin) => admin.backup(dir, { via: o.node, timeoutMs: o.timeoutMs ?? backupTimeoutMsDefault }));
      if (g.json) {
        process.stdout.write(formatJson(ok));
        return;
      }
      process.stdout.write(formatTable([[ok.nodeId, ok.dir, String(ok.bytes), ok.epoch, `${ok.tookMs} ms`]], { header: ['NODE', 'DIR', 'BYTES', 'EPOCH', 'TOOK'] }));
    });
}
