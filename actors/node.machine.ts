/**
 * Node: the root actor of one ringkv node. It spawns and supervises the others and routes every
 * validated envelope to the actor it is for.
 *
 * Client requests (api.put / api.del / api.get), replica requests and replica answers never pass
 * through it: the runtime hands them to its coordinator child and its replica child, a turn's worth
 * in one batch each (actors/node-routes.ts directRoute), so a request costs the node no transition.
 * It takes: api.local.get that this node must refuse (NOT_OWNER from a node that is not one of the
 * key's targets), api.status, gossip traffic (to its gossip child), member.up / member.down (from
 * the gossip child's failure detector), aae.* traffic, aae.tick and api.aae (to its anti-entropy
 * child; the tick carries the members believed down), handoff and transfer traffic, api.hints and
 * api.backup (answered by the runtime's answerHints and takeBackup). Sends: answers api.status.
 *
 * Invariants: the ring and the liveness view are context, so membership (gossip) can change them,
 * and the coordinator routes every batch by the view of that moment.
 */
import { assign, enqueueActions, forwardTo, sendTo, setup, spawnChild } from 'xstate';
import type { ClusterState } from '../src/core/cluster-state.js';
import { departedOf } from '../src/core/departed.js';
import type { Ring } from '../src/core/ring.js';
import type { Quorum } from '../src/core/quorum.js';
import type { Limits } from '../src/protocol/limits.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { ApiStatusOk } from '../src/protocol/messages.js';
import { type AntiEntropyInput, antiEntropyMachine } from './anti-entropy.machine.js';
import { type AnswerParams, coordinatorMachine } from './coordinator.machine.js';
import { type GossipInput, gossipMachine } from './gossip.machine.js';
import { type HandoffInput, handoffMachine } from './handoff.machine.js';
import type { ClientLocalReadEvent, NodeEvent } from './node.events.js';
import { type TransferInput, transferMachine } from './transfer.machine.js';
import { replicaMachine } from './replica.machine.js';
import { coordinatorActorId, localReadEvent, localReadRoute, replicaActorId } from './node-routes.js';

export interface NodeInput {
  nodeId: string;
  cluster: string;
  ring: Ring;
  quorumDefault: Quorum;
  limits: Limits;
  requestTimeoutMs: number;
  readRepairWaitMs: number;
  fallbackWaitMs: number;
  coordinatorsMax: number;
  writesInFlightMax: number;
  gossip: GossipInput;
  handoff: HandoffInput;
  antiEntropy: AntiEntropyInput;
  transfer: TransferInput;
}

export interface NodeContext extends NodeInput {
  /** The gossiped cluster state as the gossip child last reported it (members for status). */
  membership: ClusterState;
  /** Liveness as this node believes it; a node missing here counts as up. */
  down: Record<string, true>;
}

/** What an enqueueActions callback of this machine receives, loosely typed (see the casts below). */
interface NodeArgs {
  context: NodeContext;
  event: NodeEvent;
  self: { getSnapshot(): { children: Record<string, unknown> } };
  enqueue: {
    (action: string | { type: string; params?: unknown }): void;
    spawnChild(src: string, options: { id: string; input: unknown }): void;
    sendTo(to: string | unknown, event: unknown): void;
    assign(update: Partial<NodeContext>): void;
  };
}

function answerError(event: { from: string; reqId: string; replyTo: string }, body: ErrorBody): AnswerParams {
  return { replyTo: event.replyTo, to: event.from, reqId: event.reqId, kind: 'error', body };
}

