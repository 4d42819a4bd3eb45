/**
 * NatsTransport: the production Transport over core NATS (DESIGN.md §5). Directed messages go to
 * `ringkv.<cluster>.node.<nodeId>.<role>`; client requests arrive on `ringkv.<cluster>.api.*` and
 * admin requests on `ringkv.<cluster>.admin.*`, each in its own queue group, so each request reaches
 * exactly one node, which answers or forwards it. The role handed to the router is the subject's,
 * never the envelope's: the router checks that the kind belongs to it (src/protocol/subjects.ts).
 *
 * Contract (src/ports/transport.ts): at-most-once; `send`, `forward` and `reply` never throw. A
 * publish that fails (connection closed, payload over the server's max_payload, bad subject) is
 * dropped and counted in `droppedSends`: the protocol's acks and deadlines already cover lost
 * messages, and a throw here would crash the actor that sent it. Inbound messages reach the handler
 * synchronously from the NATS parser, one at a time and in arrival order (callback subscriptions:
 * no async iterator, no extra promise per message).
 *
 * Batching (src/protocol/batch.ts): `send` does not publish at once. Envelopes for the same role of
 * the same peer that are sent in one event-loop turn go out together at the end of the turn
 * (setImmediate: after the I/O callbacks and microtasks of the turn), one alone as itself, several as
 * one `batch` envelope. Per peer, the order of sends is kept: a send for another role of that peer
 * first publishes what waits for it. Replies to the same reply subject in one turn (the answers a node
 * owes the items of one client batch) go out as one `batch` envelope too, one alone as itself; a
 * forward keeps its own message (it carries the client's reply subject). Both wait for the same flush: nats.js writes its outbound buffer to the socket
 * on a microtask after the first publish, so publishes made in different callbacks of a turn (each
 * LMDB completion, each inbound chunk) were separate socket writes, a kernel call each; published
 * together from the one flush they leave in one write. A payload too large to batch, or any publish
 * on a closed connection, goes at once, so that its drop is counted at once.
 *
 * While the connection is down (from its "disconnect" status to its "reconnect"), publishes wait and
 * go out once it is back, in order, up to `heldBytesMax` (beyond, they are dropped and counted):
 * nats.js empties its outbound buffer at every dial, so what a node published while it redialled
 * (the acks of writes that committed meanwhile, gossip, hint deliveries) was otherwise lost without a
 * word, and whoever waited for it waited out a deadline.
 *
 * Answers go only to inbox subjects (`_INBOX`, `_INBOX_<role>`...: isInboxSubject): a request's
 * reply subject is the requester's choice, unchecked by NATS, and a node may publish on every subject
 * of its cluster, so an answer to any other subject is dropped and counted in `refusedReplies`.
 *
 * The connection belongs to whoever made it: `close()` publishes what waits, drains this transport's
 * subscriptions and flushes, and leaves the connection open.
 */
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { batchBytesMax, batchItemsMax, encodeBatch } from '../../protocol/batch.js';
import { costs, countPublish } from '../../protocol/cost-counters.js';
import { seal, type SealKey } from '../../protocol/seal.js';
import { roles, type Inbound, type Role, type Transport } from '../../ports/transport.js';
import { adminQueueGroup, adminWildcard, apiQueueGroup, apiWildcard, nodeOpWildcard, nodeSubject, nodeWildcard, roleOfSubject } from '../../protocol/subjects.js';

/** Connect options for a node's long-lived connection: reconnect forever, quickly. */
const reconnectTimeWaitMs = 250;
const reconnectJitterMs = 100;
/** A server that misses this many pings in a row is treated as gone (about 15 s). */
const pingIntervalMs = 5000;
const pingsOutstandingMax = 3;

import { isInboxSubject, mergeNatsSettings, natsConnectionOptions, type NatsAuthSettings } from './connection-options.js';

/**
 * Connect to NATS. `servers` is one URL or a comma-separated list. The first connect fails fast when
 * no server answers (a supervisor restarts the process); once connected, the client reconnects
 * forever, retrying every quarter second.
 */
export async function connectNats(servers: string, name: string, auth: NatsAuthSettings = {}): Promise<NatsConnection> {
  // Credentials come from `auth` or the nats CLI's environment, which a node inherits from its launcher.
  return connect({
    ...natsConnectionOptions(mergeNatsSettings({ ...auth, servers }, process.env)),
    name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: reconnectTimeWaitMs,
    reconnectJitter: reconnectJitterMs,
    pingInterval: pingIntervalMs,
    maxPingOut: pingsOutstandingMax,
  });
}

