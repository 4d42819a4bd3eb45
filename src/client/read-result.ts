/**
 * What a get answers (GetResult) and how it is made from DVV sets: the live siblings, each distinct
 * value once, and the context that covers all of them.
 */
import { type DvvSet, isDeleted, join, values as dvvValues } from '../core/dvv.js';
import { encode } from '../protocol/codec.js';

export interface GetResult {
  found: boolean;
  /** Every sibling: one value, or several when writes were concurrent. */
  values: Uint8Array[];
  /** Pass to the next put of this key to supersede these siblings. */
  context: Uint8Array;
}

const text = new TextEncoder();

export function keyBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? text.encode(key) : key;
}

/** What a read of these merged states answers: the live siblings and the context of all of it. */
export function readResultOf(state: DvvSet): GetResult {
  const live = dvvValues(state).filter((v): v is Uint8Array => v !== null);
  return { found: !isDeleted(state) && live.length > 0, values: live, context: encode(join(state)) };
}

/** Each distinct value once, in first-seen order: a retried write may have left a duplicate sibling. */
export function distinctValues(values: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const v of values) {
    const id = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    if (!seen.has(id)) {
      seen.add(id);
      out.push(v);
    }
  }
  return out;
}

/**
 * A get's values, each distinct value once. A write that was retried or hedged can leave two
 * siblings with the same bytes (two coordinators each made a dot for it); to the application they
 * are one value, and the context still covers both, so the next write supersedes both.
 */
export function withDistinctValues(r: GetResult): GetResult {
  return r.values.length < 2 ? r : { found: r.found, values: distinctValues(r.values), context: r.context };
}
