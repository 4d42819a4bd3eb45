/**
 * In-memory ports for the in-process benches (src/runtime/inspect-bench.ts,
 * src/runtime/request-cost-bench.ts): a Store in a Map and a Transport that hands each client answer
 * to whoever waits for it, so that only the actors, the router and the codec are measured.
 */
import { randomBytes } from 'node:crypto';
import type { SealKey } from '../protocol/seal.js';
import { clusterIdOf } from '../protocol/cluster-id.js';
import type { DvvSet } from '../core/dvv.js';
import type { Clock } from '../ports/clock.js';
import type { Hint, Mutation, Store } from '../ports/store.js';
import type { Inbound, Transport } from '../ports/transport.js';
import { encode } from '../protocol/codec.js';

export class MemoryStore implements Store {
  private objects = new Map<string, DvvSet>();
  private meta = new Map<string, unknown>();
  get(p: number, key: Uint8Array): DvvSet | undefined {
    return this.objects.get(`${p}/${Buffer.from(key).toString('hex')}`);
  }
  getEncoded(p: number, key: Uint8Array): Uint8Array | undefined {
    const state = this.get(p, key);
    return state === undefined ? undefined : encode(state);
  }
  async update<T>(p: number, key: Uint8Array, mutate: (current: DvvSet | undefined) => Mutation<T>): Promise<T> {
    const k = `${p}/${Buffer.from(key).toString('hex')}`;
    const m = mutate(this.objects.get(k));
    if (m.next) this.objects.set(k, m.next);
    return m.result;
  }
  getMeta<T>(name: string): T | undefined {
    return this.meta.get(name) as T | undefined;
  }
  async putMeta(name: string, value: unknown): Promise<void> {
    this.meta.set(name, value);
  }
  *keys(): Iterable<Uint8Array> {}
  // Hints and Merkle segments are not on the path this bench drives.
  hints(): Iterable<Hint> {
    return [];
  }
  hintCount(): number {
    return 0;
  }
  hintPending(): boolean {
    return false;
  }
  async removeHint(): Promise<boolean> {
    return false;
  }
  // keys() is empty, so ownership transfer never finds anything to drop here.
  async removeIfUnchanged(): Promise<boolean> {
    return false;
  }
  readonly segmentCount = 1024;
  segments(): BigUint64Array {
    return new BigUint64Array(this.segmentCount);
  }
  keysInSegment(): Iterable<Uint8Array> {
    return [];
  }
  async close(): Promise<void> {}
}

/** The seal key of a loop node: its own random secret (nothing else talks to it). */
export function loopSeal(): SealKey {
  const secret = randomBytes(32);
  return { clusterId: clusterIdOf(secret, 'loop'), secret };
}

export class LoopTransport implements Transport {
  handler: ((msg: Inbound) => void) | undefined;
  waiting = new Map<string, () => void>();
  send(): void {}
  forward(): void {}
  reply(replyTo: string): void {
    const done = this.waiting.get(replyTo);
    this.waiting.delete(replyTo);
    done?.();
  }
  async listen(handler: (msg: Inbound) => void): Promise<void> {
    this.handler = handler;
  }
  async close(): Promise<void> {}
}

export const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

