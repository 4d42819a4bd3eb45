/**
 * SimNetwork: the simulated message bus of one cluster (DESIGN.md §4). Each node gets a SimTransport
 * (the Transport port) and each simulated client a SimClientEndpoint. Messages are opaque bytes, as on
 * NATS: the codec runs above the transport, so every message here went through the real encoding.
 *
 * Every delivery is a timer on the SimClock. Faults come from one seeded PRNG:
 * - per-link drop and duplicate probabilities and a delay range (a range wider than zero reorders);
 * - partitions: two sets of nodes that cannot reach each other until heal() (checked when a message
 *   is sent and again when it would arrive, like a cut cable);
 * - crash: a crashed node's transport receives nothing and sends nothing, and messages that were on
 *   their way to it are lost (a restarted node listens on a new transport, as a restarted process
 *   makes new subscriptions).
 *
 * Client requests go to the API queue group: one listening, live node picked by the PRNG (as NATS
 * picks one queue subscriber), or the node the client names. Reply addresses of simulated clients
 * look like `sim-client.<clientId>.<n>`.
 */
import type { Prng } from '../../core/prng.js';
import type { Inbound, Role, Transport } from '../../ports/transport.js';
import type { SimClock } from './sim-clock.js';
import { seal, type SealKey } from '../../protocol/seal.js';
import { nodeSubject } from '../../protocol/subjects.js';

/**
 * How a simulated node seals what it sends, as a NatsTransport with a seal key does: the simulator
 * runs the member gate and the real seal too (with the SimClock's time), so its sweeps cover them.
 * The subject is the one the message would have on NATS.
 */
export interface SimSeal {
  key: SealKey;
  cluster: string;
}

export interface LinkFaults {
  /** Probability that a message is lost. */
  drop: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicate: number;
  /** Each delivery takes a uniform whole number of ms in [delayMinMs, delayMaxMs]. */
  delayMinMs: number;
  delayMaxMs: number;
}

/** A calm network: nothing lost, nothing duplicated, 1 ms per hop (so each link stays FIFO). */
export const calmLink: LinkFaults = { drop: 0, duplicate: 0, delayMinMs: 1, delayMaxMs: 1 };

export const clientAddressPrefix = 'sim-client.';

export interface NetworkStats {
  sent: number;
  /** Messages sent per role ('reply' for answers to clients). */
  sentByRole: Record<string, number>;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Lost to a partition. */
  cut: number;
  /** Lost because the receiver was down (crashed, not yet listening, or restarted meanwhile). */
  undeliverable: number;
}

/** One delivered message, as the trace sees it. */
export interface Delivery {
  at: number;
  from: string;
  to: string;
  role: Role | 'reply';
  replyTo: string | undefined;
  bytes: Uint8Array;
}

interface NodeSlot {
  transport: SimTransport;
}

export class SimNetwork {
  readonly stats: NetworkStats = { sent: 0, sentByRole: {}, delivered: 0, dropped: 0, duplicated: 0, cut: 0, undeliverable: 0 };
  private defaults: LinkFaults = calmLink;
  private readonly links = new Map<string, LinkFaults>();
  private readonly nodes = new Map<string, NodeSlot>();
  private readonly clients = new Map<string, SimClientEndpoint>();
  /** side[node] = 'a' | 'b' while a partition is in force. */
  private side: Map<string, 'a' | 'b'> | undefined;
  /** Called on every delivery, before the receiver's handler runs. */
  onDeliver: ((d: Delivery) => void) | undefined;

  constructor(
    readonly clock: SimClock,
    private readonly prng: Prng,
  ) {}

  /** A fresh transport for a node (its first start, or a restart); the old one is dead from now on. */
  attach(nodeId: string, sealWith?: SimSeal): SimTransport {
    const old = this.nodes.get(nodeId);
    if (old) old.transport.kill();
    const transport = new SimTransport(this, nodeId, sealWith);
    this.nodes.set(nodeId, { transport });
    return transport;
  }

  /** The node crashed: its transport sends and receives nothing any more. */
  crash(nodeId: string): void {
    this.nodes.get(nodeId)?.transport.kill();
  }

  isUp(nodeId: string): boolean {
    const t = this.nodes.get(nodeId)?.transport;
    return t !== undefined && t.isListening();
  }

  client(clientId: string, onReply: (replyTo: string, bytes: Uint8Array) => void): SimClientEndpoint {
    const endpoint = new SimClientEndpoint(this, clientId, onReply);
    this.clients.set(clientId, endpoint);
    return endpoint;
  }

