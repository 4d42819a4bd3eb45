/**
 * Routing on the request path, in one place, as pure functions of what the node knows: a client
 * request is coordinated here, forwarded to the first of the key's targets, or answered with an
 * error (clientRoute); replica requests go to the replica of their partition; replica answers and
 * client requests go to the node's one coordinator actor, in a turn's batch (actors/coordinator.machine.ts);
 * a client-driven read goes to the replica of its key (localReadRoute).
 *
 * The runtime (src/runtime/inbound-io.ts) routes every request-path event by directRoute, without
 * a transition of the node machine. Only what needs a decision of the node (answering NOT_OWNER to a
 * local read) goes through the node machine, which asks the same functions, so both paths route alike.
 */
import { partitionOf } from '../src/core/ring.js';
import { chooseTargets } from '../src/core/targets.js';
import { type Quorum, quorumProblem } from '../src/core/quorum.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { RequestOptions } from '../src/protocol/messages.js';
import type { CoordinatorInput } from './coordinator.core.js';
import type { RouteView } from './route-view.js';
import type { CoordinatorItem } from './coordinator.events.js';
import type { ClientLocalReadEvent, ClientReadEvent, ClientWriteEvent, NodeEvent, ReplicaReadEvent } from './node.events.js';
import type { ReplicaWriteItem } from './replica.core.js';

/** The id of the node's one replica actor (a child of the node machine). */
export const replicaActorId = 'replica';

/** The id of the node's one coordinator actor (a child of the node machine). */
export const coordinatorActorId = 'coordinator';

export type { RouteView } from './route-view.js';

/** The quorum a client request asks for (its options over the node's defaults), or what is wrong with it. */
export function requestQuorum(view: RouteView, options: RequestOptions): Quorum | string {
  const n = options.n ?? view.quorumDefault.n;
  // A default R or W never exceeds the N a request asks for (`--n 1` alone means R = W = 1); only
  // what the client says itself can be refused.
  const quorum: Quorum = {
    n,
    r: options.r ?? Math.min(view.quorumDefault.r, n),
    w: options.w ?? Math.min(view.quorumDefault.w, n),
  };
  return (
    quorumProblem(quorum, view.limits.nMax) ??
    ((options.pw ?? 0) > quorum.n ? `pw must be at most n (${quorum.n}), got ${options.pw}` : null) ??
    ((options.pr ?? 0) > quorum.n ? `pr must be at most n (${quorum.n}), got ${options.pr}` : null) ??
    quorum
  );
}

/** A request as routing decides it, before the coordinator gives it its id and timing. */
export type RoutedRequest = Omit<CoordinatorInput, 'id' | 'nodeId' | 'timeoutMs' | 'readRepairWaitMs' | 'fallbackWaitMs'> & { timeoutMs: number | undefined };

/** What becomes of a client request (api.put, api.del, api.get) at this node. */
export type ClientRoute = { error: ErrorBody } | { forward: string } | { coordinate: RoutedRequest };

/**
 * Dynamo §4.5: a node that is one of the key's targets (the first N healthy nodes of its extended
 * preference list, sloppy quorum §4.6) coordinates the request; one that is not passes it on to the
 * first of them, once (a forwarded request is never forwarded again).
 */
