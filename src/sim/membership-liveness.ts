/**
 * The membership liveness property (issue 27), as the simulator checks it. Safety says a ring
 * change never loses an acknowledged write; liveness says every change finishes:
 *
 *   Once the network has healed and every member is up, within K gossip rounds of the later of the
 *   heal and the last commit:
 *   1. every live member holds the same committed ring (every committed staged change is applied on
 *      every live member);
 *   2. no member of that state is still leaving (every leaver handed over and exited);
 *   3. every node that is gone (exited, or lost for good and force-removed) is out of every live
 *      member's ring, and departed (exiting or removed) in every live member's cluster state.
 *
 * K is `membershipRoundsMax`: the gossip spread of a state (a few rounds; every change is also sent
 * to every member at once), plus ownership transfer of the little data a simulation holds (a
 * transfer scan runs every few seconds), plus the leaver's two acknowledged steps
 * (src/core/departure.ts). Pure: it looks at the states the runner hands it.
 */

/** Gossip rounds after the heal (or the last commit, if later) by which the property must hold. */
export const membershipRoundsMax = 150;

export interface MemberView {
  id: string;
  members: Record<string, { status: string }>;
  ring: { version: number; owners: string[] };
}

/** What keeps the property from holding now (empty when it holds). */
export function membershipLivenessProblems(live: readonly MemberView[], gone: readonly string[]): string[] {
  const problems: string[] = [];
  const rings = new Map<string, string[]>();
  for (const v of live) {
    const key = `${v.ring.version}:${v.ring.owners.join(',')}`;
    rings.set(key, [...(rings.get(key) ?? []), v.id]);
  }
  if (rings.size > 1) {
    problems.push(`the live members hold ${rings.size} committed rings: ${[...rings].map(([k, ids]) => `version ${k.slice(0, k.indexOf(':'))} at ${ids.join(',')}`).join('; ')}`);
  }
  for (const v of live) {
    const leaving = Object.keys(v.members).filter((m) => v.members[m]!.status === 'leaving');
    if (leaving.length > 0) problems.push(`${v.id} still sees ${leaving.join(',')} leaving`);
    for (const g of gone) {
      if (v.ring.owners.includes(g)) problems.push(`${g} is gone but still in ${v.id}'s ring`);
      const status = v.members[g]?.status;
      if (status !== undefined && status !== 'exiting' && status !== 'removed') problems.push(`${g} is gone but ${status} in ${v.id}'s cluster state`);
    }
  }
  return problems;
}
