/**
 * Sloppy quorum targets (Dynamo §4.6): a request goes to the first N healthy nodes of the key's
 * extended preference list. Each primary that is down is stood in for by the next healthy fallback
 * further round the ring, which keeps the write with a hint naming that primary. When the ring has
 * no spare node (N equal to the cluster size), the down primary is an orphan: the coordinator keeps
 * the hint for it itself, beside its own copy.
 */
import { preferenceList, type Ring } from './ring.js';

export interface Target {
  node: string;
  /** The primary this fallback stands in for; absent for a primary. */
  hintFor?: string;
}

export interface Targets {
  /** The N primaries of the key, in order. */
  primaries: string[];
  /** The nodes to ask: the healthy primaries, then the fallbacks standing in for the others. */
  targets: Target[];
  /** Down primaries without a fallback: the coordinator keeps their hints. */
  orphans: string[];
}

export function chooseTargets(ring: Ring, partition: number, n: number, isUp: (node: string) => boolean): Targets {
  const extended = preferenceList(ring, partition, ring.q);
  const primaries = extended.slice(0, n);
  const fallbacks = extended.slice(n).filter(isUp);
  const targets: Target[] = primaries.filter(isUp).map((node) => ({ node }));
  const orphans: string[] = [];
  for (const primary of primaries) {
    if (isUp(primary)) continue;
    const fallback = fallbacks.shift();
    if (fallback === undefined) orphans.push(primary);
    else targets.push({ node: fallback, hintFor: primary });
  }
  return { primaries, targets, orphans };
}
