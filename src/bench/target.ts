/**
 * What `ringkv bench` runs its workloads against. A target turns the workload's three operations
 * into its own requests, so that every target gets the identical workload: the same keys in the
 * same order for a seed, the same value sizes, and the same client model (one process, one NATS
 * connection, N async workers with one request in flight each).
 *
 *   read    ringkv: get (R replicas)          nats-kv: kv.get
 *   update  ringkv: put with the last context  nats-kv: kv.put
 *   cart    ringkv: client.merge (get every sibling, merge, put with the read's context)
 *           nats-kv: kv.get, then kv.update with its revision, again from the get on a wrong revision
 */

import type { FaultControl } from './fault-control.js';

import type { NodeMemoryReading } from './memory.js';
import type { BenchProcess } from './cpu-split.js';
import type { NodeCostReading } from './anatomy.js';

export type TargetName = 'ringkv' | 'nats-kv';
export const targetNames: readonly TargetName[] = ['ringkv', 'nats-kv'];

export interface ReadOutcome {
  found: boolean;
  /** How many values the read returned: more than one means concurrent writes left siblings. */
  siblings: number;
}

export interface CartOutcome {
  /** nats-kv: updates refused for a wrong revision and tried again. Always 0 for ringkv. */
  retries: number;
  /** Values the read saw (ringkv siblings; 1 or 0 for nats-kv). */
  siblings: number;
}

/** What an acknowledged write means on the target, as it ran. */
export interface Durability {
  /** A short name: "committed" (ringkv default), "replicated" (JetStream default). */
  mode: string;
  /** When the target acknowledges a write. */
  ack: string;
  /** When the data reaches the disk. */
  flush: string;
}

export interface BenchTarget {
  readonly name: TargetName;
  /** Where it runs, for people: "local cluster of 3 nodes on nats://127.0.0.1:40123". */
  readonly endpoint: string;
  readonly durability: Durability;
  /** The replication settings that apply (N, R, W, or the bucket's replicas), for the report. */
  readonly settings: Readonly<Record<string, number | string>>;
  /** Writes a record during the load phase. */
  load(key: string, value: Uint8Array): Promise<void>;
  read(key: string): Promise<ReadOutcome>;
  update(key: string, value: Uint8Array): Promise<void>;
  cart(key: string, value: Uint8Array): Promise<CartOutcome>;
  /** How `--fault` kills or pauses one of its nodes: only for a cluster the bench started. */
  readonly faults?: FaultControl;
  /** Each node's heap and RSS (ringkv only; see src/bench/memory.ts). */
  memory?(onMissing?: (node: string, why: string) => void): Promise<NodeMemoryReading[]>;
  /** Each node's cost counters now (ringkv only; the request anatomy, src/bench/anatomy.ts). */
  costs?(onMissing?: (node: string, why: string) => void): Promise<NodeCostReading[]>;
  /** The server processes the bench started for this target, for the CPU split (src/bench/cpu-split.ts). */
  processes?(): BenchProcess[];
  /** Closes connections and stops whatever the target started. Idempotent. */
  close(): Promise<void>;
}

/** The error code a failed operation is counted under in the report. */
export function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const { code, name } = err as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && code !== '') return code;
    if (typeof code === 'number' && typeof name === 'string') return `${name}:${code}`;
    if (typeof name === 'string' && name !== 'Error') return name;
  }
  return 'ERROR';
}
