/**
 * The simulator's deletes, and what they must keep true with the tombstone reaper running
 * (src/core/reap.ts). A deleter client walks its own keys: it puts a first value, reads the key,
 * deletes what that read saw (its context), reads the key again after a pause long enough for the
 * reaper to have had its chance, and sometimes writes the key anew.
 *
 * Invariants, checked after heal and settle:
 * - deleted-stays-deleted: once a tombstone was reaped (or dropped by ownership transfer) anywhere,
 *   no node holds a live value that tombstone had superseded (a dot its history covers), so no read
 *   can return one. Judged by dots against the tombstones the stores really deleted, not by the
 *   client's view: a duplicated put request is coordinated twice and makes the same value under two
 *   dots, and a delete's context covers only what its coordinator held (dvv.clamp), so a value the
 *   client saw may rightly survive its delete as a sibling. Every
 *   way of bringing one back is in the faults: a replica that missed the delete (drops, partitions,
 *   crashes), a hint carrying the old value (a fallback for a down replica), a node down for the
 *   whole reap (crash), a wiped node rebuilt from the others.
 * - written-after-delete: a value written after the delete and acknowledged is in the final read
 *   (a reaped key written again from nothing must not make a dot its tombstone already covered).
 * - tombstones-reaped: a key the final read finds deleted is, within a bound after the cluster
 *   settled, held by no node at all: the reaper ran and nothing kept it from finishing.
 */
import type { DvvSet } from '../core/dvv.js';
import type { Prng } from '../core/prng.js';
import type { Clock } from '../ports/clock.js';
import type { Violation } from './invariants.js';
import { type SimClient, sleep } from './sim-client.js';

const text = new TextEncoder();
const untext = new TextDecoder();

export interface DeleteRecord {
  key: string;
  deletedAt: number;
  /** A value written after the delete, and whether its put was acknowledged. */
  after?: { value: string; acked: boolean };
}

export interface DeleterPlan {
  client: SimClient;
  clock: Clock;
  prng: Prng;
  /** The pause between the delete and the read after it, 0..pauseMaxMs. */
  pauseMaxMs: number;
}

export class DeleteWorkload {
  readonly deletes: DeleteRecord[] = [];
  /** Per key (latin1), the history of every tombstone a store deleted: clock id -> largest counter. */
  private readonly reapedHistory = new Map<string, Map<string, number>>();
  /** Tombstones the stores deleted, in all. */
  tombstonesRemoved = 0;

  constructor(readonly keys: readonly string[]) {}

  keyBytes(key: string): Uint8Array {
    return text.encode(key);
  }

  async run(plan: DeleterPlan): Promise<void> {
    const { client, clock, prng } = plan;
    for (const key of this.keys) {
      const bytes = this.keyBytes(key);
      await client.put(bytes, text.encode(`${key} first`));
      await sleep(clock, prng.int(0, 50));
      const read = await client.get(bytes);
      if (!read.ok) continue;
      const del = await client.del(bytes, { context: read.body.context });
      if (!del.ok) continue;
      const record: DeleteRecord = { key, deletedAt: clock.now() };
      this.deletes.push(record);
      // A pause as long as a reap, then a read: the reaper has had its chance while the key is used.
      await sleep(clock, prng.int(0, plan.pauseMaxMs));
      await client.get(bytes);
      if (prng.chance(0.5)) {
        const value = `${key} after`;
        const put = await client.put(bytes, text.encode(value));
        record.after = { value, acked: put.ok };
      }
    }
  }

  /** A store deleted an object (SimStore.onRemoved): a tombstone's history is remembered. */
  recordRemoved(key: Uint8Array, state: DvvSet): void {
    if (!state.every(([, , vals]) => vals.every((v) => v === null))) return;
    this.tombstonesRemoved++;
    const id = Buffer.from(key).toString('latin1');
    let history = this.reapedHistory.get(id);
    if (!history) this.reapedHistory.set(id, (history = new Map()));
    for (const [clock, n] of state) history.set(clock, Math.max(history.get(clock) ?? 0, n));
  }

  /** The final read (R = N) of every deleted key; undefined: the read failed (reported elsewhere). */
  checkFinal(finalValues: ReadonlyMap<string, readonly Uint8Array[] | undefined>): Violation[] {
    const out: Violation[] = [];
    for (const record of this.deletes) {
      const values = finalValues.get(record.key);
      if (values === undefined) continue;
      if (record.after?.acked && !values.some((v) => untext.decode(v) === record.after!.value)) {
        out.push({ invariant: 'written-after-delete', message: `${JSON.stringify(record.after.value)} was acknowledged after the delete of ${record.key} but is missing from the final read` });
      }
    }
    return out;
  }

