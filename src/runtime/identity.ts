/**
 * A node's identity: its id and its epoch (DESIGN.md §1). The epoch is new whenever the node starts
 * with no data, so the dots it makes can never collide with dots it made in an earlier life whose
 * data is gone (Riak's kv679). It is kept in the meta database next to the data it vouches for.
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
}

export class IdentityMismatchError extends Error {}

export async function loadIdentity(store: Store, nodeId: string, newEpoch: () => string): Promise<Identity> {
  const stored = store.getMeta<StoredIdentity>('identity');
  if (stored) {
    if (stored.nodeId !== nodeId) {
      throw new IdentityMismatchError(`the data directory belongs to node "${stored.nodeId}", not "${nodeId}"`);
    }
    return { nodeId, epoch: stored.epoch, dotId: dotIdOf(nodeId, stored.epoch), isNewEpoch: false };
  }
  const epoch = newEpoch();
  await store.putMeta('identity', { nodeId, epoch } satisfies StoredIdentity);
  return { nodeId, epoch, dotId: dotIdOf(nodeId, epoch), isNewEpoch: true };
}

export function dotIdOf(nodeId: string, epoch: string): string {
  return `${nodeId}/${epoch}`;
}
