/**
 * What an acknowledged write means on each target, so that a bench report says which durability
 * it measured and a reader compares like with like.
 *
 * ringkv (default): a replica acks only after its LMDB transaction commits; the environment runs
 * with noSync, so the commit is in the OS page cache (it survives kill -9 of the node, not a power
 * cut) and a timer forces an fdatasync within about a second (src/adapters/lmdb/lmdb-store.ts).
 *
 * NATS JetStream (default): a put is acked once the stream's Raft quorum has it, before any fsync.
 * nats-server 2.9 fsyncs a stream's block files every 2 minutes, a fixed interval (filestore
 * defaultSyncInterval); the `sync_interval` option that changes it, and `sync_interval: always`,
 * arrived in nats-server 2.10 (2.9.10 rejects the field as unknown). Checked on this project's
 * machines with strace: a stream written every second was first fsync'd 120 s after it was made.
 */
import type { Durability } from './target.js';

export const ringkvDefaultDurability: Durability = {
  mode: 'committed',
  ack: 'after the LMDB commit on W replicas (survives kill -9 of a node)',
  flush: 'fdatasync within ~1 s of the commit',
};

/** Nodes started with --fsync: lmdb-js resolves a commit only after LMDB's fdatasync. */
export const ringkvFsyncDurability: Durability = {
  mode: 'fsync',
  ack: 'after the LMDB commit and its fdatasync on W replicas (survives a power cut)',
  flush: 'fdatasync before each ack',
};

/** For a cluster whose nodes do not say (older nodes): the default is assumed. */
export const ringkvAssumedDurability: Durability = {
  ...ringkvDefaultDurability,
  mode: 'committed (assumed: the default; the cluster does not report its mode)',
};

/**
 * The durability a ringkv cluster reports (api.status of each node, DurabilityMode): one mode when
 * every node that answered says the same, 'mixed' when they differ, assumed when none says.
 */
export function ringkvDurability(modes: readonly (string | undefined)[]): Durability {
  const known = [...new Set(modes.filter((m): m is string => m !== undefined))];
  if (known.length === 0) return ringkvAssumedDurability;
  if (known.length > 1) {
    return { mode: `mixed (${known.join(', ')})`, ack: 'depends on the node: committed, or on disk with --fsync', flush: 'see each node' };
  }
  return known[0] === 'fsync' ? ringkvFsyncDurability : ringkvDefaultDurability;
}

/**
 * JetStream's durability for the nats-server version the bench is connected to. Before 2.10 the
 * fsync interval is fixed at 2 minutes; from 2.10 it is `sync_interval` (2 minutes unless the
 * server's configuration says otherwise, which a client cannot see), and `assumed` says so.
 */
export function jetStreamDurability(serverVersion: string | undefined, startedHere: boolean): Durability {
  const [major = 0, minor = 0] = (serverVersion ?? '').split('.').map((part) => Number.parseInt(part, 10) || 0);
  const fixedInterval = serverVersion !== undefined && (major < 2 || (major === 2 && minor < 10));
  const server = serverVersion ? `nats-server ${serverVersion}` : 'nats-server';
  const flush = fixedInterval
    ? `fsync every 2 min (${server}: a fixed interval before 2.10)`
    : `fsync every sync_interval (${server}: 2 min by default)`;
  const exact = fixedInterval || startedHere;
  return {
    mode: exact ? 'replicated' : 'replicated (assumed: the server default)',
    ack: 'after the stream replicas reach a Raft quorum, before any fsync',
    flush,
  };
}
