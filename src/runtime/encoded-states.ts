/**
 * A state is encoded once (DESIGN.md §3): the bytes a replica stores for a state it made are the
 * bytes its coordinator sends to every other replica (replica.put carries the state as bin), and a
 * replica that keeps the state it was sent stores the bytes it received. This remembers, per state
 * object, the bytes it was encoded as, for as long as something still holds that object (a weak map:
 * the entry goes with the state, no bound needed).
 */
import type { DvvSet } from '../core/dvv.js';
import { encode } from '../protocol/codec.js';

const encodedOf = new WeakMap<DvvSet, Uint8Array>();

/** The bytes `state` was (or is now) encoded as: encoded at most once per state object. */
export function encodedState(state: DvvSet): Uint8Array {
  let bytes = encodedOf.get(state);
  if (bytes === undefined) {
    bytes = encode(state);
    encodedOf.set(state, bytes);
  }
  return bytes;
}

/** Remembers that `state` is encoded as `bytes` (bytes that decode to it). */
export function rememberEncoded(state: DvvSet, bytes: Uint8Array): void {
  encodedOf.set(state, bytes);
}
