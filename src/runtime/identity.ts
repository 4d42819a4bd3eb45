/**
 * A node's identity: its id and its epoch (DESIGN.md §1). The epoch is new whenever the node starts
 * with no data, so the dots it makes can never collide with dots it made in an earlier life whose
 * data is gone (Riak's kv679). It is kept in the meta database next to the data it vouches for.
 *
 * It is new after a crash too. A replica's reads see its writes before they commit, so a dot can
 * reach other nodes (through a read and its repair, or a client's context) and then be lost with the
 * uncommitted write in a crash; a node that went on with the same epoch would make that dot again
 * for another value, and replicas that had seen it superseded would drop the new value (found by
 * the simulator). `running` is set at start and cleared by a clean stop, after every write has
 * committed; a start that finds it set knows the last life ended in a crash.
 *
 * And it is new while the node runs whenever it is about to delete an object that carries a dot of
 * its current clock id (ownership transfer dropping a copy it handed over, typically a fallback's):
 * a dot's counter continues from the key's stored state, so a node that later coordinated a write
 * to that key again from nothing would make its first dots again, and replicas that had seen them
 * would drop the new value as already seen (found by the simulator: `ringkv sim --seed 790`).
 */
import type { Store } from '../ports/store.js';

/*
 * The identity also holds the id of the cluster the data belongs to (protocol/cluster-id.ts), stored
 * at the node's first start. A later start whose secret gives another id is refused: it was given
 * the wrong secret (or the data directory of another cluster), and would otherwise start a node that
 * nobody in its cluster can hear.
 */

export interface Identity {
  nodeId: string;
  epoch: string;
  /** The clock id of this node's dots. */
  dotId: string;
  /** True when this start took a new epoch (first start, or the data was lost). */
  isNewEpoch: boolean;
  /** The id of this node's cluster. */
  clusterId: string;
}

interface StoredIdentity {
  nodeId: string;
  epoch: string;
  /** True from start to clean stop: found true at a start, the node crashed. */
  running?: boolean;
  /** Absent in data written before clusters had ids: the first start that finds none stores it. */
  clusterId?: string;
}

export class IdentityMismatchError extends Error {}

/** The data directory belongs to another cluster id than the secret gives: the wrong secret. */
export class ClusterIdMismatchError extends Error {
  readonly code = 'CLUSTER_MISMATCH';
}

/** The cluster id stored in the data directory's identity, if any (a node that has served before). */
export function storedClusterId(store: Store): string | undefined {
  return store.getMeta<StoredIdentity>('identity')?.clusterId;
}

export async function loadIdentity(store: Store, nodeId: string, newEpoch: () => string, clusterId: string): Promise<Identity> {
  const stored = store.getMeta<StoredIdentity>('identity');
  if (stored) {
    if (stored.nodeId !== nodeId) {
      throw new IdentityMismatchError(`the data directory belongs to node "${stored.nodeId}", not "${nodeId}"`);
    }
    if (stored.clusterId !== undefined && stored.clusterId !== clusterId) {
      throw new ClusterIdMismatchError(
        `the data directory belongs to cluster id ${stored.clusterId}, but this node's cluster secret gives ${clusterId}: give it the secret its cluster was made with`,
      );
    }
    if (stored.running !== true) {
      await store.putMeta('identity', { nodeId, epoch: stored.epoch, running: true, clusterId } satisfies StoredIdentity);
      return { nodeId, epoch: stored.epoch, dotId: dotIdOf(nodeId, stored.epoch), isNewEpoch: false, clusterId };
    }
  }
  const epoch = newEpoch();
  await store.putMeta('identity', { nodeId, epoch, running: true, clusterId } satisfies StoredIdentity);
  return { nodeId, epoch, dotId: dotIdOf(nodeId, epoch), isNewEpoch: true, clusterId };
}

/**
 * A new epoch for a running node: returns the new identity at once (the caller makes every later
 * dot with it) and stores it, still running. If the node crashes before that commits, its next
 * start takes a new epoch anyway.
 */
export function renewEpoch(store: Store, identity: Identity, newEpoch: () => string): { identity: Identity; stored: Promise<void> } {
  const epoch = newEpoch();
  const next: Identity = { nodeId: identity.nodeId, epoch, dotId: dotIdOf(identity.nodeId, epoch), isNewEpoch: true, clusterId: identity.clusterId };
  return { identity: next, stored: store.putMeta('identity', { nodeId: identity.nodeId, epoch, running: true, clusterId: identity.clusterId } satisfies StoredIdentity) };
}

/**
 * A data directory restored from a backup: the node made dots after the backup was taken that the
 * copy does not hold, so it must not go on with that epoch. Marks the stored identity as running,
 * as a crash would leave it: the next loadIdentity takes a new epoch.
 */
export async function markRestored(store: Store): Promise<StoredIdentity | undefined> {
  const stored = store.getMeta<StoredIdentity>('identity');
  if (stored) await store.putMeta('identity', { ...stored, running: true } satisfies StoredIdentity);
  return stored;
}

/** Records a clean stop: call after the node's last write was issued (writes commit in order). */
export async function markCleanStop(store: Store, identity: Identity): Promise<void> {
  await store.putMeta('identity', { nodeId: identity.nodeId, epoch: identity.epoch, running: false, clusterId: identity.clusterId } satisfies StoredIdentity);
}

export function dotIdOf(nodeId: string, epoch: string): string {
  return `${nodeId}/${epoch}`;
}
