/**
 * Departed members: those that have left the cluster for good, as the gossiped cluster state shows
 * them. `exiting` has handed everything over and stopped; `removed` was taken out by force-remove.
 * Neither serves again under its id (a node whose stored status is one of them exits at start), so
 * nothing owed to one of them can ever be delivered: hinted handoff drops their hints. Pure.
 */
import type { ClusterState, MembershipStatus } from './cluster-state.js';

export const departedStatuses: readonly MembershipStatus[] = ['exiting', 'removed'];

export function isDeparted(status: MembershipStatus | undefined): boolean {
  return status !== undefined && departedStatuses.includes(status);
}

/** The ids of the departed members, sorted. Tolerates a malformed state: no member, none departed. */
export function departedOf(state: ClusterState | undefined): string[] {
  const members = state?.members;
  if (members === null || typeof members !== 'object') return [];
  return Object.keys(members)
    .filter((id) => isDeparted(members[id]?.status))
    .sort();
}
