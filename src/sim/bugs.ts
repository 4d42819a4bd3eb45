/**
 * Deliberately broken mechanisms, for tests only: they show that the simulation sweep catches a
 * real class of bug (issue 7, "done when"). Each one wraps a node's Store handle inside the
 * simulator; production code is never touched.
 *
 * - ackBeforeCommit: `update` resolves as soon as the write is issued, before its commit. A crash
 *   then loses writes that were already acknowledged to a coordinator (and so to a client).
 * - dropSiblingsOnSync: a write that merges another replica's state (replication, read repair)
 *   keeps only one sibling and drops the others while keeping their history, so the dropped values
 *   look superseded everywhere the state spreads.
 */
import { type DvvSet, siblingCount } from '../core/dvv.js';
import type { HintWrite, Mutation, Store } from '../ports/store.js';
import { overrideStore } from './store-override.js';
import { dotIdOf } from '../runtime/identity.js';


export interface InjectedBugs {
  ackBeforeCommit?: boolean;
  dropSiblingsOnSync?: boolean;
}

export function hasBugs(bugs: InjectedBugs | undefined): boolean {
  return bugs !== undefined && (bugs.ackBeforeCommit === true || bugs.dropSiblingsOnSync === true);
}

export function withBugs(store: Store, bugs: InjectedBugs | undefined): Store {
  if (!hasBugs(bugs)) return store;
  return overrideStore(store, {
    update<T>(p: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> {
      const m = bugs!.dropSiblingsOnSync ? dropSiblingsOnSync(store, mutate) : mutate;
      if (!bugs!.ackBeforeCommit) return store.update(p, key, m, hints);
      // The store runs mutate synchronously at the call; its result is the answer, given at once.
      let issued: Mutation<T> | undefined;
      const committed = store.update(p, key, (current) => (issued = m(current)), hints);
      committed.catch(() => undefined);
      return issued === undefined ? committed : Promise.resolve(issued.result);
    },
  });
}

function dropSiblingsOnSync<T>(store: Store, mutate: (current: DvvSet | undefined) => Mutation<T>) {
  return (current: DvvSet | undefined): Mutation<T> => {
    const m = mutate(current);
    if (m.next === null || siblingCount(m.next) <= 1) return m;
    const identity = store.getMeta<{ nodeId: string; epoch: string }>('identity');
    const own = identity ? dotIdOf(identity.nodeId, identity.epoch) : '';
    // A client write at this replica makes exactly one new dot of this node; anything else merged
    // another replica's state in.
    const isCoordinate = counter(m.next, own) === counter(current ?? [], own) + 1;
    if (isCoordinate) return m;
    let kept = false;
    const next: DvvSet = m.next.map(([id, n, vals]) => {
      if (!kept && vals.length > 0) {
        kept = true;
        return [id, n, vals.slice(0, 1)];
      }
      return [id, n, []];
    });
    return { next, result: m.result };
  };
}

function counter(set: DvvSet, id: string): number {
  return set.find((e) => e[0] === id)?.[1] ?? 0;
}
