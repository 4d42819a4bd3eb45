/**
 * Quorum parameters (Dynamo §4.5): N replicas, R reads and W writes that must answer. Validated
 * once, at the edge; the coordinator only counts.
 */
import { operatorDefaults } from './defaults.js';
export interface Quorum {
  n: number;
  r: number;
  w: number;
}

export const quorumDefault: Quorum = { n: operatorDefaults.n, r: operatorDefaults.r, w: operatorDefaults.w };

/** A sentence saying what is wrong with these parameters, or null when they are valid. */
export function quorumProblem(q: Quorum, nMax: number): string | null {
  for (const [name, value] of Object.entries(q)) {
    if (!Number.isInteger(value) || value < 1) return `${name} must be a whole number of at least 1, got ${String(value)}`;
  }
  if (q.n > nMax) return `n must be at most ${nMax}, got ${q.n}`;
  if (q.r > q.n) return `r must be at most n (${q.n}), got ${q.r}`;
  if (q.w > q.n) return `w must be at most n (${q.n}), got ${q.w}`;
  return null;
}

export function hasQuorum(answered: number, needed: number): boolean {
  return answered >= needed;
}