export const nodeMachine = setup({
  types: {
    context: {} as NodeContext,
    events: {} as NodeEvent,
    input: {} as NodeInput,
  },
  actors: {
    coordinator: coordinatorMachine,
    replica: replicaMachine,
    gossip: gossipMachine,
    handoff: handoffMachine,
    antiEntropy: antiEntropyMachine,
    transfer: transferMachine,
  },
  actions: {
    // I/O, provided by the runtime.
    answerClient: (_, _params: AnswerParams) => {},
    /** I/O, provided by the runtime: answers api.hints with this node's pending hints. */
    answerHints: (_, _params: { replyTo: string; to: string; reqId: string }) => {},
    /** I/O, provided by the runtime: copies this node's store into a backup directory, then answers api.backup. */
    takeBackup: (_, _params: { replyTo: string; to: string; reqId: string; dir: string }) => {},
    // Counted by the runtime: internal answers that arrived after their request was over.
    dropLate: () => {},
    /** I/O, provided by the runtime: keeps the cluster state in the store's meta (read at start). */
    saveClusterState: (_, _params: { cluster: ClusterState }) => {},
    /**
     * Provided by the runtime: this node has left the cluster; the process stops cleanly (one that
     * left, handOver, once it holds nothing it no longer replicates and no hint).
     */
    exitNode: (_, _params: { reason: string; handOver: boolean }) => {},
    /** I/O, provided by the runtime: reads this node's replica state of a key and answers the client (api.local.get.ok). */
    readLocal: (_, _params: ReturnType<typeof localReadEvent>) => {},
    // setup() cannot type an action that enqueues its sibling actions, hence the casts below; the
    // functions themselves are checked against NodeArgs.
    // A client-driven read (api.local.get): this node's replica answers the client directly, with
    // no coordinator (localReadRoute says when this node may answer).
    // A client-driven read (api.local.get) the runtime did not answer at once: its route is an error
    // (NOT_OWNER, BAD_REQUEST), answered here; one this node may answer is read by the runtime.
    handleLocalRead: enqueueActions(({ enqueue, context, event }: NodeArgs) => {
      const req = event as ClientLocalReadEvent;
      const route = localReadRoute(context, req);
      if ('error' in route) enqueue({ type: 'answerClient', params: answerError(req, route.error) });
      else enqueue({ type: 'readLocal', params: localReadEvent(req, route.partition) });
    }) as never,
  },
}).createMachine({
  id: 'node',
  // Without a gossip input (machine tests), the ring alone stands for the membership.
  context: ({ input }) => ({ ...input, membership: input.gossip?.cluster ?? { members: {}, ring: { version: 0, by: '', ...input.ring } }, down: {} }),
  initial: 'serving',
  entry: [
    spawnChild('coordinator', {
      id: coordinatorActorId,
      input: ({ context }) => ({ nodeId: context.nodeId, coordinatorsMax: context.coordinatorsMax, requestTimeoutMs: context.requestTimeoutMs, readRepairWaitMs: context.readRepairWaitMs, fallbackWaitMs: context.fallbackWaitMs }),
    }),
    spawnChild('replica', {
      id: replicaActorId,
      input: ({ context }) => ({ siblingsMax: context.limits.siblingsMax, storedBytesMax: context.limits.keyStoredBytesMax, writesInFlightMax: context.writesInFlightMax }),
    }),
    spawnChild('gossip', { id: 'gossip', input: ({ context }) => context.gossip }),
    spawnChild('handoff', { id: 'handoff', input: ({ context }) => context.handoff }),
    spawnChild('antiEntropy', { id: 'antiEntropy', input: ({ context }) => context.antiEntropy }),
    spawnChild('transfer', { id: 'transfer', input: ({ context }) => context.transfer }),
  ],
  states: {
    serving: {
      on: {
        'gossip.tick': { actions: forwardTo('gossip') },
        'gossip.digest': { actions: forwardTo('gossip') },
        'gossip.digest.ok': { actions: forwardTo('gossip') },
        'gossip.claim': { actions: forwardTo('gossip') },
        'api.cluster': { actions: forwardTo('gossip') },
        // A leaving node may go once ownership transfer has handed everything over (the gossip
        // child holds the membership and decides).
        'transfer.idle': { actions: forwardTo('gossip') },
        'cluster.changed': {
          // Hinted handoff learns who has departed from it (their hints can never be delivered).
          actions: [assign({ membership: ({ event }) => event.cluster }), { type: 'saveClusterState', params: ({ event }) => ({ cluster: event.cluster }) }, forwardTo('handoff')],
        },
        'node.exit': { actions: { type: 'exitNode', params: ({ event }) => ({ reason: event.reason, handOver: event.handOver }) } },
        'handoff.tick': { actions: forwardTo('handoff') },
        'handoff.batch': { actions: forwardTo('handoff') },
        'handoff.batch.ok': { actions: forwardTo('handoff') },
        'transfer.tick': { actions: forwardTo('transfer') },
        'handoff.transfer': { actions: forwardTo('transfer') },
        'handoff.transfer.ok': { actions: forwardTo('transfer') },
        'handoff.transfer.busy': { actions: forwardTo('transfer') },
        'handoff.transfer.done': { actions: forwardTo('transfer') },
        'api.transfers': { actions: forwardTo('transfer') },
        'aae.tick': { actions: sendTo('antiEntropy', ({ context, event }) => ({ ...event, down: Object.keys(context.down) })) },
        'aae.tree': { actions: forwardTo('antiEntropy') },
        'aae.tree.ok': { actions: forwardTo('antiEntropy') },
        'aae.segment': { actions: forwardTo('antiEntropy') },
        'aae.segment.ok': { actions: forwardTo('antiEntropy') },
        'aae.put': { actions: forwardTo('antiEntropy') },
        'aae.put.ok': { actions: forwardTo('antiEntropy') },
        'aae.error': { actions: forwardTo('antiEntropy') },
        'aae.local.tree': { actions: forwardTo('antiEntropy') },
        'aae.local.entries': { actions: forwardTo('antiEntropy') },
        'aae.local.merged': { actions: forwardTo('antiEntropy') },
        'aae.local.failed': { actions: forwardTo('antiEntropy') },
        'api.aae': { actions: forwardTo('antiEntropy') },
        'api.hints': {
          actions: { type: 'answerHints', params: ({ event }) => ({ replyTo: event.replyTo, to: event.from, reqId: event.reqId }) },
        },
        'api.backup': {
          actions: { type: 'takeBackup', params: ({ event }) => ({ replyTo: event.replyTo, to: event.from, reqId: event.reqId, dir: event.dir }) },
        },
        // Client requests and replica answers go to the coordinator child in the runtime's batch of
        // the turn (actors/node-routes.ts directRoute): the node machine never takes them.
        'api.local.get': { actions: 'handleLocalRead' },
        'api.status': {
          actions: {
            type: 'answerClient',
            params: ({ context, event }) => ({
              replyTo: event.replyTo,
              to: event.from,
              reqId: event.reqId,
              kind: 'api.status.ok',
              body: statusOf(context),
            }),
          },
        },
        'member.down': {
          actions: [assign({ down: ({ context, event }) => ({ ...context.down, [event.nodeId]: true }) }), forwardTo('handoff'), forwardTo('transfer')],
        },
        'member.up': {
          actions: [
            assign({
              down: ({ context, event }) => {
                const { [event.nodeId]: _, ...rest } = context.down;
                return rest;
              },
            }),
            // A primary that is back gets its hints at once (Dynamo §4.6), and the transfers waiting for it start.
            forwardTo('handoff'),
            forwardTo('transfer'),
          ],
        },
        // Ownership changed: route by the new ring at once. The children that act on ownership take
        // the same event (ownership transfer, the replicated partitions in anti-entropy).
        'ring.changed': {
          actions: [assign({ ring: ({ event }) => event.ring }), forwardTo('handoff'), forwardTo('antiEntropy'), forwardTo('transfer')],
        },
        'xstate.done.actor.*': { actions: enqueueActions(({ enqueue, event }) => enqueue.stopChild(event.actorId)) },
      },
    },
  },
});

