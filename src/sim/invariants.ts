/**
 * The invariants every simulation checks after heal and settle.
 *
 * - acked-in-final-read: every item whose add was acknowledged is in the final merged read of its
 *   key (a TIMEOUT or an error never counts as acknowledged).
 * - convergence: every replica of every key (the N nodes of its preference list) holds the same
 *   DVV set: equal history and counters (dvv.equal) and the very same sibling bytes. The second part
 *   matters: dvv.equal compares counters only, so two replicas holding different values under the
 *   same dot (a dot reused after a crash) would pass it.
 * - never-written: no read returned, and no replica holds, a value that no client ever sent.
 * - members-up: after heal every node judges every member up again (gossip and failure detection),
 *   and the cluster goes quiet (no request coordinated, no write in flight).
 * - hints-drained: after heal every hint has been handed off to its replica (hinted handoff).
 * - anti-entropy: in runs that repair by anti-entropy, the Merkle exchanges alone converge every
 *   replica of every key, before any read.
 * - final-read: the final reads themselves succeeded (liveness: after heal the cluster answers).
 * - ring-settled: in runs with membership changes (join, leave), each change is committed, and after
 *   the heal every node uses the same committed ring, a node that left has exited, and ownership
 *   transfer is idle: no node holds keys of a partition it does not replicate.
 * - deleted-stays-deleted, written-after-delete, tombstones-reaped: the deletes' invariants, with the
 *   tombstone reaper running (src/sim/delete-workload.ts says what each means).
 * - no-node-errors: no node logged an error (a failed action, a failed actor, a failed store write):
 *   those are programmer errors, which the simulator reports with the seed (DESIGN.md §7).
 */
import { type DvvSet, equal, values } from '../core/dvv.js';
import { partitionOf, preferenceList, type Ring } from '../core/ring.js';
import { encode } from '../protocol/codec.js';
import type { CartWorkload } from './workloads.js';

export type InvariantName =
  | 'acked-in-final-read'
  | 'convergence'
  | 'never-written'
  | 'final-read'
  | 'members-up'
  | 'hints-drained'
  | 'anti-entropy'
  | 'no-node-errors'
  | 'ring-settled'
  // Deletes and the tombstone reaper (src/sim/delete-workload.ts).
  | 'deleted-stays-deleted'
  | 'written-after-delete'
  | 'tombstones-reaped'
  // Ring changes that finish (src/sim/membership-liveness.ts).
  | 'membership-liveness';

export interface Violation {
  invariant: InvariantName;
  message: string;
}

/** What a node's store holds for one key (undefined: never stored there). */
export type ReplicaReader = (nodeId: string, partition: number, key: Uint8Array) => DvvSet | undefined;

export function checkAckedInFinalRead(workload: CartWorkload, finalItems: Map<string, Set<string>>): Violation[] {
  const out: Violation[] = [];
  for (const add of workload.acked()) {
    const items = finalItems.get(add.key);
    if (items === undefined) continue; // the final read failed: reported as final-read
    if (!items.has(add.item)) {
      out.push({
        invariant: 'acked-in-final-read',
        message: `item ${add.item} was acknowledged to ${add.client} at t=${add.at} but is missing from the final read of ${add.key}`,
      });
    }
  }
  return out;
}

export function checkConvergence(workload: CartWorkload, ring: Ring, n: number, read: ReplicaReader): Violation[] {
  const out: Violation[] = [];
  for (const key of workload.keys) {
    const keyBytes = workload.keyBytes(key);
    const p = partitionOf(keyBytes, ring.q);
    const replicas = preferenceList(ring, p, n);
    const states = replicas.map((node) => read(node, p, keyBytes) ?? []);
    const first = states[0]!;
    const firstBytes = Buffer.from(encode(first));
    for (let i = 1; i < states.length; i++) {
      const s = states[i]!;
      if (!equal(first, s) || !firstBytes.equals(Buffer.from(encode(s)))) {
        out.push({
          invariant: 'convergence',
          message: `replicas of ${key} (partition ${p}) differ after settle: ${replicas[0]} holds ${describe(first)}, ${replicas[i]} holds ${describe(s)}`,
        });
      }
    }
  }
  return out;
}

export function checkStoredValuesWritten(workload: CartWorkload, ring: Ring, n: number, read: ReplicaReader): Violation[] {
  const out: Violation[] = [];
  for (const key of workload.keys) {
    const keyBytes = workload.keyBytes(key);
    const p = partitionOf(keyBytes, ring.q);
    for (const node of preferenceList(ring, p, n)) {
      for (const v of values(read(node, p, keyBytes) ?? [])) {
        if (v !== null && !workload.wasWritten(v)) {
          out.push({ invariant: 'never-written', message: `${node} holds a value of ${key} that no client wrote` });
        }
      }
    }
  }
  return out;
}

export function checkReads(workload: CartWorkload): Violation[] {
  return workload.neverWritten.map((message) => ({ invariant: 'never-written' as const, message }));
}

/** A short text form of a DVV set: id:counter[values as cart item lists]. */
export function describe(set: DvvSet): string {
  if (set.length === 0) return '(nothing)';
  return set
    .map(([id, n, vals]) => `${id}:${n}[${vals.map((v) => (v === null ? 'tombstone' : Buffer.from(v).toString('utf8'))).join(' | ')}]`)
    .join(' ');
}