  /** Faults for every link without its own. */
  setDefaultFaults(faults: LinkFaults): void {
    this.defaults = { ...faults };
  }

  /** Faults for the one-way link from → to (node or client ids). */
  setLinkFaults(from: string, to: string, faults: LinkFaults): void {
    this.links.set(`${from}>${to}`, { ...faults });
  }

  partition(a: readonly string[], b: readonly string[]): void {
    const side = new Map<string, 'a' | 'b'>();
    for (const n of a) side.set(n, 'a');
    for (const n of b) side.set(n, 'b');
    this.side = side;
  }

  /** End the partition. */
  heal(): void {
    this.side = undefined;
  }

  /** Heal the partition and make every link calm again. */
  healAll(): void {
    this.heal();
    this.links.clear();
    this.defaults = calmLink;
  }

  isPartitioned(): boolean {
    return this.side !== undefined;
  }

  canReach(from: string, to: string): boolean {
    if (!this.side) return true;
    const a = this.side.get(from);
    const b = this.side.get(to);
    return a === undefined || b === undefined || a === b;
  }

  /** Nodes a queue-group request may go to: listening and not crashed, in id order. */
  apiNodes(): string[] {
    return [...this.nodes.keys()].filter((id) => this.isUp(id)).sort();
  }

  /** A node → node message (a directed role, or a forwarded client request). */
  sendToNode(from: SimTransport, to: string, role: Role, bytes: Uint8Array, replyTo?: string): void {
    const target = this.nodes.get(to)?.transport;
    this.transmit(from.nodeId, to, role, bytes, replyTo, (copy) => {
      // The receiver must be the same incarnation that was up when the message was sent.
      if (!target || this.nodes.get(to)?.transport !== target || !target.deliver(role, copy, replyTo)) return false;
      return true;
    });
  }

  /**
   * A client request into the API queue group, or to one named node; on the admin role for an admin
   * request (as an admin publishes on the admin subjects: src/protocol/subjects.ts).
   */
  sendRequest(from: string, bytes: Uint8Array, replyTo: string, node?: string, role: 'api' | 'admin' = 'api'): void {
    const candidates = this.apiNodes();
    const to = node ?? (candidates.length > 0 ? this.prng.pick(candidates) : undefined);
    if (to === undefined) {
      // Nobody listens: NATS would answer "no responders"; the client's deadline covers it.
      this.stats.sent++;
      this.stats.undeliverable++;
      return;
    }
    const target = this.nodes.get(to)?.transport;
    this.transmit(from, to, role, bytes, replyTo, (copy) => {
      if (!target || this.nodes.get(to)?.transport !== target) return false;
      return target.deliver(role, copy, replyTo);
    });
  }

  /** A node's answer to a client. */
  sendReply(from: SimTransport, replyTo: string, bytes: Uint8Array): void {
    const clientId = clientIdOf(replyTo);
    const client = clientId === undefined ? undefined : this.clients.get(clientId);
    this.transmit(from.nodeId, clientId ?? replyTo, 'reply', bytes, replyTo, (copy) => {
      if (!client) return false;
      client.deliver(replyTo, copy);
      return true;
    });
  }

  private linkFaults(from: string, to: string): LinkFaults {
    return this.links.get(`${from}>${to}`) ?? this.defaults;
  }

  private transmit(
    from: string,
    to: string,
    role: Role | 'reply',
    bytes: Uint8Array,
    replyTo: string | undefined,
    arrive: (copy: Uint8Array) => boolean,
  ): void {
    this.stats.sent++;
    this.stats.sentByRole[role] = (this.stats.sentByRole[role] ?? 0) + 1;
    this.clock.touch();
    if (!this.canReach(from, to)) {
      this.stats.cut++;
      return;
    }
    const faults = this.linkFaults(from, to);
    if (this.prng.chance(faults.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.prng.chance(faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    // The sender may reuse its buffer; the network carries its own copy.
    const payload = bytes.slice();
    for (let i = 0; i < copies; i++) {
      const delay = this.prng.int(faults.delayMinMs, faults.delayMaxMs);
      this.clock.setTimeout(() => {
        if (!this.canReach(from, to)) {
          this.stats.cut++;
          return;
        }
        const copy = payload.slice();
        this.onDeliver?.({ at: this.clock.now(), from, to, role, replyTo, bytes: copy });
        if (arrive(copy)) this.stats.delivered++;
        else this.stats.undeliverable++;
      }, delay);
    }
  }
}

export function clientIdOf(replyTo: string): string | undefined {
  if (!replyTo.startsWith(clientAddressPrefix)) return undefined;
  const rest = replyTo.slice(clientAddressPrefix.length);
  const dot = rest.lastIndexOf('.');
  return dot <= 0 ? undefined : rest.slice(0, dot);
}

/** Transports made per network: each one's sender incarnation is numbered, in the run's order. */
const transportsMade = new WeakMap<SimNetwork, number>();

/**
 * The sender incarnation of a simulated node's seals: the node id's FNV-1a hash and the transport's
 * number in this network, 8 bytes. Unique per incarnation like production's random ones, and the
 * same at every run of a seed (the trace hashes the sealed bytes).
 */
function simSender(network: SimNetwork, nodeId: string): Uint8Array {
  const n = (transportsMade.get(network) ?? 0) + 1;
  transportsMade.set(network, n);
  let h = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) h = Math.imul(h ^ nodeId.charCodeAt(i), 0x01000193) >>> 0;
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, h);
  view.setUint32(4, n);
  return out;
}

/** One node incarnation's Transport. Dead (crashed, or replaced by a restart) means deaf and mute. */
export class SimTransport implements Transport {
  /** Inbound messages whose handler threw (as NatsTransport counts them). */
  droppedReceives = 0;
  private handler: ((msg: Inbound) => void) | undefined;
  private dead = false;