export function clientRoute(view: RouteView, req: ClientWriteEvent | ClientReadEvent): ClientRoute {
  const options = req.options;
  const quorum = requestQuorum(view, options);
  if (typeof quorum === 'string') return { error: { code: 'BAD_REQUEST', message: quorum } };
  const partition = partitionOf(req.key, view.ring.q);
  const isUp = (node: string) => node === view.nodeId || !view.down[node];
  const { primaries, targets, orphans, spares } = chooseTargets(view.ring, partition, quorum.n, isUp);
  const self = targets.find((t) => t.node === view.nodeId);
  if (!self) {
    const target = targets[0]?.node;
    if (req.forwarded) return { error: { code: 'NOT_OWNER', message: `node ${view.nodeId} is not a replica of this key and the request was already forwarded once` } };
    if (target === undefined) return { error: { code: 'UNAVAILABLE', message: `no node of the preference list (${primaries.join(', ')}) or its fallbacks is up`, needed: 1, alive: 0 } };
    return { forward: target };
  }
  const isWrite = req.type !== 'api.get';
  return {
    coordinate: {
      op: isWrite ? 'put' : 'get',
      client: { replyTo: req.replyTo, from: req.from, reqId: req.reqId, kind: req.type },
      partition,
      key: req.key,
      preferenceList: primaries,
      // The coordinating replica is this node: it goes first.
      targets: [self, ...targets.filter((t) => t !== self)],
      localHints: self.hintFor ? [self.hintFor, ...orphans] : orphans,
      spares,
      quorum,
      primariesNeeded: (isWrite ? options.pw : options.pr) ?? 0,
      sloppy: options.sloppy ?? true,
      timeoutMs: options.timeoutMs,
      context: isWrite ? (req as ClientWriteEvent).context : [],
      value: isWrite ? (req as ClientWriteEvent).value : null,
    },
  };
}

/**
 * A client-driven read (api.local.get): the partition whose replica answers it, or the error the
 * client gets. Only a node that is one of the key's targets (by its own ring and liveness view)
 * answers; any other says NOT_OWNER, so a client whose ring is stale never takes an empty answer
 * from a node that does not hold the key for "not found".
 */
export function localReadRoute(view: RouteView, req: Pick<ClientLocalReadEvent, 'key' | 'options'>): { partition: number } | { error: ErrorBody } {
  const quorum = requestQuorum(view, req.options);
  if (typeof quorum === 'string') return { error: { code: 'BAD_REQUEST', message: quorum } };
  const partition = partitionOf(req.key, view.ring.q);
  const isUp = (node: string) => node === view.nodeId || !view.down[node];
  const { primaries, targets } = chooseTargets(view.ring, partition, quorum.n, isUp);
  if (!primaries.includes(view.nodeId) && !targets.some((t) => t.node === view.nodeId)) {
    return {
      error: {
        code: 'NOT_OWNER',
        message: `node ${view.nodeId} is not a replica of this key (its preference list is ${primaries.join(', ')}); the client's ring is stale`,
      },
    };
  }
  return { partition };
}

/**
 * Where the runtime sends a request-path event: into the coordinator's batch for this turn, into
 * the replica's batch for this turn (writes), to the runtime's reads (replica.get, and a client's
 * local read this node may answer); undefined sends the event to the node machine (a decision of the
 * node is needed, for example a local read this node must refuse).
 */
export type DirectRoute =
  | { coordinator: CoordinatorItem }
  | { replica: ReplicaWriteItem }
  | { read: ReplicaReadEvent }
  | { localRead: ReturnType<typeof localReadEvent> };

export function directRoute(view: RouteView, event: NodeEvent): DirectRoute | undefined {
  switch (event.type) {
    case 'api.put':
    case 'api.del':
    case 'api.get':
    case 'replica.coordinate.ok':
    case 'replica.coordinate.made':
    case 'replica.put.ok':
    case 'replica.get.ok':
    case 'replica.error':
      return { coordinator: event };
    case 'replica.coordinate':
    case 'replica.put':
      return { replica: event };
    case 'replica.get':
      return { read: event };
    case 'api.local.get': {
      const route = localReadRoute(view, event);
      if ('error' in route) return undefined;
      return { localRead: localReadEvent(event, route.partition) };
    }
    default:
      return undefined;
  }
}

/** The event a replica takes for a client-driven read of its partition. */
export function localReadEvent(req: ClientLocalReadEvent, partition: number) {
  return { type: 'replica.local.get' as const, from: req.from, reqId: req.reqId, replyTo: req.replyTo, p: partition, key: req.key };
}