export interface NatsTransportOptions {
  nc: NatsConnection;
  cluster: string;
  nodeId: string;
  /**
   * The cluster's seal key: every message to a node's subject (send, forward) is sealed with it,
   * once per NATS message, after batching. Without one nothing is sealed, and members drop what
   * this transport sends to their internal roles (left out only by tests of the transport itself).
   */
  seal?: SealKey;
}

const roleSet: ReadonlySet<string> = new Set(roles);

/** Bytes of publishes held while the connection is down, at most: a node cut off for long drops the rest. */
export const heldBytesMax = 16 * 1024 * 1024;
/** Reply subjects with answers waiting in one turn, at most; beyond, the waiting answers go out early. */
export const replySubjectsMax = 4096;

/** Envelopes waiting for the end of the turn, for one peer and one role. */
interface Outgoing {
  subject: string;
  role: Role;
  items: Uint8Array[];
  bytes: number;
}

export class NatsTransport implements Transport {
  /** Publishes that failed and were dropped. */
  droppedSends = 0;
  /** Inbound messages ignored: unknown role, or a handler that threw. */
  droppedReceives = 0;
  /** Envelopes sent (each counted once, whether it travelled alone or in a batch). */
  sentEnvelopes = 0;
  /** NATS messages those envelopes took: sentEnvelopes / sentMessages is the batching factor. */
  sentMessages = 0;
  /** Replies sent (each counted once, alone or in a batch of answers). */
  sentReplies = 0;
  /** NATS messages those replies took: sentReplies / replyMessages is the batching factor of answers. */
  replyMessages = 0;
  /** Publishes held while the connection was down (sent once it was back, or dropped at close). */
  heldSends = 0;
  /** Replies not sent because their reply subject is no inbox (isInboxSubject): a requester's forgery. */
  refusedReplies = 0;

  private readonly nc: NatsConnection;
  private readonly cluster: string;
  private readonly nodeId: string;
  private readonly sealKey: SealKey | undefined;
  private subs: Subscription[] = [];
  /** The api queue group subscription, until leaveQueueGroup() or close(). */
  private queueSub: Subscription | undefined;
  /** What waits for the end of this turn, per peer (at most one role per peer at a time). */
  private readonly outgoing = new Map<string, Outgoing>();
  /** Replies and forwards waiting for the end of this turn, in order: subject, bytes, reply subject. */
  private readonly direct: (string | Uint8Array | undefined)[] = [];
  /** Replies waiting for the end of this turn, per reply subject, in order (at most replySubjectsMax). */
  private readonly replies = new Map<string, Uint8Array[]>();
  private readonly repliesBytes = new Map<string, number>();
  private flushScheduled = false;
  /** False from a "disconnect" status to the next "reconnect": publishes wait in `held`. */
  private connected = true;
  /** Publishes waiting for the reconnect, in order: subject, bytes, reply subject. */
  private readonly held: (string | Uint8Array | undefined)[] = [];
  private heldBytes = 0;
  private stopped = false;

  constructor(opts: NatsTransportOptions) {
    this.nc = opts.nc;
    this.cluster = opts.cluster;
    this.nodeId = opts.nodeId;
    this.sealKey = opts.seal;
    void this.watch();
  }

  /** Follows the connection's status: holds publishes while it is down, sends them once it is back. */
  private async watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (this.stopped) return;
        if (s.type === 'disconnect') this.connected = false;
        else if (s.type === 'reconnect') {
          this.connected = true;
          this.publishHeld();
        }
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private publishHeld(): void {
    const held = this.held;
    for (let i = 0; i < held.length; i += 3) this.publishNow(held[i] as string, held[i + 1] as Uint8Array, held[i + 2] as string | undefined);
    held.length = 0;
    this.heldBytes = 0;
  }

  send(nodeId: string, role: Role, bytes: Uint8Array): void {
    this.sentEnvelopes++;
    // Too large to share a batch, or nothing to batch for on a closed connection: publish at once
    // (after what waited for this peer, so the order holds), which also counts a drop at once.
    const alone = bytes.length > batchBytesMax || this.nc.isClosed();
    let out = this.outgoing.get(nodeId);
    if (out && (alone || out.role !== role || out.items.length >= batchItemsMax || out.bytes + bytes.length > batchBytesMax)) {
      this.publishOutgoing(nodeId, out);
      out = undefined;
    }
    if (alone) {
      this.sentMessages++;
      const subject = nodeSubject(this.cluster, nodeId, role);
      this.publish(subject, this.sealed(subject, bytes), undefined, role);
      return;
    }
    if (!out) {
      out = { subject: nodeSubject(this.cluster, nodeId, role), role, items: [], bytes: 0 };
      this.outgoing.set(nodeId, out);
    }
    out.items.push(bytes);
    out.bytes += bytes.length;
    this.scheduleFlush();
  }

