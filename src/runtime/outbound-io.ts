/**
 * Answers out (DESIGN.md §4): how every role's envelopes leave the node. `send` to a peer's role (or
 * to this node's own actors, without the network), `answerClient` to a client's reply address, and
 * `forward` of a client request to the node that answers it. Made once per node; each call encodes
 * one envelope and hands it to the transport, nothing more.
 */
import type { ReapStatus } from './reaper-io.js';
import type { DepartureStatus } from '../protocol/messages.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import type { NodeEvent } from '../../actors/node.events.js';
import type { SendParams } from '../../actors/replica.machine.js';
import { decode } from '../protocol/codec.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { ApiStatusOk, DurabilityMode, ProcessMemory, ReplicaPutBody } from '../protocol/messages.js';
import { readCosts } from '../protocol/cost-counters.js';
import type { Role, Transport } from '../ports/transport.js';
import type { RequestObserver } from './node-api.js';
import type { NodeShared } from './node-shared.js';
import { createReplicaPutsOutbox } from './replica-puts-outbox.js';

export interface ForwardParams {
  to: string;
  replyTo: string;
  bytes: Uint8Array;
}

export interface Outbound {
  /** An envelope to a role of a node; to this node itself, to its actors on the next microtask. */
  send(p: SendParams): void;
  /** An answer to a client's reply address (told to the request observer). */
  answerClient(p: AnswerParams): void;
  /** A client request passed on to another node, which answers the client itself. */
  forward(p: ForwardParams): void;
}

export interface OutboundDeps {
  shared: NodeShared;
  transport: Transport;
  requests?: RequestObserver | undefined;
  /** The process's memory, added to api.status answers. */
  memory?: (() => ProcessMemory) | undefined;
  /** What an ack means with this node's store, added to api.status answers. */
  durability?: DurabilityMode | undefined;
  /** Tombstones kept and reaped (reaper-io.ts), added to api.status answers; asked at each answer. */
  tombstones?: () => ReapStatus | undefined;
  /** Where this node's leave stands (departure-status.ts), added to api.status answers while it leaves. */
  departure?: () => DepartureStatus | undefined;
}

export function createOutbound(deps: OutboundDeps): Outbound {
  const { shared, transport, requests, memory, durability } = deps;
  const { nodeId } = shared;
  const replicaPuts = createReplicaPutsOutbox(nodeId, transport);

  const send = (p: SendParams) => {
    if (p.to === nodeId) {
      // A message to this node itself skips the network. The request path's kinds (replica
      // requests and their answers) go into the coordinator's or the replica's batch of the turn,
      // which an actor takes from a microtask; anything else waits for a microtask of its own, so
      // that an actor never receives an event while it is still taking a transition.
      const event = { type: p.kind, from: nodeId, reqId: p.reqId, body: p.body } as NodeEvent;
      if (p.kind.startsWith('replica.')) shared.deliver(event);
      else queueMicrotask(() => shared.deliver(event));
      return;
    }
    // A turn's replica.put requests to one replica go as one replica.puts, each state as the bytes
    // it was encoded as once (replica-puts-outbox.ts).
    if (p.kind === 'replica.put') return replicaPuts.add(p.to, p.reqId, p.body as ReplicaPutBody);
    const role = p.kind.slice(0, p.kind.indexOf('.')) as Role;
    transport.send(p.to, role, encodeEnvelope({ v: protocolVersion, kind: p.kind, from: nodeId, to: p.to, reqId: p.reqId, body: p.body }));
  };

  const answerClient = (p: AnswerParams) => {
    // The node machine answers status from its context; the cluster id, the process's memory and
    // the store's durability mode are the runtime's to know, added here. A client pins the cluster id
    // of its first ring and ignores rings of any other (src/client/client.ts).
    if (p.kind === 'api.status.ok') {
      const body = { ...(p.body as ApiStatusOk), clusterId: shared.identity.clusterId };
      const tombstones = deps.tombstones?.();
      const departure = deps.departure?.();
      p = {
        ...p,
        body: { ...body, costs: readCosts(), ...(memory ? { memory: memory() } : {}), ...(durability ? { durability } : {}), ...(tombstones ? { tombstones } : {}), ...(departure ? { departure } : {}) },
      };
    }
    requests?.answered(p.to, p.reqId, p.kind, p.kind === 'error' ? (p.body as { code?: string }).code : undefined);
    transport.reply(p.replyTo, encodeEnvelope({ v: protocolVersion, kind: p.kind, from: nodeId, to: p.to, reqId: p.reqId, body: p.body }));
  };

  const forward = (p: ForwardParams) => {
    const env = decode(p.bytes) as { body: Record<string, unknown>; from: string; reqId: string };
    env.body.forwarded = true;
    requests?.forwarded(env.from, env.reqId, p.to);
    transport.forward(p.to, encodeEnvelope(env as never), p.replyTo);
  };

  return { send, answerClient, forward };
}
