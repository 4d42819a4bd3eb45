/**
 * Gossip: membership liveness and failure detection (Dynamo §4.8, §4.8.3). Every round the node
 * advances its own heartbeat and exchanges its view with one peer chosen by a seeded PRNG
 * (push-pull: gossip.digest, answered by gossip.digest.ok). Newer heartbeats are arrivals for a
 * phi-accrual failure detector (src/core/phi.ts); each round it judges every member.
 *
 * Takes: gossip.tick {now}, gossip.digest, gossip.digest.ok. Sends: gossip.digest to one peer per
 * round, gossip.digest.ok to each digest; member.up / member.down to the node (tellNode).
 *
 * Invariants: views merge by taking the newer heartbeat per member, so all nodes converge on the same
 * heartbeats whatever the order of exchanges; only a node advances its own heartbeat; a member goes
 * down only on the detector's verdict and up only on a newer heartbeat.
 */
import { enqueueActions, setup } from 'xstate';
import { type Heartbeats, type Liveness, type LivenessChange, judge, receiveHeartbeats } from '../src/core/membership.js';
import type { PhiOptions } from '../src/core/phi.js';
import { splitmix32 } from '../src/core/prng.js';
import type { GossipEvent } from './gossip.events.js';
import type { SendParams } from './replica.machine.js';

export interface GossipInput {
  nodeId: string;
  /** Every member of the cluster, this node included. */
  members: string[];
  /** This life of the node: larger than any earlier one (the runtime uses its start time). */
  incarnation: number;
  /** Seeds the choice of gossip peers. */
  seed: number;
  phiThreshold: number;
  phi: PhiOptions;
}

export interface GossipContext extends GossipInput, Liveness {
  rng: number;
  round: number;
}

export const phiThresholdDefault = 8;
export const gossipRoundMsDefault = 1000;
export const phiDefaults: PhiOptions = { intervalsMax: 100, firstIntervalMs: 1000, acceptablePauseMs: 1000, minStdDeviationMs: 500 };

function ownHeartbeats(ctx: GossipContext): Heartbeats {
  return { ...ctx.heartbeats, [ctx.nodeId]: [ctx.incarnation, ctx.round] };
}

export const gossipMachine = setup({
  types: {
    context: {} as GossipContext,
    events: {} as GossipEvent,
    input: {} as GossipInput,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    sendAll: (_, _params: SendParams[]) => {},
    // Provided by the runtime: hands a liveness change to the node actor (its parent). A named
    // action rather than sendParent, so the machine runs on its own in transition() tests too.
    tellNode: (_, _params: { type: 'member.up' | 'member.down'; nodeId: string }) => {},
  },
}).createMachine({
  id: 'gossip',
  context: ({ input }) => ({
    ...input,
    heartbeats: { [input.nodeId]: [input.incarnation, 0] },
    windows: {},
    down: {},
    rng: input.seed >>> 0,
    round: 0,
  }),
  // Announce this life to every member at once: a restarted node is taken back as up within one
  // message delay instead of after a few gossip rounds.
  entry: {
    type: 'sendAll',
    params: ({ context }) =>
      context.members
        .filter((m) => m !== context.nodeId)
        .map((to) => ({ to, kind: 'gossip.digest', reqId: '0', body: { heartbeats: ownHeartbeats(context) } })),
  },
  initial: 'gossiping',
  states: {
    gossiping: {
      on: {
        'gossip.tick': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const round = context.round + 1;
            const rng = (context.rng + 0x9e3779b9) >>> 0;
            const peers = context.members.filter((m) => m !== context.nodeId);
            const verdict = judge(context, context.members, context.nodeId, event.now, context.phiThreshold, context.phi);
            const next = { ...verdict.liveness, round, rng };
            enqueue.assign(next);
            notify(enqueue, verdict.changes);
            if (peers.length === 0) return;
            const peer = peers[splitmix32(rng) % peers.length]!;
            enqueue({
              type: 'send',
              params: { to: peer, kind: 'gossip.digest', reqId: String(round), body: { heartbeats: ownHeartbeats({ ...context, round }) } },
            });
          }),
        },
        'gossip.digest': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const merged = receiveHeartbeats(context, context.nodeId, event.body.heartbeats, event.now, context.phi);
            enqueue.assign(merged.liveness);
            notify(enqueue, merged.changes);
            enqueue({
              type: 'send',
              params: { to: event.from, kind: 'gossip.digest.ok', reqId: event.reqId, body: { heartbeats: ownHeartbeats({ ...context, ...merged.liveness }) } },
            });
          }),
        },
        'gossip.digest.ok': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const merged = receiveHeartbeats(context, context.nodeId, event.body.heartbeats, event.now, context.phi);
            enqueue.assign(merged.liveness);
            notify(enqueue, merged.changes);
          }),
        },
      },
    },
  },
});

function notify(enqueue: (action: { type: 'tellNode'; params: { type: 'member.up' | 'member.down'; nodeId: string } }) => void, changes: LivenessChange[]): void {
  for (const c of changes) enqueue({ type: 'tellNode', params: { type: c.state === 'up' ? 'member.up' : 'member.down', nodeId: c.nodeId } });
}
