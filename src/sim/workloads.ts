/**
 * Client workloads of the simulator.
 *
 * cart/set: each client adds unique items ("c1-17") to a few shared keys, as a shopping cart
 * would: get the key, merge its siblings by set union, add the item, put the result with the read's
 * context. An add counts as acknowledged only when its put was answered api.put.ok; a TIMEOUT or an
 * error is "unknown" (TIMEOUT) or "failed" and is never counted. Every value any client sends is
 * remembered, so that a read returning bytes nobody wrote is caught.
 */
import type { Prng } from '../core/prng.js';
import type { Clock } from '../ports/clock.js';
import { type SimClient, sleep } from './sim-client.js';

export type AddOutcome = 'acked' | 'unknown' | 'failed';

export interface AddRecord {
  client: string;
  key: string;
  item: string;
  outcome: AddOutcome;
  /** The error code when not acked. */
  code?: string;
  /** Simulated time of the answer. */
  at: number;
}

export interface CartClientPlan {
  client: SimClient;
  /** 1-based; items are named c<index>-<op>. */
  index: number;
  ops: number;
  /** A pause of 0..thinkMaxMs before each add. */
  thinkMaxMs: number;
  prng: Prng;
  clock: Clock;
}

const text = new TextEncoder();
const untext = new TextDecoder('utf-8', { fatal: true });

export function encodeCart(items: Iterable<string>): Uint8Array {
  return text.encode(JSON.stringify([...items].sort()));
}

/** The items of one cart value, or undefined when the bytes are not a cart. */
export function decodeCart(bytes: Uint8Array): string[] | undefined {
  try {
    const v: unknown = JSON.parse(untext.decode(bytes));
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

function bytesId(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

export class CartWorkload {
  /** Every value any client sent (latin1 of its bytes). */
  private readonly written = new Set<string>();
  readonly adds: AddRecord[] = [];
  /** Reads that returned a value no client ever wrote. */
  readonly neverWritten: string[] = [];
  gets = 0;
  getErrors = 0;

  constructor(readonly keys: readonly string[]) {}

  keyBytes(key: string): Uint8Array {
    return text.encode(key);
  }

  wasWritten(bytes: Uint8Array): boolean {
    return this.written.has(bytesId(bytes));
  }

  /** Merge the siblings of a read by set union, checking every value was written by someone. */
  mergeRead(values: readonly Uint8Array[], where: string): Set<string> {
    const items = new Set<string>();
    for (const v of values) {
      if (!this.wasWritten(v)) {
        this.neverWritten.push(`${where}: read ${JSON.stringify(Buffer.from(v).toString('utf8')).slice(0, 120)}, which no client wrote`);
        continue;
      }
      for (const item of decodeCart(v) ?? []) items.add(item);
    }
    return items;
  }

  async runClient(plan: CartClientPlan): Promise<void> {
    const { client, clock, prng } = plan;
    for (let op = 1; op <= plan.ops; op++) {
      await sleep(clock, prng.int(0, plan.thinkMaxMs));
      const key = prng.pick(this.keys);
      const keyBytes = this.keyBytes(key);
      const item = `c${plan.index}-${op}`;
      this.gets++;
      const read = await client.get(keyBytes);
      let items = new Set<string>();
      let context: Uint8Array | undefined;
      if (read.ok) {
        items = this.mergeRead(read.body.values, `${client.id} get ${key} at t=${clock.now()}`);
        context = read.body.context;
      } else {
        // Without a read the add still goes out, with no context: a new sibling beside whatever is
        // there, which the next reader merges.
        this.getErrors++;
      }
      items.add(item);
      const value = encodeCart(items);
      this.written.add(bytesId(value));
      const put = await client.put(keyBytes, value, context === undefined ? {} : { context });
      const outcome: AddOutcome = put.ok ? 'acked' : put.code === 'TIMEOUT' ? 'unknown' : 'failed';
      this.adds.push({ client: client.id, key, item, outcome, at: clock.now(), ...(put.ok ? {} : { code: put.code }) });
    }
  }

  acked(): AddRecord[] {
    return this.adds.filter((a) => a.outcome === 'acked');
  }
}
