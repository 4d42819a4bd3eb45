/**
 * Where a node writes a backup (src/server/backup.ts): only into a new directory inside its backup
 * directory, whatever an api.backup request names; and what a restore refuses.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackupRequestError, defaultBackupRoot, resolveBackupDir, restoreDataDir } from '../../src/server/backup.js';
import { tempDir } from '../support/nats-server.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('backup directories', () => {
  it('takes a relative name inside the backup directory, and an absolute path only inside it', () => {
    expect(resolveBackupDir('/srv/backups', 'nightly')).toBe('/srv/backups/nightly');
    expect(resolveBackupDir('/srv/backups', 'a/b')).toBe('/srv/backups/a/b');
    expect(resolveBackupDir('/srv/backups', '/srv/backups/x')).toBe('/srv/backups/x');
    for (const bad of ['../etc', '/etc/cron.d', '/srv/backups', '.', 'a/../../b', '/srv/backups-evil/x']) {
      expect(() => resolveBackupDir('/srv/backups', bad), bad).toThrow(BackupRequestError);
    }
  });

  it('defaults to backups/ beside the data directory', () => {
    expect(defaultBackupRoot('/var/lib/ringkv/n1')).toBe('/var/lib/ringkv/backups');
  });

  it('a restore refuses an unfinished backup, another node\'s, and a data directory that holds data', () => {
    const root = tempDir('ringkv-restore-');
    dirs.push(root);
    const backup = path.join(root, 'b');
    mkdirSync(backup);
    writeFileSync(path.join(backup, 'data.mdb'), 'not really lmdb');
    expect(() => restoreDataDir(backup, path.join(root, 'd1'), 'n1')).toThrow(/not a finished ringkv backup/);
    writeFileSync(path.join(backup, 'ringkv-backup.json'), JSON.stringify({ format: 1, nodeId: 'n2', epoch: 'e', cluster: 'c', takenAt: '', bytes: 15 }));
    expect(() => restoreDataDir(backup, path.join(root, 'd1'), 'n1')).toThrow(/is of node "n2", not "n1"/);
    const full = path.join(root, 'full');
    mkdirSync(full);
    writeFileSync(path.join(full, 'data.mdb'), 'data');
    expect(() => restoreDataDir(backup, full, 'n2')).toThrow(/not empty/);
    // An empty one takes it, once; the same restore again finds it done and leaves the data alone.
    const fresh = path.join(root, 'fresh');
    expect(restoreDataDir(backup, fresh, 'n2')?.nodeId).toBe('n2');
    writeFileSync(path.join(fresh, 'data.mdb'), 'written since');
    expect(restoreDataDir(backup, fresh, 'n2')).toBeUndefined();
  });
});