  forward(nodeId: string, bytes: Uint8Array, replyTo: string): void {
    // The node it goes to would not answer there either (reply above).
    if (!isInboxSubject(replyTo)) {
      this.refusedReplies++;
      return;
    }
    // The forward role, not the other node's api: only nodes may publish there (NATS permissions),
    // and the seal proves it came from a member.
    // The client's reply subject goes under the seal: a copy published with another reply subject
    // fails the mac, so nobody can have the answer sent to itself (member-gate.ts).
    const subject = nodeSubject(this.cluster, nodeId, 'forward');
    this.publishLater(subject, this.sealed(subject, bytes, replyTo), replyTo);
  }

  /** What goes out on a node subject: sealed for it (and for its reply subject, if any) when this transport has the key. */
  private sealed(subject: string, bytes: Uint8Array, replyTo?: string): Uint8Array {
    return this.sealKey === undefined ? bytes : seal(this.sealKey, subject, bytes, Date.now(), replyTo);
  }

  reply(replyTo: string, bytes: Uint8Array): void {
    // The requester chose this subject and NATS does not check it against the requester's
    // permissions: only inboxes are answered, so no request makes this node publish its answer on a
    // cluster subject (an admin or node subject) in the requester's stead.
    if (!isInboxSubject(replyTo)) {
      this.refusedReplies++;
      return;
    }
    this.sentReplies++;
    if (bytes.length > batchBytesMax || this.nc.isClosed()) {
      this.replyMessages++;
      this.publish(replyTo, bytes, undefined, 'reply');
      return;
    }
    let items = this.replies.get(replyTo);
    const bytesSoFar = this.repliesBytes.get(replyTo) ?? 0;
    if (items && (items.length >= batchItemsMax || bytesSoFar + bytes.length > batchBytesMax)) {
      this.publishReplies(replyTo, items);
      items = undefined;
    }
    if (!items) {
      // Bounded like everything else that waits: a turn that answers more clients than this sends
      // what it holds and starts again, which costs messages, never answers.
      if (this.replies.size >= replySubjectsMax) this.flushReplies();
      items = [];
      this.replies.set(replyTo, items);
    }
    items.push(bytes);
    this.repliesBytes.set(replyTo, (this.repliesBytes.get(replyTo) ?? 0) + bytes.length);
    this.scheduleFlush();
  }

  private flushReplies(): void {
    for (const [replyTo, items] of this.replies) this.publishReplies(replyTo, items);
  }

  /** One answer alone as itself (what a single-request client expects), several as one batch. */
  private publishReplies(replyTo: string, items: Uint8Array[]): void {
    this.replies.delete(replyTo);
    this.repliesBytes.delete(replyTo);
    this.replyMessages++;
    this.publish(replyTo, items.length === 1 ? items[0]! : encodeBatch(this.nodeId, '', items), undefined, 'reply');
  }

