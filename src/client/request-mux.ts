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
 * A publish NATS refuses (a Permissions Violation: this user may not publish on that subject) comes
 * back as an asynchronous error naming the subject; every request in flight to it fails at once with
 * `denied`, and all of them when the refusal is of the inbox subscription, rather than each waiting
 * out its deadline for an answer that cannot come.
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
 *
 * Batches (src/protocol/batch.ts): the requests of one tick for the same subject that carry a reqId
 * leave as one NATS message, a `batch` envelope whose items are the request envelopes, with one reply
 * subject (a fresh token of the inbox) for the whole batch. The node answers each item alone, with
 * that item's reqId, and may send several answers as one batch envelope; the mux matches answers by
 * (batch token, reqId). A request that is alone for its subject in the tick, carries no reqId, or is
 * too large to share travels as itself with its own token, as a single-request client's would.
 * Deadlines, failover and the outbox stay per request: a batch is only how requests travel.
 */
import { createInbox, PermissionViolationError, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { batchBytesMax, batchItems, batchItemsMax, batchKind, encodeBatch } from '../protocol/batch.js';
import { decodeEnvelope } from '../protocol/envelope.js';
import { inboxPrefixOf } from '../adapters/nats/connection-options.js';
import { isBytes } from '../protocol/validation.js';

/** denied: NATS refused the publish to the request's subject, or the inbox subscription (a Permissions Violation). */
export type MuxFailure = 'noResponders' | 'timeout' | 'lost' | 'closed' | 'publish' | 'denied';

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
  /** Where it was sent: a permission violation names the subject, and fails the requests sent there. */
  subject: string;
  /** Set once the request left in a batch: the key `${batchToken} ${reqId}` its answer comes under. */
  itemKey?: string;
}

/** Requests in flight at most; beyond, a request fails at once (a client bug, or a runaway loop). */
export const muxPendingMax = 1 << 20;

export class RequestMux {
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private seq = 0;
  private closed = false;
  /**
   * Why NATS refused the inbox subscription, once it has: no answer can ever arrive, so every
   * request from then on fails at once with it instead of waiting out its deadline.
   */
  private inboxRefused: string | undefined;
  /** False from a "disconnect" status to the next "reconnect": publishes wait in the outbox. */
  private connected = true;
  /** Requests to publish at the next tick (or once reconnected): subject, bytes, token, reqId, in order. */
  private readonly outbox: (string | Uint8Array)[] = [];
  /** Requests in flight in batches: `${batchToken} ${reqId}` to the request's own token. */
  private readonly items = new Map<string, string>();
  /** Batches in flight: batch token to the tokens of its requests (for a "no responders" answer). */
  private readonly batches = new Map<string, { tokens: string[]; left: number }>();
  /** Requests failed over because the connection dropped (for tests and metrics). */
  lostRequests = 0;
  /** NATS messages published, and the requests they carried (for tests and metrics): the batching factor. */
  sentMessages = 0;
  sentRequests = 0;

