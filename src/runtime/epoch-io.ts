/**
 * The node's epoch while it runs (src/runtime/identity.ts, DESIGN.md §3): the one role that writes
 * `shared.identity`. A new epoch (a new clock id) is taken whenever a dot of the current one could
 * otherwise be made twice: a coordinated write whose dot was sent failed to commit, objects carrying
 * this node's dots are about to be deleted (ownership transfer), or the store dropped a corrupt
 * object that may have carried them.
 */
import type { DvvSet } from '../core/dvv.js';
import type { Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import { renewEpoch } from './identity.js';
import type { NodeShared } from './node-shared.js';

export interface EpochIo {
  /** Takes a new epoch at once: no write applied from now on makes a dot of the old clock id. */
  renewEpochNow(why: string): void;
  /** Renews the epoch if any of `states` carries a dot of the current clock id (called before they are deleted). */
  renewEpochBeforeDrop(states: readonly DvvSet[]): void;
  /** Starts watching the store for corrupt objects (counted, logged, and an epoch renewal per turn). */
  watchCorruption(): void;
}

export function createEpochIo(deps: { shared: NodeShared; store: Store; clock: Clock; newEpoch: () => string }): EpochIo {
  const { shared, store, clock } = deps;
  const { log, stats } = shared;

  const renewEpochNow = (why: string) => {
    const renewed = renewEpoch(store, shared.identity, deps.newEpoch);
    log.info(`new epoch: ${why}`, { from: shared.identity.epoch, to: renewed.identity.epoch });
    shared.identity = renewed.identity;
    renewed.stored.catch((err: unknown) => log.error('could not store the new epoch', { err }));
  };

  /**
   * Before this node deletes objects that carry a dot of its current clock id, it takes a new epoch
   * (src/runtime/identity.ts): a later write it coordinated for such a key from nothing would make
   * those dots again. At once, so that no write applied after the deletion uses the old id.
   */
  const renewEpochBeforeDrop = (states: readonly DvvSet[]) => {
    const own = shared.identity.dotId;
    if (!states.some((state) => state.some(([id]) => id === own))) return;
    renewEpochNow('this node deletes objects it made dots in');
  };

  // An object found corrupt is gone from this store (LmdbStore drops it): it may have carried dots
  // of this node's clock id, so, as before any drop of such an object, a new epoch comes first; at
  // most once per event-loop turn, since no dot made after the renewal can be in a record that was
  // already on disk. Synchronous: the store tells before the read that found it returns.
  const watchCorruption = () => {
    let renewedThisTurn = false;
    store.watchCorruption?.((found) => {
      stats.objectsCorrupt++;
      log.warn('an object failed its checksum: dropped here; anti-entropy fetches it from the other replicas', {
        partition: found.partition,
        where: found.where,
        objectsCorrupt: stats.objectsCorrupt,
      });
      if (renewedThisTurn) return;
      renewedThisTurn = true;
      clock.setTimeout(() => (renewedThisTurn = false), 0);
      renewEpochNow('an object that failed its checksum was dropped (it may have carried dots of this node)');
    });
  };

  return { renewEpochNow, renewEpochBeforeDrop, watchCorruption };
}
