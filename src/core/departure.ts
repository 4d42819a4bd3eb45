/**
 * Departure: when a leaving node may go (issue 27). Pure.
 *
 * A leaving node that is out of the committed ring and has handed everything over used to exit at
 * once, telling every member with one message each. If it was the claimant and committed its own
 * leave while cut off from the others (they were judged down, so the commit did not wait for them),
 * or if those messages were lost, it took the only copy of the new ring with it: the others kept it
 * in their ring and as their claimant for good, and nothing more could change
 * (`ringkv sim --seed 521 --nodes 5 --ops 60 --faults swarm`). So a leaver goes in two steps, each
 * acknowledged by the members it leaves behind:
 *
 * 1. ring: every live member it does not judge down, and a majority of the ring's owners, reported a
 *    committed ring at least as new as the one that took it out. Then it marks itself exiting.
 * 2. exiting: the same members reported its entry as exiting (so they drop its hints and stop
 *    gossiping with it). Then it exits.
 *
 * The majority makes the new ring outlive the leaver even when the members it cannot hear from are
 * the ones that lack it; "not judged down" keeps a member lost for good from holding the leaver
 * back (it learns the state from the others when it returns). While it waits, the leaver sends its
 * state every round to each member that has not acknowledged it.
 *
 * Liveness (the property the simulator checks, src/sim/membership-liveness.ts): once the network
 * heals and every member is up, every committed ring reaches every live member within a bounded
 * number of gossip rounds, every leaver hands over and exits, and every exited node is out of
 * every member's ring and departed in every member's cluster state.
 */
import { type ClusterState, type MembershipStatus, liveMembers } from './cluster-state.js';

/** What a peer last reported of its cluster state: its committed ring's register, and this node's status in it. */
export interface PeerReport {
  ringVersion: number;
  ringBy: string;
  /** The status the peer's state gives `self` (the node keeping the reports), or null when it has none. */
  selfStatus: MembershipStatus | null;
}

/** The report a peer's cluster state makes, as seen by `self`. */
export function reportOf(state: ClusterState, self: string): PeerReport {
  return { ringVersion: state.ring.version, ringBy: state.ring.by, selfStatus: state.members[self]?.status ?? null };
}

/** The peer's ring is this state's ring or newer (ring registers order by version, then writer). */
function hasRingOf(report: PeerReport, state: ClusterState): boolean {
  if (report.ringVersion !== state.ring.version) return report.ringVersion > state.ring.version;
  return report.ringBy >= state.ring.by;
}

export type DepartureStep = 'ring' | 'exiting';

/**
 * The members whose acknowledgement `self` still needs before it takes the next step: for 'ring',
 * a report of this state's ring (or newer); for 'exiting', a report of `self` as exiting. Empty
 * when it may go on.
 */
export function departureWaitsFor(
  state: ClusterState,
  self: string,
  step: DepartureStep,
  reports: Readonly<Record<string, PeerReport>>,
  down: Readonly<Record<string, true>>,
): string[] {
  const acked = (m: string): boolean => {
    const r = reports[m];
    if (r === undefined) return false;
    return step === 'ring' ? hasRingOf(r, state) : r.selfStatus === 'exiting' || r.selfStatus === 'removed';
  };
  const peers = liveMembers(state).filter((m) => m !== self);
  const waiting = new Set(peers.filter((m) => !down[m] && !acked(m)));
  // A majority of the owners must hold it, judged down or not: a quorum of the cluster outlives us.
  const owners = [...new Set(state.ring.owners)].filter((m) => m !== self).sort();
  const ackedOwners = owners.filter(acked).length;
  const majority = Math.floor(owners.length / 2) + 1;
  if (owners.length > 0 && ackedOwners < majority) for (const m of owners) if (!acked(m)) waiting.add(m);
  return [...waiting].sort();
}