/**
 * What api.status answers: the members (those of the ring and those joining or leaving), their
 * liveness as this node sees it, their membership status, and what they own.
 */
export function statusOf(context: NodeContext): ApiStatusOk {
  const owned = new Map<string, number[]>();
  context.ring.owners.forEach((owner, p) => owned.set(owner, [...(owned.get(owner) ?? []), p]));
  const members = context.membership?.members ?? {};
  // Members that have left (exiting) or were removed are listed apart: everything that asks each
  // member in turn (aae, hints, transfers, inspect, bench) must not wait for them.
  const departed = departedOf(context.membership);
  const ids = new Set([...owned.keys(), ...Object.keys(members).filter((id) => !departed.includes(id))]);
  return {
    cluster: context.cluster,
    partitions: context.ring.q,
    n: context.quorumDefault.n,
    nodeId: context.nodeId,
    ringVersion: context.membership?.ring.version ?? 0,
    startedAt: context.gossip?.incarnation,
    members: [...ids].sort().map((nodeId) => ({
      nodeId,
      state: context.down[nodeId] ? 'down' : 'up',
      status: members[nodeId]?.status ?? 'valid',
      staged: members[nodeId]?.staged ?? null,
      partitions: owned.get(nodeId) ?? [],
    })),
    departed: departed.map((nodeId) => ({ nodeId, status: members[nodeId]!.status })),
  };
}
