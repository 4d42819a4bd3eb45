/**
 * The client's request/reply over core NATS: one wildcard inbox subscription for every request,
 * answers matched to requests by the last token of their reply subject.
 *
 * nats.js's own request() leaves the requests that were in flight on a connection that dropped to
 * time out (DESIGN.md §9): their answers were lost with the connection, but nothing says so. Here a
 * "disconnect" status from the connection fails every pending request at once with `lost`, so the
 * caller can send it again (after the reconnect, or to another node) instead of waiting out its
 * deadline. A "no responders" answer (NATS's 503 status, sent when nothing subscribes to the
 * subject: the node is gone) fails a request at once with `noResponders`.
 *
 * Each request has its own deadline; `request` never throws synchronously.
 *
 * While the connection is down (from its "disconnect" status to its "reconnect"), requests wait in
 * the outbox and leave once it is back: nats.js drops whatever was published in between (each dial
 * starts with an empty outbound buffer), so a request published then would be lost without a word
 * and wait out its deadline, the very thing the failover above is for.
 *
 * Publishes wait for the end of the current run of JavaScript (process.nextTick, which runs once the
 * microtask queue is empty): nats.js writes its outbound buffer to the socket on a microtask after
 * the first publish, so the requests that the answers of one inbound chunk set off, each some
 * promise hops down its own chain, would otherwise leave in several socket writes. Deferred to the
 * tick, they leave in one, with no added wait: the tick runs before the event loop moves on.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

export type MuxFailure = 'noResponders' | 'timeout' | 'lost' | 'closed' | 'publish';

export class MuxError extends Error {
  override readonly name = 'MuxError';
  constructor(
    readonly reason: MuxFailure,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (data: Uint8Array) => void;
  reject: (err: MuxError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Requests in flight at most; beyond, a request fails at once (a client bug, or a runaway loop). */
export const muxPendingMax = 1 << 20;

export class RequestMux {
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private seq = 0;
  private closed = false;
  /** False from a "disconnect" status to the next "reconnect": publishes wait in the outbox. */
  private connected = true;
  /** Requests to publish at the next tick (or once reconnected): subject, bytes, token, in order. */
  private readonly outbox: (string | Uint8Array)[] = [];
  /** Requests failed over because the connection dropped (for tests and metrics). */
  lostRequests = 0;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.deliver(err, msg) });
    void this.watch();
    nc.closed().then(
      () => this.failAll('closed', 'the NATS connection closed'),
      () => this.failAll('closed', 'the NATS connection closed'),
    );
  }

  /** Sends `bytes` to `subject`; resolves with the answer's bytes or rejects with a MuxError. */
  request(subject: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new MuxError('closed', 'the client is closed'));
    if (this.pending.size >= muxPendingMax) return Promise.reject(new MuxError('publish', `more than ${muxPendingMax} requests in flight`));
    const token = (++this.seq).toString(36);
    return new Promise<Uint8Array>((resolve, reject) => {
      // Whole milliseconds: Node keeps one timer list per distinct duration, so fractional ones
      // (what is left of a performance.now() deadline) would each make and drop a list of their own.
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new MuxError('timeout', `no answer within ${timeoutMs} ms`));
      }, Math.max(1, Math.ceil(timeoutMs)));
      this.pending.set(token, { resolve, reject, timer });
      if (this.outbox.length === 0 && this.connected) process.nextTick(this.publishOutbox);
      else if (!this.connected && this.outbox.length > 3 * (2 * this.pending.size + 1024)) this.dropFailed();
      this.outbox.push(subject, bytes, token);
    });
  }

  private readonly publishOutbox = (): void => {
    if (!this.connected) return; // held until the reconnect publishes them
    const outbox = this.outbox;
    for (let i = 0; i < outbox.length; i += 3) {
      const token = outbox[i + 2] as string;
      // Failed meanwhile (the connection dropped or closed, the client closed): nothing to send.
      const p = this.pending.get(token);
      if (!p) continue;
      try {
        this.nc.publish(outbox[i] as string, outbox[i + 1] as Uint8Array, { reply: this.prefix + token });
      } catch (err) {
        clearTimeout(p.timer);
        this.pending.delete(token);
        p.reject(new MuxError('publish', `the request could not be sent: ${(err as Error).message}`));
      }
    }
    outbox.length = 0;
  };

  /** Forgets held requests that failed meanwhile (timed out while the connection was down). */
  private dropFailed(): void {
    const outbox = this.outbox;
    let kept = 0;
    for (let i = 0; i < outbox.length; i += 3) {
      if (!this.pending.has(outbox[i + 2] as string)) continue;
      outbox[kept++] = outbox[i]!;
      outbox[kept++] = outbox[i + 1]!;
      outbox[kept++] = outbox[i + 2]!;
    }
    outbox.length = kept;
  }

  inFlight(): number {
    return this.pending.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll('closed', 'the client is closed');
    try {
      this.sub.unsubscribe();
    } catch {
      // the connection is already gone
    }
  }

  private deliver(err: Error | null, msg: Msg): void {
    if (err || !msg) return;
    const token = msg.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // late: the request already timed out or was failed over
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new MuxError('noResponders', 'nothing subscribes to the subject (no responders)'));
    else p.resolve(msg.data);
  }

  private async watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          // What is in the outbox was never published: it waits for the reconnect, not failed over.
          const held = new Set<string>();
          for (let i = 2; i < this.outbox.length; i += 3) held.add(this.outbox[i] as string);
          const lost = [...this.pending.keys()].filter((t) => !held.has(t));
          this.lostRequests += lost.length;
          this.fail(lost, 'lost', `the connection to NATS server ${s.server} dropped`);
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.publishOutbox();
        }
        if (this.closed) return;
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private failAll(reason: MuxFailure, message: string): void {
    this.outbox.length = 0;
    this.fail([...this.pending.keys()], reason, message);
  }

  private fail(tokens: string[], reason: MuxFailure, message: string): void {
    const failed: Pending[] = [];
    for (const t of tokens) {
      const p = this.pending.get(t);
      if (!p) continue;
      this.pending.delete(t);
      failed.push(p);
    }
    for (const p of failed) {
      clearTimeout(p.timer);
      p.reject(new MuxError(reason, message));
    }
  }
}
