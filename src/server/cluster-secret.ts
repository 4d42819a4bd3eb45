/**
 * The cluster secret (issue 17, item 2): what every member holds and nothing else does. Nodes seal
 * their internal traffic with it (src/protocol/seal.ts), the cluster id is derived from it
 * (src/protocol/cluster-id.ts), and admin tools that hold it may open inspect sessions.
 *
 * Where it comes from, first found wins: `--cluster-secret-file FILE` (the CLI moves the flag into
 * RINGKV_CLUSTER_SECRET_FILE, so launched processes inherit it through their environment, never
 * their argv), RINGKV_CLUSTER_SECRET_FILE, RINGKV_CLUSTER_SECRET (the secret itself). The secret is
 * the text of the file or variable with surrounding whitespace trimmed, at least
 * clusterSecretBytesMin bytes; `ringkv up` writes 32 random bytes as base64url. It is never printed,
 * logged, or put in an error message; errors name the file, not its content.
 *
 * A node with no secret refuses to start, whether it joins (`--seeds`: it could not be heard) or
 * forms a cluster (`--members`): a node that made a secret of its own would form a cluster its
 * fellow members could not join, since each `--members` node starts alone and would make another
 * one, and a secret made silently is one the operator does not know to guard or hand to joiners.
 * `ringkv up` makes one for its local cluster (mode 0600 in the data directory) and gives it to its
 * nodes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { clusterIdOf } from '../protocol/cluster-id.js';
import { clusterSecretBytesMin, type SealKey } from '../protocol/seal.js';

export const clusterSecretFileVariable = 'RINGKV_CLUSTER_SECRET_FILE';
export const clusterSecretVariable = 'RINGKV_CLUSTER_SECRET';

/** A problem with the secret: missing, unreadable or too short. The message never holds the secret. */
export class ClusterSecretError extends Error {
  constructor(
    readonly code: 'NO_SECRET' | 'BAD_SECRET',
    message: string,
  ) {
    super(message);
  }
}

export interface ClusterSecret {
  secret: Uint8Array;
  /** Where it came from, to log: a file path or a variable name, never the secret. */
  source: string;
  /** A group- or world-readable secret file: worth a warning. */
  loose?: boolean;
}

/** The secret from the environment (flag already moved into it), or undefined when none is given. */
export function findClusterSecret(env: NodeJS.ProcessEnv = process.env): ClusterSecret | undefined {
  const file = env[clusterSecretFileVariable]?.trim();
  if (file) {
    let text: string;
    let loose = false;
    try {
      text = readFileSync(file, 'utf8');
      loose = (statSync(file).mode & 0o077) !== 0;
    } catch (err) {
      throw new ClusterSecretError('BAD_SECRET', `cannot read the cluster secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return { secret: checked(text, `the cluster secret file ${file}`), source: file, loose };
  }
  const inline = env[clusterSecretVariable];
  if (inline !== undefined && inline.trim() !== '') return { secret: checked(inline, clusterSecretVariable), source: clusterSecretVariable };
  return undefined;
}

/** As findClusterSecret, but a missing secret is an error that says how to give one. */
export function requireClusterSecret(env: NodeJS.ProcessEnv = process.env, role = 'a node'): ClusterSecret {
  const found = findClusterSecret(env);
  if (found) return found;
  throw new ClusterSecretError(
    'NO_SECRET',
    `${role} needs the cluster secret: give --cluster-secret-file FILE (or ${clusterSecretFileVariable}, or ${clusterSecretVariable}); ` +
      'for a new cluster make one with `ringkv secret new FILE` and give the same file to every member',
  );
}

function checked(text: string, where: string): Uint8Array {
  const bytes = new TextEncoder().encode(text.trim());
  if (bytes.length < clusterSecretBytesMin) throw new ClusterSecretError('BAD_SECRET', `${where} holds ${bytes.length} bytes; a cluster secret needs at least ${clusterSecretBytesMin}`);
  return bytes;
}

export function sealKeyOf(secret: Uint8Array, clusterName: string): SealKey {
  return { clusterId: clusterIdOf(secret, clusterName), secret };
}

/** A new secret as text: 32 random bytes, base64url (43 characters). */
export function newClusterSecretText(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The secret file at `path`: kept when it exists (a restarted local cluster keeps its secret, or its
 * nodes could not read their own data's cluster id), else made, readable by its owner only.
 */
export function ensureClusterSecretFile(path: string): { created: boolean } {
  if (existsSync(path)) return { created: false };
  writeFileSync(path, newClusterSecretText() + '\n', { mode: 0o600, flag: 'wx' });
  return { created: true };
}