  constructor(
    private readonly network: SimNetwork,
    readonly nodeId: string,
    private readonly sealWith?: SimSeal,
  ) {
    this.sealKey = sealWith === undefined ? undefined : { ...sealWith.key, sender: simSender(network, nodeId) };
  }

  /**
   * This incarnation's own key object: a sender of its own (seal.ts), as each production process
   * is, so that the receivers' replay guards see one sender per node incarnation.
   */
  private readonly sealKey: SealKey | undefined;

  private sealed(to: string, role: Role, bytes: Uint8Array, replyTo?: string): Uint8Array {
    const s = this.sealWith;
    return s === undefined || this.sealKey === undefined ? bytes : seal(this.sealKey, nodeSubject(s.cluster, to, role), bytes, this.network.clock.now(), replyTo);
  }

  send(nodeId: string, role: Role, bytes: Uint8Array): void {
    if (this.dead) return;
    this.network.sendToNode(this, nodeId, role, this.sealed(nodeId, role, bytes));
  }

  forward(nodeId: string, bytes: Uint8Array, replyTo: string): void {
    if (this.dead) return;
    this.network.sendToNode(this, nodeId, 'forward', this.sealed(nodeId, 'forward', bytes, replyTo), replyTo);
  }

  reply(replyTo: string, bytes: Uint8Array): void {
    if (this.dead) return;
    this.network.sendReply(this, replyTo, bytes);
  }

  async listen(handler: (msg: Inbound) => void): Promise<void> {
    if (this.handler) throw new Error('SimTransport is already listening');
    if (!this.dead) this.handler = handler;
  }

  async close(): Promise<void> {
    this.handler = undefined;
  }

  isListening(): boolean {
    return !this.dead && this.handler !== undefined;
  }

  kill(): void {
    this.dead = true;
    this.handler = undefined;
  }

  /** Hand one message to the node; false when nobody listens. */
  deliver(role: Role, bytes: Uint8Array, replyTo: string | undefined): boolean {
    const handler = this.handler;
    if (this.dead || !handler) return false;
    // The subject a seal binds. Client and admin requests get none: a simulated client names no
    // operation subject (on NATS each operation has its own, checked by the router), and clients
    // never seal.
    const subject = this.sealWith === undefined || role === 'api' || role === 'admin' ? undefined : nodeSubject(this.sealWith.cluster, this.nodeId, role);
    try {
      handler({ role, bytes, ...(replyTo !== undefined ? { replyTo } : {}), ...(subject !== undefined ? { subject } : {}) });
    } catch {
      this.droppedReceives++;
    }
    return true;
  }
}

/** A simulated client's connection: requests into the queue group, replies to its own addresses. */
export class SimClientEndpoint {
  constructor(
    private readonly network: SimNetwork,
    readonly clientId: string,
    private readonly onReply: (replyTo: string, bytes: Uint8Array) => void,
  ) {}

  /** A reply address of this client: `sim-client.<clientId>.<n>`. */
  address(n: number): string {
    return `${clientAddressPrefix}${this.clientId}.${n}`;
  }

  request(bytes: Uint8Array, replyTo: string, node?: string, role: 'api' | 'admin' = 'api'): void {
    this.network.sendRequest(this.clientId, bytes, replyTo, node, role);
  }

  deliver(replyTo: string, bytes: Uint8Array): void {
    this.onReply(replyTo, bytes);
  }
}
