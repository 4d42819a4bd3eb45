/**
 * Backup and restore of one node (`ringkv backup --node ID DIR`, `ringkv node --restore-from DIR`).
 *
 * The node takes the backup itself, on request over its api subject: only the process that has the
 * LMDB environment open can copy it consistently while it serves (one read transaction: LMDB's
 * copy with compaction), and the node may run on another host or in a container the CLI cannot
 * reach. The copy is therefore written on the node's host, and only inside its backup directory
 * (`--backup-dir`, default `backups/` beside the data directory): a request names a directory
 * relative to it (or an absolute path inside it), which must not exist yet or be empty. Nothing on
 * NATS can make a node write anywhere else.
 *
 * A backup directory holds `data.mdb` (the compacted environment) and `ringkv-backup.json` (node
 * id, epoch, cluster, time, size). Restore copies `data.mdb` into an empty data directory and marks
 * the stored identity as running (src/runtime/identity.ts markRestored), so the node starts with a
 * NEW epoch: the dots it made after the backup are not in the copy, and it must never make them
 * again. Anti-entropy, hinted handoff and read repair then bring it up to date from the replicas.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LmdbStore } from '../adapters/lmdb/lmdb-store.js';
import type { ApiBackupOk } from '../protocol/messages.js';
import type { Identity } from '../runtime/identity.js';

export const backupManifestName = 'ringkv-backup.json';
const dataFileName = 'data.mdb';

export interface BackupManifest {
  format: 1;
  nodeId: string;
  epoch: string;
  cluster: string;
  takenAt: string;
  bytes: number;
}

/** An error whose message says what the request got wrong (answered BAD_REQUEST). */
export class BackupRequestError extends Error {
  readonly code = 'BAD_REQUEST';
}

/** The default backup directory of a node: `backups/` beside its data directory. */
export function defaultBackupRoot(dataDir: string): string {
  return path.join(path.dirname(path.resolve(dataDir)), 'backups');
}

/** Where a requested backup goes: inside `root`, relative to it unless absolute; refused otherwise. */
export function resolveBackupDir(root: string, requested: string): string {
  const base = path.resolve(root);
  const dir = path.resolve(base, requested);
  const rel = path.relative(base, dir);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new BackupRequestError(`a backup goes into a new directory inside this node's backup directory ${base} (--backup-dir); ${JSON.stringify(requested)} is not inside it`);
  }
  return dir;
}

/** Takes one backup of a running node's store into `requested` (see the file comment). */
export async function takeBackup(store: LmdbStore, root: string, requested: string, identity: Identity, cluster: string, now: () => number = Date.now): Promise<ApiBackupOk> {
  const dir = resolveBackupDir(root, requested);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new BackupRequestError(`${dir} already exists and is not an empty directory: a backup never overwrites another`);
  }
  mkdirSync(dir, { recursive: true });
  const started = now();
  await store.backup(dir);
  const bytes = statSync(path.join(dir, dataFileName)).size;
  const manifest: BackupManifest = { format: 1, nodeId: identity.nodeId, epoch: identity.epoch, cluster, takenAt: new Date(now()).toISOString(), bytes };
  // The manifest is written last: a directory without one is a backup that did not finish.
  writeFileSync(path.join(dir, backupManifestName), `${JSON.stringify(manifest, null, 2)}\n`);
  return { nodeId: identity.nodeId, dir, bytes, epoch: identity.epoch, tookMs: now() - started };
}

/** Left in a restored data directory: names the backup it came from. */
const restoredMarkerName = 'ringkv-restored-from.json';

/**
 * Puts a backup in place as a node's data directory, before the store opens: the backup must be
 * whole (its manifest), of this node, and the data directory empty (a restore never overwrites
 * data). Returns the manifest, or undefined when the data directory was already restored from
 * this very backup (a supervisor that restarts the node with the same flags must not loop on a
 * refusal, nor restore twice).
 */
export function restoreDataDir(from: string, dataDir: string, nodeId: string, check?: (manifest: BackupManifest) => void): BackupManifest | undefined {
  const manifestPath = path.join(from, backupManifestName);
  if (!existsSync(manifestPath) || !existsSync(path.join(from, dataFileName))) {
    throw new BackupRequestError(`${from} is not a finished ringkv backup (it needs ${dataFileName} and ${backupManifestName})`);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as BackupManifest;
  if (manifest.nodeId !== nodeId) throw new BackupRequestError(`the backup in ${from} is of node "${manifest.nodeId}", not "${nodeId}"`);
  const marker = path.join(dataDir, restoredMarkerName);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === JSON.stringify(manifest)) return undefined;
  // Before anything is copied: the caller may refuse this backup (one older than the tombstone grace period).
  check?.(manifest);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new BackupRequestError(`the data directory ${dataDir} is not empty: a restore never overwrites data (move it away first)`);
  }
  mkdirSync(dataDir, { recursive: true });
  copyFileSync(path.join(from, dataFileName), path.join(dataDir, dataFileName));
  writeFileSync(marker, JSON.stringify(manifest));
  return manifest;
}
