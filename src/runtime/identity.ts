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
 */
import type { Store } from '../ports/store.js';

export interface Identity {
  nodeId: string;
  epoch: string;
  /** The clock id of this node's dots. */
  dotId: string;
  /** True when this start took a new epoch (first start, or the data was lost). */
  isNewEpoch: boolean;
}

interface StoredIdentity {
  nodeId: string;
  epoch: string;
  /** True from start to clean stop: found true at a start, the node crashed. */
  running?: boolean;
}

export class IdentityMismatchError extends Error {}

export async function loadIdentity(store: Store, nodeId: string, newEpoch: () => string): Promise<Identity> {
  const stored = store.getMeta<StoredIdentity>('identity');
  if (stored) {
    if (stored.nodeId !== nodeId) {
      throw new IdentityMismatchError(`the data directory belongs to node "${stored.nodeId}", not "${nodeId}"`);
    }
    if (stored.running !== true) {
      await store.putMeta('identity', { nodeId, epoch: stored.epoch, running: true } satisfies StoredIdentity);
      return { nodeId, epoch: stored.epoch, dotId: dotIdOf(nodeId, stored.epoch), isNewEpoch: false };
    }
  }
  const epoch = newEpoch();
  await store.putMeta('identity', { nodeId, epoch, running: true } satisfies StoredIdentity);
  return { nodeId, epoch, dotId: dotIdOf(nodeId, epoch), isNewEpoch: true };
}

/** Records a clean stop: call after the node's last write was issued (writes commit in order). */
export async function markCleanStop(store: Store, identity: Identity): Promise<void> {
  await store.putMeta('identity', { nodeId: identity.nodeId, epoch: identity.epoch, running: false } satisfies StoredIdentity);
}

export function dotIdOf(nodeId: string, epoch: string): string {
  return `${nodeId}/${epoch}`;
}
