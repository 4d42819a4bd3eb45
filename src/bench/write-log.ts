/**
 * The durability check of a fault run: was every acknowledged write still readable once the faulted
 * node was back and the store had repaired itself?
 *
 * The bench draws its values from a small pool, so a value alone does not say which write made it.
 * In a fault run every write (load, update, cart) therefore carries a write id: the value's first
 * bytes are replaced by a tag (the magic "RKW1" and the id, big-endian), and the log keeps each
 * write's start and end time. After the run every key is read back, and each value's tag says which
 * write it came from.
 *
 * The rule, for one key: let B be the acknowledged write that started last. B survived if the read
 * returns B, or a write that B did not wholly precede (one that ended after B started, or whose
 * outcome is unknown because it failed or timed out: such a write may have taken effect later), since
 * only such a write may legitimately have superseded B (with ringkv's contexts, or JetStream's last
 * writer). If B survived, so did every earlier-started acknowledged write of the key, by the same
 * rule. A key whose B did not survive is a lost acknowledged write.
 */
import type { BenchTarget, CartOutcome, ReadOutcome } from './target.js';

const magic = [0x52, 0x4b, 0x57, 0x31]; // "RKW1"
export const writeTagBytes = 8;
/** The most writes one run may tag (the id is 32 bits). */
export const writeIdsMax = 2 ** 32 - 1;
/** The most lost keys a report lists by name. */
export const lostKeysListedMax = 20;
/** Keys read back at once. */
export const readBackConcurrency = 16;

export interface DurabilityCheck {
  /** Keys that had at least one acknowledged write. */
  keysChecked: number;
  acknowledgedWrites: number;
  /** Writes that failed or timed out: their outcome is unknown. */
  unknownWrites: number;
  /** Keys whose last-started acknowledged write was neither read back nor legitimately superseded. */
  lostKeys: number;
  lostKeyNames: string[];
  /** Keys the read-back could not read (an error), so they could not be checked. */
  unreadKeys: number;
  readBackMs: number;
}

export function tagValue(value: Uint8Array, id: number): Uint8Array {
  const tagged = new Uint8Array(Math.max(value.length, writeTagBytes));
  tagged.set(value);
  tagged.set(magic, 0);
  new DataView(tagged.buffer).setUint32(4, id);
  return tagged;
}

/** The write id a value carries, or undefined for a value without a tag. */
export function writeIdOf(value: Uint8Array): number | undefined {
  if (value.length < writeTagBytes) return undefined;
  for (let i = 0; i < magic.length; i++) if (value[i] !== magic[i]) return undefined;
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(4);
}

interface LastAcked {
  id: number;
  startedAt: number;
}

/** The writes of one run: start and end of each, and per key the last-started acknowledged one. */
export class WriteLog {
  private startedAt: number[] = [];
  /** End of each write; Infinity while running, and for good when its outcome is unknown. */
  private endedAt: number[] = [];
  private readonly lastAcked = new Map<string, LastAcked>();
  private acked = 0;
  private unknown = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  begin(): number {
    const id = this.startedAt.length;
    if (id >= writeIdsMax) throw new Error(`a fault run tags at most ${writeIdsMax} writes`);
    this.startedAt.push(this.now());
    this.endedAt.push(Number.POSITIVE_INFINITY);
    return id;
  }

  acknowledged(key: string, id: number): void {
    this.endedAt[id] = this.now();
    this.acked++;
    const last = this.lastAcked.get(key);
    const startedAt = this.startedAt[id]!;
    if (!last || startedAt > last.startedAt) this.lastAcked.set(key, { id, startedAt });
  }

  /** The write failed or timed out: it may or may not have taken effect, now or later. */
  unknownOutcome(): void {
    this.unknown++;
  }

  /** Whether a read of `key` that returned `values` still holds its last acknowledged write. */
  survived(key: string, values: readonly Uint8Array[]): boolean {
    const last = this.lastAcked.get(key);
    if (!last) return true;
    return values.some((v) => {
      const id = writeIdOf(v);
      if (id === undefined || id >= this.startedAt.length) return false;
      return id === last.id || this.endedAt[id]! > last.startedAt;
    });
  }

  keysWithAcks(): string[] {
    return [...this.lastAcked.keys()];
  }

  /** Reads every key with an acknowledged write back through `read`, and applies the rule. */
  async check(read: (key: string) => Promise<Uint8Array[]>): Promise<DurabilityCheck> {
    const t0 = this.now();
    const keys = this.keysWithAcks();
    const lost: string[] = [];
    let unread = 0;
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        let values: Uint8Array[];
        try {
          values = await read(key);
        } catch {
          unread++;
          continue;
        }
        if (!this.survived(key, values)) lost.push(key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(readBackConcurrency, keys.length) }, worker));
    lost.sort();
    return {
      keysChecked: keys.length,
      acknowledgedWrites: this.acked,
      unknownWrites: this.unknown,
      lostKeys: lost.length,
      lostKeyNames: lost.slice(0, lostKeysListedMax),
      unreadKeys: unread,
      readBackMs: Math.round(this.now() - t0),
    };
  }
}

/**
 * The target as the runner sees it in a fault run: the same operations, with every written value
 * tagged and logged. Reads, and everything else the target offers, pass straight through.
 */
export function withWriteLog(target: BenchTarget, log: WriteLog): BenchTarget {
  const logged = async <T>(key: string, value: Uint8Array, write: (tagged: Uint8Array) => Promise<T>): Promise<T> => {
    const id = log.begin();
    try {
      const result = await write(tagValue(value, id));
      log.acknowledged(key, id);
      return result;
    } catch (err) {
      log.unknownOutcome();
      throw err;
    }
  };
  return {
    name: target.name,
    endpoint: target.endpoint,
    durability: target.durability,
    settings: target.settings,
    ...(target.faults ? { faults: target.faults } : {}),
    ...(target.memory ? { memory: () => target.memory!() } : {}),
    load: (key, value) => logged(key, value, (v) => target.load(key, v)),
    read: (key): Promise<ReadOutcome> => target.read(key),
    update: (key, value) => logged(key, value, (v) => target.update(key, v)),
    cart: (key, value): Promise<CartOutcome> => logged(key, value, (v) => target.cart(key, v)),
    close: () => target.close(),
  };
}
