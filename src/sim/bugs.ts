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
 *
 * Two more bring back real bugs the simulator found, both fixed since; test/sim/regressions.test.ts
 * shows that each one loses an acknowledged write, and that the fixed code does not:
 *
 * - keepEpochAfterCrash (dot reuse): the node restarts after a crash with its old epoch, as
 *   loadIdentity did before it kept a `running` mark (src/runtime/identity.ts). The store reports
 *   the stored identity as cleanly stopped. A replica answers reads from its uncommitted writes, so
 *   a dot can leave the node (in a read answer, then in read repair and in the contexts of later
 *   client writes) before it is durable; a crash loses the write, and with the old epoch the node's
 *   next write of the key makes that dot again for another value, which every replica that saw the
 *   dot superseded drops (Riak's kv679, by another road).
 * - noOpAckBeforeCommit (early ack): an update that writes nothing (next === null, no hints)
 *   resolves at once, as LmdbStore's did, even when the state it judged is an uncommitted write of
 *   the key. A replica that gets replica.put for a state it already holds uncommitted (read repair
 *   racing replication, or a duplicate) then acks before its copy is durable, so W acks are not W
 *   durable copies: a power loss right after the client's ack, and the coordinator's disk lost with
 *   it, lose the acknowledged write.
 */
import { type DvvSet, siblingCount } from '../core/dvv.js';
import type { HintWrite, Mutation, Store } from '../ports/store.js';
import { overrideStore } from './store-override.js';
import { dotIdOf } from '../runtime/identity.js';


export interface InjectedBugs {
  ackBeforeCommit?: boolean;
  dropSiblingsOnSync?: boolean;
  keepEpochAfterCrash?: boolean;
  noOpAckBeforeCommit?: boolean;
}

export const bugNames = ['ackBeforeCommit', 'dropSiblingsOnSync', 'keepEpochAfterCrash', 'noOpAckBeforeCommit'] as const satisfies readonly (keyof InjectedBugs)[];

export function hasBugs(bugs: InjectedBugs | undefined): boolean {
  return bugs !== undefined && bugNames.some((name) => bugs[name] === true);
}

export function withBugs(store: Store, bugs: InjectedBugs | undefined): Store {
  if (!hasBugs(bugs)) return store;
  const b = bugs!;
  const overrides: Partial<Store> = {};
  if (b.ackBeforeCommit || b.dropSiblingsOnSync || b.noOpAckBeforeCommit) {
    overrides.update = <T>(p: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>, hints?: HintWrite): Promise<T> => {
      const m = b.dropSiblingsOnSync ? dropSiblingsOnSync(store, mutate) : mutate;
      if (!b.ackBeforeCommit && !b.noOpAckBeforeCommit) return store.update(p, key, m, hints);
      // The store runs mutate synchronously at the call; its result is the answer, given at once
      // (ackBeforeCommit), or only when there is nothing to write (noOpAckBeforeCommit).
      let issued: Mutation<T> | undefined;
      const committed = store.update(p, key, (current) => (issued = m(current)), hints);
      if (issued === undefined) return committed;
      const writesNothing = issued.next === null && !hints?.targets.length;
      if (!b.ackBeforeCommit && !writesNothing) return committed;
      committed.catch(() => undefined);
      return Promise.resolve(issued.result);
    };
  }
  if (b.keepEpochAfterCrash) {
    // The last life always looks like it ended with a clean stop: loadIdentity keeps the epoch.
    overrides.getMeta = <T>(name: string): T | undefined => {
      const value = store.getMeta<T>(name);
      if (name !== 'identity' || value === undefined || value === null || typeof value !== 'object') return value;
      return { ...value, running: false } as T;
    };
  }
  return overrideStore(store, overrides);
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
