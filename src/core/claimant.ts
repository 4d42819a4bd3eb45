/**
 * The claimant (Riak's riak_core_claimant): the one member that writes membership changes. Pure.
 *
 * Cluster state registers merge by version, ties broken by the writer's id, so two nodes that write
 * the same register at once make one of the writes lose: two commits made at once on different
 * nodes give two rings of the same version, and the ring of one of them, with the member statuses
 * it wrote, silently goes. Letting one member write every staged change and every commit removes
 * the race: its writes are serial, each one on top of the last.
 *
 * The claimant is computed, not elected: the lowest id among the valid members of the committed
 * ring that are not staged for removal. Every node that holds the same cluster state names the same
 * claimant. A claimant that is gone for good is staged for removal (allowed at any node, the one
 * write that does not go through the claimant), and the next member becomes the claimant.
 *
 * The claimant commits only once its cluster state has converged: every member it does not judge
 * down last reported the same state as its own. That covers the moment the claimant changes (the
 * new one may not yet have every write of the old one) and a claimant restarted from an older saved
 * state.
 */
import { type ClusterState, liveMembers } from './cluster-state.js';

/** The member that writes membership changes, or undefined when the state names none (no ring yet). */
export function claimantOf(state: ClusterState): string | undefined {
  if (state.ring.version === 0) return undefined;
  const inRing = new Set(state.ring.owners);
  let best: string | undefined;
  for (const [id, e] of Object.entries(state.members)) {
    if (e.status !== 'valid' || e.staged === 'remove' || !inRing.has(id)) continue;
    if (best === undefined || id < best) best = id;
  }
  return best;
}

/**
 * A short text that two states share exactly when they hold the same registers: what a peer last
 * reported is kept as this, so convergence is a comparison of strings.
 */
export function stateFingerprint(state: ClusterState): string {
  const parts = Object.keys(state.members)
    .sort()
    .map((id) => {
      const e = state.members[id]!;
      return `${id}:${e.version}:${e.by}:${e.status}:${e.staged ?? ''}`;
    });
  parts.push(`ring:${state.ring.version}:${state.ring.by}:${state.ring.q}`);
  return parts.join(',');
}

/**
 * The members that keep `self`'s cluster state from being converged: live members, not judged down,
 * whose last reported state differs from `self`'s (or who have reported none).
 */
export function unconvergedMembers(state: ClusterState, self: string, reported: Readonly<Record<string, string>>, down: Readonly<Record<string, true>>): string[] {
  const mine = stateFingerprint(state);
  return liveMembers(state).filter((m) => m !== self && !down[m] && reported[m] !== mine);
}
