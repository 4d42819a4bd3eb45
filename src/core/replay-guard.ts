/**
 * The replay guard: each sealed message takes effect once (issue 28, item 1). A seal carries an id,
 * a sender incarnation and a counter (src/protocol/seal.ts); the receiver remembers, per sender,
 * the highest counter it took and which of the `idsRemembered` counters below it it took, in a
 * bitmap (the sliding window of IPsec, DTLS and WireGuard). A counter seen before, or too far
 * below the highest to tell, is a replay.
 *
 * Why per sender and not a set of every id: NATS keeps the order of one connection's messages to
 * one subscriber, so a node's messages reach a peer in counter order (with gaps: the counter is
 * shared by all the peers a node sends to). A window per sender then costs one map lookup and a bit
 * per message and a fixed 1 KiB per sender, whatever the message rate, where a set of ids would
 * hold every id of the last window (hundreds of thousands at full load) and churn the heap. The
 * bitmap still takes what arrives out of order by up to `idsRemembered` counters (the simulator
 * reorders; a NATS cluster reroutes on a reconnect).
 *
 * Bounded memory: a sender is forgotten once its newest seal is older than the seal window (every
 * message it ever sent is then refused as stale anyway), and at most `replaySendersMax` senders are
 * remembered; beyond that a new sender's messages are refused ('full') until old ones expire. Only
 * messages whose mac held reach the guard, so only members make senders: a node restart, an admin
 * command, a dashboard each make one. A listener cannot fill it.
 *
 * A receiver that restarts has forgotten what it took; the member gate therefore refuses seals
 * dated before its own start (`startedAtMs`).
 *
 * Pure: the time comes in as arguments.
 */

/** Counters remembered below a sender's highest: reordering up to this is taken, anything older is refused. */
export const idsRemembered = 8192;
/** Senders remembered at once, at most (each costs idsRemembered / 8 bytes). */
export const replaySendersMax = 4096;

export type ReplayVerdict = 'fresh' | 'replayed' | 'before-start' | 'full';

interface SenderWindow {
  top: number;
  /** Bit (counter mod idsRemembered) is set when that counter, within idsRemembered of top, was taken. */
  bits: Uint32Array;
  /** The newest seal time seen from this sender: it is forgotten once this is stale. */
  newestSentAtMs: number;
}

const words = idsRemembered / 32;

export class ReplayGuard {
  private readonly senders = new Map<string, SenderWindow>();
  private nextSweepAtMs: number;

  /**
   * `startedAtMs`: nothing sealed before it is taken (the guard knows nothing of what came before).
   * `windowMs`: the seal window, how long a seal's time is taken (seal.ts sealWindowMs).
   */
  constructor(
    private readonly startedAtMs: number,
    private readonly windowMs: number,
  ) {
    this.nextSweepAtMs = startedAtMs + windowMs;
  }

  /** Senders remembered now. */
  get size(): number {
    return this.senders.size;
  }

  /** Takes the id (sender, counter) of a message sealed at sentAtMs, or says why not. Records it when fresh. */
  admit(sender: string, counter: number, sentAtMs: number, nowMs: number): ReplayVerdict {
    if (sentAtMs < this.startedAtMs) return 'before-start';
    if (nowMs >= this.nextSweepAtMs) this.sweep(nowMs);
    let w = this.senders.get(sender);
    if (w === undefined) {
      if (this.senders.size >= replaySendersMax) {
        this.sweep(nowMs);
        if (this.senders.size >= replaySendersMax) return 'full';
      }
      w = { top: counter, bits: new Uint32Array(words), newestSentAtMs: sentAtMs };
      this.senders.set(sender, w);
      setBit(w.bits, counter);
      return 'fresh';
    }
    if (counter > w.top) {
      // Counters skipped between the old top and this one were never seen: clear their bits, which
      // still hold counters idsRemembered (or more) below.
      if (counter - w.top >= idsRemembered) w.bits.fill(0);
      else for (let c = w.top + 1; c < counter; c++) clearBit(w.bits, c);
      w.top = counter;
      setBit(w.bits, counter);
    } else {
      if (w.top - counter >= idsRemembered || hasBit(w.bits, counter)) return 'replayed';
      setBit(w.bits, counter);
    }
    if (sentAtMs > w.newestSentAtMs) w.newestSentAtMs = sentAtMs;
    return 'fresh';
  }

  /** Forgets the senders whose every message would now be refused as stale. */
  private sweep(nowMs: number): void {
    this.nextSweepAtMs = nowMs + this.windowMs;
    for (const [sender, w] of this.senders) if (nowMs - w.newestSentAtMs > this.windowMs) this.senders.delete(sender);
  }
}

function setBit(bits: Uint32Array, counter: number): void {
  const i = counter % idsRemembered;
  bits[i >>> 5]! |= 1 << (i & 31);
}

function clearBit(bits: Uint32Array, counter: number): void {
  const i = counter % idsRemembered;
  bits[i >>> 5]! &= ~(1 << (i & 31));
}

function hasBit(bits: Uint32Array, counter: number): boolean {
  const i = counter % idsRemembered;
  return (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
}
