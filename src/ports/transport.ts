/**
 * Transport: how a node's envelopes travel (DESIGN.md §5). Production is NATS core; the simulator a
 * SimNetwork. Both carry opaque bytes: the codec runs above the transport, so the simulator exercises
 * the real encoding too.
 *
 * Contract:
 * - Delivery is at most once and may be silently lost, delayed, duplicated or reordered. Every
 *   internal request therefore has its own ack and deadline in the protocol.
 * - `send` never throws on a dead or unknown peer; it may report `false` when the transport knows at
 *   once that nobody listens (NATS "no responders"), which is a hint, never proof.
 * - Inbound messages are handed to the handler one at a time, in arrival order.
 * - Given a seal key, a transport seals every message it sends to a node's subject (send, forward)
 *   once per message it publishes (a batch is one message: one seal), and hands inbound messages
 *   over with the subject they arrived on; answers to client reply addresses are not sealed, since
 *   clients are not members. Checking seals is the member gate's, above the transport.
 */
export type Role = ClientRole | AdminRole | InternalRole;

/**
 * Roles by who may send on them (src/protocol/subjects.ts): clients on `api`; admins on `admin` and
 * `inspect`; nodes on the internal roles. `forward` carries a client request one node passes on to
 * another, with the client's reply address: it is node traffic, so a client cannot claim to be a
 * forwarding node. `inspect-peer` carries inspection between nodes (a follow session's
 * `inspect.correlate` to the peers of a traced request): node traffic too, so an admin, who may
 * publish on `inspect`, cannot steer another node's session.
 */
export type ClientRole = 'api';
export type AdminRole = 'admin' | 'inspect';
export type InternalRole = 'replica' | 'handoff' | 'aae' | 'gossip' | 'forward' | 'inspect-peer';

export const internalRoles: readonly InternalRole[] = ['replica', 'handoff', 'aae', 'gossip', 'forward', 'inspect-peer'];
export const roles: readonly Role[] = ['api', 'admin', 'inspect', ...internalRoles];

/** Roles whose messages carry a reply address someone waits on: a refusal there is answered, not dropped. */
export function answersOnRole(role: Role): boolean {
  return role === 'api' || role === 'admin' || role === 'forward';
}

export interface Inbound {
  /** The role the message was addressed to (from its subject). */
  role: Role;
  bytes: Uint8Array;
  /** Where a reply goes, for client requests (a NATS inbox, or a simulated client address). */
  replyTo?: string;
  /** The subject it arrived on: every seal binds it (src/protocol/seal.ts), so the receiver checks with it. */
  subject?: string;
  /**
   * Set by the member gate (src/runtime/member-gate.ts) after the seal was checked: true when the
   * message was sealed by a member of this cluster (and `bytes` is then the payload inside the seal),
   * false for an unsigned message on a role that takes them (client requests on api, admin requests
   * on inspect). Internal roles never see a message that is not a member's.
   */
  member?: boolean;
  /** Why the gate refused the seal of an admin request it still passes on to be answered UNAUTHENTICATED. */
  sealRefused?: string;
}

export interface Transport {
  /** Send an envelope to one role of one node. */
  send(nodeId: string, role: Role, bytes: Uint8Array): void;
  /** Send a client request on to another node (its forward role), keeping the client's reply address. */
  forward(nodeId: string, bytes: Uint8Array, replyTo: string): void;
  /**
   * Answer a client request. Answers on a reply address may leave batched: several replies to the same address in one turn
   * may travel as one `batch` envelope (src/protocol/batch.ts) whose items are the answers, in order.
   * Only a client that gave several requests the same reply address can receive one.
   */
  reply(replyTo: string, bytes: Uint8Array): void;
  /** Start receiving this node's messages (its directed roles and the shared api and admin queue groups). */
  listen(handler: (msg: Inbound) => void): Promise<void>;
  /**
   * Stop taking requests from the shared api queue group (what was already delivered is still
   * handed over), so NATS sends the group's requests to the other nodes; everything else, this
   * node's own subjects included, keeps flowing. The first step of a graceful stop. Optional: a
   * transport without a queue group has nothing to leave.
   */
  leaveQueueGroup?(): Promise<void>;
  /**
   * Publish at once what waits for the end of the turn (a transport that batches a turn's sends).
   * Optional: a transport that sends at once has nothing to flush.
   */
  flush?(): void;
  /** Stop receiving and flush what was sent. */
  close(): Promise<void>;
}