  /** A reply or forward: with the turn's other publishes, unless it is bound to fail or too large. */
  private publishLater(subject: string, bytes: Uint8Array, replyTo: string | undefined): void {
    if (subject.length === 0 || bytes.length > batchBytesMax || this.nc.isClosed()) {
      this.publish(subject, bytes, replyTo, 'forward');
      return;
    }
    this.direct.push(subject, bytes, replyTo);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushOutgoing);
    }
  }

  async listen(handler: (msg: Inbound) => void): Promise<void> {
    if (this.subs.length > 0) throw new Error('NatsTransport is already listening');
    const deliver = (role: Role, msg: Msg) => {
      // msg.reply is '' when the publisher gave no reply subject.
      const replyTo = msg.reply || undefined;
      costs.messagesIn++;
      costs.bytesIn += msg.data.length;
      try {
        handler(replyTo === undefined ? { role, bytes: msg.data, subject: msg.subject } : { role, bytes: msg.data, replyTo, subject: msg.subject });
      } catch {
        // A throw here would unwind into the NATS protocol parser and break the connection.
        this.droppedReceives++;
      }
    };
    this.subs.push(
      this.nc.subscribe(nodeWildcard(this.cluster, this.nodeId), {
        callback: (err, msg) => {
          if (err) return;
          const role = roleOfSubject(msg.subject);
          if (role === undefined || !roleSet.has(role)) {
            this.droppedReceives++;
            return;
          }
          deliver(role as Role, msg);
        },
      }),
      // The client and admin operations addressed to this node name their operation in the subject
      // (`...node.<id>.api.put`): the router checks each request's kind against it.
      this.nc.subscribe(nodeOpWildcard(this.cluster, this.nodeId, 'api'), {
        callback: (err, msg) => {
          if (!err) deliver('api', msg);
        },
      }),
      this.nc.subscribe(nodeOpWildcard(this.cluster, this.nodeId, 'admin'), {
        callback: (err, msg) => {
          if (!err) deliver('admin', msg);
        },
      }),
      this.nc.subscribe(adminWildcard(this.cluster), {
        queue: adminQueueGroup,
        callback: (err, msg) => {
          if (!err) deliver('admin', msg);
        },
      }),
    );
    this.queueSub = this.nc.subscribe(apiWildcard(this.cluster), {
      queue: apiQueueGroup,
      callback: (err, msg) => {
        if (!err) deliver('api', msg);
      },
    });
    this.subs.push(this.queueSub);
    // Once the server has seen the subscriptions, messages published after listen() resolves
    // reach this node.
    await this.nc.flush();
  }

  /** Publishes what waits for the end of the turn now (the node calls it before a group commit). */
  flush(): void {
    if (this.flushScheduled) this.flushOutgoing();
  }

  /** Publishes everything that waits: at the end of the turn, and at close. */
  private readonly flushOutgoing = (): void => {
    this.flushScheduled = false;
    for (const [nodeId, out] of this.outgoing) this.publishOutgoing(nodeId, out);
    this.flushReplies();
    const direct = this.direct;
    for (let i = 0; i < direct.length; i += 3) this.publish(direct[i] as string, direct[i + 1] as Uint8Array, direct[i + 2] as string | undefined, 'forward');
    direct.length = 0;
  };

  private publishOutgoing(nodeId: string, out: Outgoing): void {
    this.outgoing.delete(nodeId);
    this.sentMessages++;
    // One seal for the whole batch: the receiver checks it once and then routes every item.
    this.publish(out.subject, this.sealed(out.subject, out.items.length === 1 ? out.items[0]! : encodeBatch(this.nodeId, nodeId, out.items)), undefined, out.role);
  }

  async leaveQueueGroup(): Promise<void> {
    const sub = this.queueSub;
    if (sub === undefined) return;
    this.queueSub = undefined;
    this.subs = this.subs.filter((s) => s !== sub);
    if (this.nc.isClosed()) return;
    // Drain: what the server already routed to this member of the group is still delivered, then
    // the server stops choosing this node for the group's requests.
    await sub.drain().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.queueSub = undefined;
    this.flushOutgoing();
    this.stopped = true;
    // Still down at close: what is held cannot be sent any more.
    this.droppedSends += this.held.length / 3;
    this.held.length = 0;
    this.heldBytes = 0;
    const subs = this.subs;
    this.subs = [];
    if (this.nc.isClosed()) return;
    // Drain delivers what the server already sent us, then unsubscribes; errors mean the connection
    // went away meanwhile, and then there is nothing left to drain or flush.
    await Promise.all(subs.map((s) => s.drain().catch(() => undefined)));
    await this.nc.flush().catch(() => undefined);
  }

  /** Publishes one message, counted (src/protocol/cost-counters.ts) under `what`: its role, or 'reply'. */
  private publish(subject: string, bytes: Uint8Array, reply: string | undefined, what: string): void {
    countPublish(what, bytes.length);
    this.publishNow(subject, bytes, reply);
  }

  private publishNow(subject: string, bytes: Uint8Array, reply?: string): void {
    if (!this.connected && !this.nc.isClosed()) {
      if (this.heldBytes + bytes.length > heldBytesMax) {
        this.droppedSends++;
        return;
      }
      this.held.push(subject, bytes, reply);
      this.heldBytes += bytes.length;
      this.heldSends++;
      return;
    }
    try {
      if (reply === undefined) this.nc.publish(subject, bytes);
      else this.nc.publish(subject, bytes, { reply });
    } catch {
      this.droppedSends++;
    }
  }
}