  /**
   * `inboxPrefix`: the family this user may subscribe to (a secured NATS gives each role or user its
   * own, README "Security"); the connection's own prefix when not given.
   */
  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix: string = inboxPrefixOf(nc),
  ) {
    this.prefix = `${createInbox(inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.deliver(err, msg) });
    void this.watch();
    nc.closed().then(
      () => this.failAll('closed', 'the NATS connection closed'),
      () => this.failAll('closed', 'the NATS connection closed'),
    );
  }

  /** Sends `bytes` to `subject`; resolves with the answer's bytes or rejects with a MuxError. */
  request(subject: string, bytes: Uint8Array, timeoutMs: number, reqId = ''): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new MuxError('closed', 'the client is closed'));
    if (this.inboxRefused !== undefined) return Promise.reject(new MuxError('denied', this.inboxRefused));
    if (this.pending.size >= muxPendingMax) return Promise.reject(new MuxError('publish', `more than ${muxPendingMax} requests in flight`));
    const token = (++this.seq).toString(36);
    return new Promise<Uint8Array>((resolve, reject) => {
      // Whole milliseconds: Node keeps one timer list per distinct duration, so fractional ones
      // (what is left of a performance.now() deadline) would each make and drop a list of their own.
      const timer = setTimeout(() => {
        this.settle(token);
        reject(new MuxError('timeout', `no answer within ${timeoutMs} ms`));
      }, Math.max(1, Math.ceil(timeoutMs)));
      this.pending.set(token, { resolve, reject, timer, subject });
      if (this.outbox.length === 0 && this.connected) process.nextTick(this.publishOutbox);
      else if (!this.connected && this.outbox.length > 4 * (2 * this.pending.size + 1024)) this.dropFailed();
      this.outbox.push(subject, bytes, token, reqId);
    });
  }

  private readonly publishOutbox = (): void => {
    if (!this.connected) return; // held until the reconnect publishes them
    const outbox = this.outbox;
    // The requests of this tick that may share a batch, per subject, in order (outbox indexes).
    const groups = new Map<string, number[]>();
    for (let i = 0; i < outbox.length; i += 4) {
      const token = outbox[i + 2] as string;
      // Failed meanwhile (the connection dropped or closed, the client closed): nothing to send.
      if (!this.pending.has(token)) continue;
      const reqId = outbox[i + 3] as string;
      if (reqId === '' || (outbox[i + 1] as Uint8Array).length > batchBytesMax) this.publishAlone(outbox[i] as string, outbox[i + 1] as Uint8Array, token);
      else {
        const group = groups.get(outbox[i] as string);
        if (group) group.push(i);
        else groups.set(outbox[i] as string, [i]);
      }
    }
    for (const [subject, group] of groups) this.publishGroup(subject, group);
    outbox.length = 0;
  };

  /** One subject's requests of a tick: alone if there is one, else batches within the maximums. */
  private publishGroup(subject: string, group: number[]): void {
    const outbox = this.outbox;
    if (group.length === 1) return this.publishAlone(subject, outbox[group[0]! + 1] as Uint8Array, outbox[group[0]! + 2] as string);
    let start = 0;
    while (start < group.length) {
      const batchToken = (++this.seq).toString(36);
      const items: Uint8Array[] = [];
      const tokens: string[] = [];
      let bytes = 0;
      let i = start;
      for (; i < group.length && items.length < batchItemsMax; i++) {
        const item = outbox[group[i]! + 1] as Uint8Array;
        const key = `${batchToken} ${outbox[group[i]! + 3] as string}`;
        if (bytes + item.length > batchBytesMax || this.items.has(key)) break; // full, or a reqId twice
        const token = outbox[group[i]! + 2] as string;
        this.items.set(key, token);
        this.pending.get(token)!.itemKey = key;
        items.push(item);
        tokens.push(token);
        bytes += item.length;
      }
      start = i;
      this.batches.set(batchToken, { tokens, left: tokens.length });
      try {
        this.sentMessages++;
        this.sentRequests += items.length;
        this.nc.publish(subject, encodeBatch('', '', items), { reply: this.prefix + batchToken });
      } catch (err) {
        this.fail(tokens, 'publish', `the request could not be sent: ${(err as Error).message}`);
      }
    }
  }

  private publishAlone(subject: string, bytes: Uint8Array, token: string): void {
    try {
      this.sentMessages++;
      this.sentRequests++;
      this.nc.publish(subject, bytes, { reply: this.prefix + token });
    } catch (err) {
      this.fail([token], 'publish', `the request could not be sent: ${(err as Error).message}`);
    }
  }

  /** Forgets a request that is done (answered, timed out or failed), and its place in a batch. */
  private settle(token: string): Pending | undefined {
    const p = this.pending.get(token);
    if (!p) return undefined;
    this.pending.delete(token);
    if (p.itemKey !== undefined) {
      this.items.delete(p.itemKey);
      const batchToken = p.itemKey.slice(0, p.itemKey.indexOf(' '));
      const batch = this.batches.get(batchToken);
      if (batch && --batch.left === 0) this.batches.delete(batchToken);
    }
    return p;
  }

  /** Forgets held requests that failed meanwhile (timed out while the connection was down). */
  private dropFailed(): void {
    const outbox = this.outbox;
    let kept = 0;
    for (let i = 0; i < outbox.length; i += 4) {
      if (!this.pending.has(outbox[i + 2] as string)) continue;
      outbox[kept++] = outbox[i]!;
      outbox[kept++] = outbox[i + 1]!;
      outbox[kept++] = outbox[i + 2]!;
      outbox[kept++] = outbox[i + 3]!;
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
    const noResponders = msg.data.length === 0 && msg.headers?.code === 503;
    if (this.pending.has(token)) {
      const p = this.settle(token)!;
      clearTimeout(p.timer);
      if (noResponders) p.reject(new MuxError('noResponders', 'nothing subscribes to the subject (no responders)'));
      else p.resolve(msg.data);
      return;
    }
    const batch = this.batches.get(token);
    if (!batch) return; // late: the request already timed out or was failed over
    if (noResponders) return this.fail(batch.tokens, 'noResponders', 'nothing subscribes to the subject (no responders)');
    // The answers to a batch's items: each alone, or several as one batch envelope of answers. Nothing
    // from NATS is trusted: an answer that does not decode or names no request of this batch is ignored,
    // and its request waits out its deadline.
    const env = decodeEnvelope(msg.data);
    if (typeof env === 'string') return;
    if (env.kind !== batchKind) return this.answerItem(token, env.reqId, msg.data);
    const answers = batchItems(env.body);
    if (typeof answers === 'string') return;
    for (const answer of answers) {
      if (!isBytes(answer)) continue;
      const one = decodeEnvelope(answer);
      if (typeof one !== 'string') this.answerItem(token, one.reqId, answer);
    }
  }

  private answerItem(batchToken: string, reqId: string, bytes: Uint8Array): void {
    const token = this.items.get(`${batchToken} ${reqId}`);
    if (token === undefined) return;
    const p = this.settle(token);
    if (!p) return;
    clearTimeout(p.timer);
    p.resolve(bytes);
  }

  private async watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          // What is in the outbox was never published: it waits for the reconnect, not failed over.
          const held = new Set<string>();
          for (let i = 2; i < this.outbox.length; i += 4) held.add(this.outbox[i] as string);
          const lost = [...this.pending.keys()].filter((t) => !held.has(t));
          this.lostRequests += lost.length;
          this.fail(lost, 'lost', `the connection to NATS server ${s.server} dropped`);
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.publishOutbox();
        } else if (s.type === 'error' && s.error instanceof PermissionViolationError) {
          this.denied(s.error);
        }
        if (this.closed) return;
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private denied(err: PermissionViolationError): void {
    if (err.operation === 'subscription') {
      if (err.subject === `${this.prefix}*`) {
        this.inboxRefused = `NATS does not let this user subscribe to its inbox ${err.subject}: give the inbox prefix this user may subscribe to (--inbox-prefix, RINGKV_INBOX_PREFIX, or the inboxPrefix option)`;
        this.failAll('denied', this.inboxRefused);
      }
      return;
    }
    const tokens = [...this.pending].filter(([, p]) => p.subject === err.subject).map(([t]) => t);
    this.fail(tokens, 'denied', `NATS does not let this user publish to ${err.subject}`);
  }

  private failAll(reason: MuxFailure, message: string): void {
    this.outbox.length = 0;
    this.fail([...this.pending.keys()], reason, message);
  }

  private fail(tokens: string[], reason: MuxFailure, message: string): void {
    const failed: Pending[] = [];
    for (const t of tokens) {
      const p = this.settle(t);
      if (p) failed.push(p);
    }
    for (const p of failed) {
      clearTimeout(p.timer);
      p.reject(new MuxError(reason, message));
    }
  }
}
