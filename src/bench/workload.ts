/**
 * The workloads of `ringkv bench`: YCSB's core workloads A, B and C (Cooper et al., "Benchmarking
 * Cloud Serving Systems with YCSB", SoCC 2010), and `cart`, the read-merge-write of Dynamo's
 * shopping cart (DeCandia et al. §4.4):
 *
 *   a     50% read, 50% update   (update heavy: a session store recording recent actions)
 *   b     95% read,  5% update   (read mostly: photo tagging)
 *   c    100% read               (read only: a user profile cache)
 *   cart 100% cart: read every sibling, merge them, write the result back with the read's context
 *   update 100% update      (puts only: not a YCSB workload; it measures puts alone, as reads are
 *                            measured alone by c, for a put's throughput without reads beside it)
 *
 * An update writes a whole new value of --value-bytes, as YCSB's default (writeallfields) does.
 */
import type { Random } from './random.js';

export type OpName = 'read' | 'update' | 'cart';
export const opNames: readonly OpName[] = ['read', 'update', 'cart'];

export type WorkloadName = 'a' | 'b' | 'c' | 'cart' | 'update';
export const workloadNames: readonly WorkloadName[] = ['a', 'b', 'c', 'cart', 'update'];

export interface Workload {
  name: WorkloadName;
  description: string;
  /** Each operation's share of the mix; the shares add up to 1. */
  proportions: Readonly<Record<OpName, number>>;
}

export const workloads: Readonly<Record<WorkloadName, Workload>> = {
  a: { name: 'a', description: 'YCSB A: 50% read, 50% update', proportions: { read: 0.5, update: 0.5, cart: 0 } },
  b: { name: 'b', description: 'YCSB B: 95% read, 5% update', proportions: { read: 0.95, update: 0.05, cart: 0 } },
  c: { name: 'c', description: 'YCSB C: 100% read', proportions: { read: 1, update: 0, cart: 0 } },
  cart: { name: 'cart', description: 'cart: read, merge the siblings, write back with the context', proportions: { read: 0, update: 0, cart: 1 } },
  update: { name: 'update', description: '100% update (puts only)', proportions: { read: 0, update: 1, cart: 0 } },
};

export function isWorkloadName(name: string): name is WorkloadName {
  return (workloadNames as readonly string[]).includes(name);
}

/** Picks the next operation of a workload from a uniform draw, as YCSB's DiscreteGenerator does. */
export class OperationChooser {
  private readonly cumulative: { op: OpName; upTo: number }[] = [];

  constructor(
    workload: Workload,
    private readonly random: Random,
  ) {
    let upTo = 0;
    for (const op of opNames) {
      const share = workload.proportions[op];
      if (share <= 0) continue;
      upTo += share;
      this.cumulative.push({ op, upTo });
    }
    if (this.cumulative.length === 0) throw new RangeError(`workload ${workload.name} has no operations`);
  }

  next(): OpName {
    const u = this.random.nextDouble() * this.cumulative[this.cumulative.length - 1]!.upTo;
    for (const entry of this.cumulative) if (u < entry.upTo) return entry.op;
    return this.cumulative[this.cumulative.length - 1]!.op;
  }
}

/** The key of record i, as YCSB names them. */
export function recordKey(i: number): string {
  return `user${i}`;
}
