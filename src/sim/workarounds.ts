/**
 * Workarounds the simulator can apply for known protocol bugs, so that a sweep can look past a bug
 * that is already understood. Each is off by default: by default the simulator shows the real
 * behaviour.
 */
import type { Store } from '../ports/store.js';
import { overrideStore } from './store-override.js';

export interface Workarounds {
  /** A node restarted after a crash takes a new epoch (the dot-reuse bug, below). */
  newEpochOnRestart?: boolean;
  /**
   * A store update that writes nothing resolves only after every earlier write has committed (the
   * early-ack bug, below; SimStore's noOpUpdateWaitsForCommit).
   *
   * Why: LmdbStore.update resolves at once when mutate leaves the object alone (next === null), even
   * when the state it compared against is an uncommitted write still in the overlay. A replica
   * that receives replica.put for a state it already holds uncommitted (read repair racing
   * replication, or a duplicate) therefore acks before that state is durable, and the coordinator
   * counts it toward W. A power loss right after the client's ack loses those copies; if the
   * coordinator's own disk is then lost, the acknowledged write is gone although W = 2 acked it.
   * Seed 4018 (4 nodes, 100 ops, swarm, with the code of this commit's day) showed it.
   */
  noOpUpdateWaitsForCommit?: boolean;
}

export const workaroundNames = { 'new-epoch-on-restart': 'newEpochOnRestart', 'no-op-waits-for-commit': 'noOpUpdateWaitsForCommit' } as const;
export type WorkaroundName = keyof typeof workaroundNames;

/** The CLI form (`--workarounds a,b`) of a set of workarounds, or '' for none. */
export function workaroundFlag(w: Workarounds | undefined): string {
  const names = (Object.keys(workaroundNames) as WorkaroundName[]).filter((name) => w?.[workaroundNames[name]]);
  return names.length === 0 ? '' : `--workarounds ${names.join(',')}`;
}

/** Every workaround on. */
export const allWorkarounds: Workarounds = { newEpochOnRestart: true, noOpUpdateWaitsForCommit: true };

/**
 * newEpochOnRestart: hide the stored identity from one node start, so that the runtime takes a
 * new epoch (loadIdentity sees no identity and writes a new one).
 *
 * Why: a replica answers replica.get from its store's overlay, which includes writes that have not
 * committed yet. A dot a coordinator has just made can therefore leave the node (in a read answer,
 * then in read repair and in the contexts of later client writes) before it is durable. If the node
 * then crashes, the write is lost, the node restarts with the same epoch, and its counter for the
 * key is back where it was: the next client write it coordinates reuses that dot for a different
 * value. Every replica that already saw the old dot superseded treats the new value as superseded
 * too, and an acknowledged write disappears (Riak's kv679, by another road). Seed 1172 (5 nodes,
 * 100 ops, swarm, with the code of this commit's day) showed it; test/sim/known-bugs.test.ts
 * replays it as a scripted scenario. Taking a new epoch at every restart after a crash avoids it.
 */
export function withNewEpoch(store: Store): Store {
  let hidden = true;
  return overrideStore(store, {
    getMeta: <T>(name: string) => (hidden && name === 'identity' ? undefined : store.getMeta<T>(name)),
    putMeta: (name, value) => {
      if (name === 'identity') hidden = false;
      return store.putMeta(name, value);
    },
  });
}
