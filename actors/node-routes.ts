/**
 * Which of a node's children serves an event: the routing the node machine does for the request
 * path (replica requests to the replica of their partition, replica answers to the coordinator that
 * asked, a client-driven read to the replica of its key), as pure functions of the node's snapshot.
 *
 * The node machine routes by them, and so does the runtime's fast path (src/runtime/create-node.ts):
 * an event whose child already exists goes to it straight, without a transition of the node machine
 * (issue 8: those transitions were a third of the xstate cost of a put). Everything that needs a
 * decision of the node (spawning a replica, answering NOT_OWNER, counting a late answer) still goes
 * through the node machine, which asks the same functions, so both paths route alike.
 */
import { partitionOf, type Ring } from '../src/core/ring.js';
import { chooseTargets } from '../src/core/targets.js';
import { type Quorum, quorumProblem } from '../src/core/quorum.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { Limits } from '../src/protocol/limits.js';
import type { RequestOptions } from '../src/protocol/messages.js';
import type { ClientLocalReadEvent, NodeEvent } from './node.events.js';

export const coordinatorIdPrefix = 'coordinator-';

/** The child that serves a coordinator request id (`coordinator-<slot>.<seq>`): `coordinator-<slot>`. */
export function coordinatorChildId(reqId: string): string | undefined {
  if (!reqId.startsWith(coordinatorIdPrefix)) return undefined;
  const dot = reqId.indexOf('.', coordinatorIdPrefix.length);
  return dot < 0 ? undefined : reqId.slice(0, dot);
}

export function replicaId(partition: number): string {
  return `replica-${partition}`;
}

/** A child as routing reads it: something to send to, and for a coordinator its snapshot. */
export interface ChildRef {
  send(event: unknown): void;
  getSnapshot(): { status: string; value: unknown; context?: { id?: string } };
}

type Children = Record<string, ChildRef | undefined>;

/**
 * The coordinator that waits for the answer to request reqId, or undefined when the answer is late:
 * the slot's coordinator is idle, or already serves a later request (its own id differs).
 */
export function coordinatorFor(children: Children, reqId: string): ChildRef | undefined {
  const childId = coordinatorChildId(reqId);
  const child = childId === undefined ? undefined : children[childId];
  const snap = child?.getSnapshot();
  return snap && snap.status === 'active' && snap.value !== 'idle' && snap.context?.id === reqId ? child : undefined;
}

/** What a node knows that routing a request needs (part of the node machine's context). */
export interface RouteView {
  nodeId: string;
  ring: Ring;
  /** Members believed down; a node missing here counts as up. */
  down: Record<string, true>;
  quorumDefault: Quorum;
  limits: Limits;
}

/** The quorum a client request asks for (its options over the node's defaults), or what is wrong with it. */
export function requestQuorum(view: RouteView, options: RequestOptions): Quorum | string {
  const quorum: Quorum = {
    n: options.n ?? view.quorumDefault.n,
    r: options.r ?? view.quorumDefault.r,
    w: options.w ?? view.quorumDefault.w,
  };
  return (
    quorumProblem(quorum, view.limits.nMax) ??
    ((options.pw ?? 0) > quorum.n ? `pw must be at most n (${quorum.n}), got ${options.pw}` : null) ??
    ((options.pr ?? 0) > quorum.n ? `pr must be at most n (${quorum.n}), got ${options.pr}` : null) ??
    quorum
  );
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

/** Where the fast path sends an event: to a child, or nowhere (a late answer, only counted). */
export type DirectRoute = { to: ChildRef; event: unknown } | { late: true };

/**
 * The fast path: the child that takes this event as it is, when no decision of the node is needed
 * (the child exists, the read is this node's to answer), with the event it takes; a replica answer
 * no coordinator waits for is late (the node machine would only count it); undefined sends the
 * event to the node machine.
 */
export function directRoute(view: RouteView, children: Children, event: NodeEvent): DirectRoute | undefined {
  switch (event.type) {
    case 'replica.coordinate':
    case 'replica.put':
    case 'replica.get': {
      const to = children[replicaId(event.body.p)];
      return to ? { to, event } : undefined;
    }
    case 'replica.coordinate.ok':
    case 'replica.put.ok':
    case 'replica.get.ok':
    case 'replica.error': {
      const to = coordinatorFor(children, event.reqId);
      return to ? { to, event } : { late: true };
    }
    case 'api.local.get': {
      const route = localReadRoute(view, event);
      if ('error' in route) return undefined;
      const to = children[replicaId(route.partition)];
      return to ? { to, event: localReadEvent(event, route.partition) } : undefined;
    }
    default:
      return undefined;
  }
}

/** The event a replica takes for a client-driven read of its partition. */
export function localReadEvent(req: ClientLocalReadEvent, partition: number) {
  return { type: 'replica.local.get' as const, from: req.from, reqId: req.reqId, replyTo: req.replyTo, p: partition, key: req.key };
}