  /**
   * No node's store holds a live value that a deleted tombstone of its key had superseded (each
   * node's every copy: primaries, fallbacks), for every key any store was asked about.
   */
  checkStores(keys: readonly Uint8Array[], stores: ReadonlyMap<string, (key: Uint8Array) => DvvSet | undefined>): Violation[] {
    const out: Violation[] = [];
    for (const key of keys) {
      const history = this.reapedHistory.get(Buffer.from(key).toString('latin1'));
      if (!history) continue;
      for (const [node, read] of stores) {
        for (const [id, n, vals] of read(key) ?? []) {
          const reaped = history.get(id) ?? 0;
          vals.forEach((v, i) => {
            // The i-th live value of an entry is the dot (id, n - i).
            if (v !== null && n - i <= reaped) {
              out.push({ invariant: 'deleted-stays-deleted', message: `${node} holds ${JSON.stringify(untext.decode(v))} of ${untext.decode(key)} (dot ${id}:${n - i}), which a tombstone deleted from a store had superseded` });
            }
          });
        }
      }
    }
    return out;
  }

  /** The keys a final read found deleted that some node still holds (a tombstone not reaped). */
  unreaped(finalValues: ReadonlyMap<string, readonly Uint8Array[] | undefined>, stores: ReadonlyMap<string, (key: Uint8Array) => DvvSet | undefined>): string[] {
    const out: string[] = [];
    for (const record of this.deletes) {
      const values = finalValues.get(record.key);
      if (values === undefined || values.length > 0) continue;
      const holders = [...stores].filter(([, read]) => read(this.keyBytes(record.key)) !== undefined).map(([node]) => node);
      if (holders.length > 0) out.push(`${record.key} on ${holders.join(',')}`);
    }
    return out;
  }
}

export interface SettleDeps {
  workload: DeleteWorkload;
  /** A client for the liveness reads. */
  live: SimClient;
  clock: Clock;
  n: number;
  /** Each node's store that is not gone, by node id. */
  stores: () => ReadonlyMap<string, (key: Uint8Array) => DvvSet | undefined>;
  /** Every key of the run (the carts' too): none may hold a value a reaped tombstone superseded. */
  allKeys: readonly Uint8Array[];
  /** How long the reaper has, after the cluster settled, to reap every tombstone of a deleted key. */
  reapLimitMs: number;
  /** How long to run after that before the last look (anti-entropy rounds that could bring a value back). */
  afterMs: number;
  /** Attempts of each read. */
  attempts: number;
}

/**
 * The liveness phase of the deletes: read every deleted key with R = N, give the reaper its time,
 * run on so that anything able to bring a value back has its chance, read again, and check.
 */
export async function settleDeletes(d: SettleDeps): Promise<Violation[]> {
  const { workload, live, clock, n } = d;
  const readAll = async (): Promise<Map<string, Uint8Array[] | undefined>> => {
    const out = new Map<string, Uint8Array[] | undefined>();
    for (const record of workload.deletes) {
      let values: Uint8Array[] | undefined;
      for (let attempt = 1; attempt <= d.attempts && values === undefined; attempt++) {
        const r = await live.get(workload.keyBytes(record.key), { n, r: n });
        if (r.ok) values = r.body.values;
      }
      out.set(record.key, values);
    }
    return out;
  };
  const first = await readAll();
  const by = clock.now() + d.reapLimitMs;
  while (workload.unreaped(first, d.stores()).length > 0 && clock.now() < by) await sleep(clock, 50);
  const left = workload.unreaped(first, d.stores());
  await sleep(clock, d.afterMs);
  const final = await readAll();
  const violations = [...workload.checkFinal(first), ...workload.checkFinal(final), ...workload.checkStores(d.allKeys, d.stores())];
  if (left.length > 0) violations.push({ invariant: 'tombstones-reaped', message: `${d.reapLimitMs} ms after the cluster settled, tombstones of deleted keys are still held: ${left.join('; ')}` });
  for (const [key, values] of final) if (values === undefined) violations.push({ invariant: 'final-read', message: `the final read of deleted key ${key} failed ${d.attempts} times after heal` });
  return violations;
}
