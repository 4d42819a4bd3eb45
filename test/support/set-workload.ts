/**
 * Test support: the Jepsen-style "set" workload of issue 20. Clients add unique elements to a few
 * sets, each by read, merge, write back with the context: a get (the siblings are JSON arrays of
 * elements; their union is the set), the union plus one new element, a put with the get's context.
 * An element is acknowledged when its put is; a failed or timed-out put leaves it "attempted"
 * (indeterminate: it may or may not be in the set).
 *
 * The checker, after the faults are healed and the cluster has settled: every acknowledged element
 * is in its set (nothing lost), every element in a set was attempted by some client (nothing made
 * up). Every operation is recorded with its client's host, start time and outcome, so availability
 * can be counted per side and per time slice.
 */
import type { RingkvClient } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';

export interface OpRecord {
  host: string;
  /** ms since the workload started. */
  at: number;
  ok: boolean;
  /** The error code of a failed operation, and which of its two requests failed. */
  code?: string;
  failed?: 'get' | 'put';
  message?: string;
  /** How many siblings the read of this operation saw. */
  siblings: number;
}

export interface SetWorkload {
  /** Stops the clients and waits for their operations in flight. */
  stop(): Promise<void>;
  ops: OpRecord[];
  /** Per set key, the elements whose put was acknowledged. */
  acked: Map<string, Set<string>>;
  /** Per set key, every element any client tried to add. */
  attempted: Map<string, Set<string>>;
  startedAt: number;
}

export interface SetWorkloadOptions {
  /** One client per host; the key is the host's id. */
  clients: Map<string, RingkvClient>;
  keys: string[];
  /** Operations in flight per client. */
  concurrency: number;
  r: number;
  w: number;
  timeoutMs: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The union of the siblings' elements; a sibling that is not a JSON array of strings is an error. */
export function setOf(values: Uint8Array[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) {
    const parsed = JSON.parse(decoder.decode(v)) as unknown;
    if (!Array.isArray(parsed) || !parsed.every((e) => typeof e === 'string')) throw new Error(`not a set: ${decoder.decode(v).slice(0, 80)}`);
    for (const e of parsed) out.add(e);
  }
  return out;
}

export function startSetWorkload(opts: SetWorkloadOptions): SetWorkload {
  const startedAt = Date.now();
  const ops: OpRecord[] = [];
  const acked = new Map(opts.keys.map((k) => [k, new Set<string>()]));
  const attempted = new Map(opts.keys.map((k) => [k, new Set<string>()]));
  let stopping = false;
  let counter = 0;

  const one = async (host: string, client: RingkvClient, key: string): Promise<void> => {
    const at = Date.now() - startedAt;
    const element = `${host}-${++counter}`;
    let siblings = 0;
    let phase: 'get' | 'put' = 'get';
    try {
      const read = await client.get(key, { r: opts.r, timeoutMs: opts.timeoutMs });
      siblings = read.values.length;
      const set = setOf(read.values);
      set.add(element);
      attempted.get(key)!.add(element);
      phase = 'put';
      await client.put(key, encoder.encode(JSON.stringify([...set].sort())), { context: read.context, w: opts.w, timeoutMs: opts.timeoutMs });
      acked.get(key)!.add(element);
      ops.push({ host, at, ok: true, siblings });
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      ops.push({ host, at, ok: false, code: err.code, failed: phase, message: err.message, siblings });
    }
  };

  const loops: Promise<void>[] = [];
  for (const [host, client] of opts.clients) {
    for (let c = 0; c < opts.concurrency; c++) {
      loops.push(
        (async () => {
          let i = c;
          while (!stopping) {
            await one(host, client, opts.keys[i++ % opts.keys.length]!);
          }
        })(),
      );
    }
  }

  return {
    ops,
    acked,
    attempted,
    startedAt,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** Availability of the operations of these hosts started in [from, to) ms: ok / all. */
export function availability(ops: OpRecord[], hosts: string[], from: number, to: number): { ok: number; all: number } {
  const slice = ops.filter((o) => hosts.includes(o.host) && o.at >= from && o.at < to);
  return { ok: slice.filter((o) => o.ok).length, all: slice.length };
}
