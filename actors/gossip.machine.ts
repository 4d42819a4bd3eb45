/**
 * Gossip: membership, the ring and failure detection (Dynamo §4.8, §4.8.3, §4.9). Every round the
 * node advances its own heartbeat and exchanges its view with one peer chosen by a seeded PRNG
 * (push-pull: gossip.digest, answered by gossip.digest.ok). A view is the heartbeats and the cluster
 * state (src/core/cluster-state.ts: members, committed ring, staged plan), sent whole: at 17 members
 * and Q=64 it is about 1.3 KB. Newer heartbeats are arrivals for a phi-accrual failure detector
 * (src/core/phi.ts); each round it judges every live member of the cluster state.
 *
 * It also holds the admin side of membership: api.cluster (join, leave, force-remove, plan, commit,
 * clear; Riak's staged changes). Every change goes through one member, the claimant
 * (src/core/claimant.ts): a node that is not the claimant forwards the request to it (gossip.claim,
 * with its view), and the claimant applies it to its cluster state, answers the client, and sends
 * the new state at once to every member instead of waiting for the rounds to spread it. A commit
 * waits, a few rounds at most, until the claimant's cluster state has converged (every member it
 * does not judge down reported the same state); then NOT_READY. plan is answered where it is asked.
 *
 * Takes: gossip.tick {now}, gossip.digest, gossip.digest.ok, gossip.claim, api.cluster,
 * transfer.idle. Sends: gossip.digest to one peer per round (to every member after a local change),
 * gossip.digest.ok to each digest, gossip.claim to the claimant, the api.cluster answer; to the node
 * (tellNode): member.up / member.down,
 * cluster.changed {cluster} (to be saved), ring.changed {ring} when a newer committed ring arrives,
 * node.exit when this node has left (handed everything over) or was removed.
 *
 * Invariants: views merge by taking the newer register (heartbeat per member, member entry, ring),
 * so all nodes converge on the same state whatever the order of exchanges; only a node advances its
 * own heartbeat; a member goes down only on the detector's verdict and up only on a newer heartbeat;
 * only commit makes a new ring; only the claimant writes staged changes and commits (the one
 * exception: staging the removal of a claimant judged down); a leaving node exits only once it is
 * out of the committed ring, ownership transfer has reported transfer.idle for that ring, and the
 * members it leaves behind acknowledged first that ring and then its exiting mark (every member it
 * does not judge down, and a majority of the ring's owners: src/core/departure.ts). While it waits
 * it sends its state each round to each member that has not acknowledged.
 *
 * Liveness (issue 27; checked by the simulator, src/sim/membership-liveness.ts): once the network
 * heals and every member is up, within a bounded number of gossip rounds every committed ring is on
 * every live member, every leaver has handed over and exited, and every exited node is out of every
 * member's ring.
 */
import { enqueueActions, setup } from 'xstate';
import {
  type AdminResult,
  type ClusterState,
  clearPlan,
  commitPlan,
  hasRing,
  liveMembers,
  markExiting,
  mergeStates,
  planOf,
  ringOf,
  sameState,
  stageJoin,
  stageLeave,
  stagedChanges,
} from '../src/core/cluster-state.js';
import { claimantOf, stateFingerprint, unconvergedMembers } from '../src/core/claimant.js';
import { type PeerReport, departureWaitsFor, reportOf } from '../src/core/departure.js';
import { type Heartbeats, type Liveness, type LivenessChange, judge, receiveHeartbeats } from '../src/core/membership.js';
import type { PhiOptions } from '../src/core/phi.js';
import { splitmix32 } from '../src/core/prng.js';
import type { Ring } from '../src/core/ring.js';
import type { ErrorBody } from '../src/protocol/errors.js';
import type { ApiClusterOk, ClusterClaimRequest } from '../src/protocol/messages.js';
import type { AnswerParams } from './coordinator.machine.js';
import type { GossipEvent } from './gossip.events.js';
import type { SendParams } from './replica.machine.js';
import { operatorDefaults } from '../src/core/defaults.js';

export interface GossipInput {
  nodeId: string;
  /** The cluster state this node starts from (stored, or formed from --members, or learned from a seed). */
  cluster: ClusterState;
  /** Replicas per key: claim keeps N distinct owners in every preference list. */
  n: number;
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
  /** Ownership transfer reported nothing left to hand over for the current ring. */
  transferIdle: boolean;
  /** node.exit was sent (once). */
  exiting: boolean;
  /** The fingerprint (src/core/claimant.ts) of the cluster state each peer last sent: convergence. */
  reported: Record<string, string>;
  /** Commits this node, the claimant, holds until its cluster state converges (at most pendingCommitsMax). */
  pendingCommits: PendingCommit[];
  /**
   * What each peer last reported of its cluster state (its ring, and this node's status in it): a
   * leaving node goes only once the members it leaves behind acknowledged each step (src/core/departure.ts).
   */
  peerReports: Record<string, PeerReport>;
  /**
   * When (gossip.tick's `now`) this node first saw itself leaving or exiting in this life, or null:
   * `ringkv status` shows how long a departure has been running.
   */
  leavingSince: number | null;
}

/** A commit waiting for convergence, answered by round `untilRound` at the latest. */
export interface PendingCommit extends ClusterClaimRequest {
  untilRound: number;
}

/** Gossip rounds a commit waits for the claimant's cluster state to converge before NOT_READY. */
export const commitWaitRounds = 5;
/** Commits held at once; more are refused with NOT_READY. */
export const pendingCommitsMax = 16;

export type TellNodeParams =
  | { type: 'member.up' | 'member.down'; nodeId: string }
  | { type: 'cluster.changed'; cluster: ClusterState }
  | { type: 'ring.changed'; ring: Ring }
  | { type: 'node.exit'; reason: string; handOver: boolean };

export const phiThresholdDefault = 8;
export const gossipRoundMsDefault: number = operatorDefaults.gossipRoundMs;
export const phiDefaults: PhiOptions = { intervalsMax: 100, firstIntervalMs: 1000, acceptablePauseMs: 1000, minStdDeviationMs: 500 };

function ownHeartbeats(ctx: Pick<GossipContext, 'heartbeats' | 'nodeId' | 'incarnation' | 'round'>): Heartbeats {
  return { ...ctx.heartbeats, [ctx.nodeId]: [ctx.incarnation, ctx.round] };
}

function viewOf(ctx: GossipContext, cluster: ClusterState = ctx.cluster) {
  return { heartbeats: ownHeartbeats(ctx), cluster };
}

type Enqueue = (action: { type: string; params?: unknown }) => void;

interface Args {
  context: GossipContext;
  event: GossipEvent;
  enqueue: Enqueue & { assign(update: Partial<GossipContext>): void };
}

/**
 * Takes a new cluster state: tells the node (to save it), tells it the newer ring, and lets a node
 * that has left go. Returns the context fields to assign.
 */
function adopt(enqueue: Enqueue, context: GossipContext, next: ClusterState): Partial<GossipContext> {
  if (sameState(context.cluster, next)) return {};
  const update: Partial<GossipContext> = { cluster: next };
  enqueue({ type: 'tellNode', params: { type: 'cluster.changed', cluster: next } });
  const ringMoved = next.ring.version !== context.cluster.ring.version || next.ring.by !== context.cluster.ring.by;
  if (ringMoved && hasRing(next)) {
    enqueue({ type: 'tellNode', params: { type: 'ring.changed', ring: ringOf(next) } });
    // The transfer's report was for the old ring.
    update.transferIdle = false;
  }
  return update;
}

/**
 * Where a leaving node is in its departure (src/core/departure.ts): 'ring' while the members it leaves
 * behind have not all acknowledged the ring without it, 'exiting' once it has marked itself exiting
 * and waits for them to acknowledge that; undefined when it is not departing (or has exited).
 */
export function departureStep(context: Pick<GossipContext, 'cluster' | 'nodeId' | 'transferIdle' | 'exiting'>): 'ring' | 'exiting' | undefined {
  if (context.exiting) return undefined;
  const me = context.cluster.members[context.nodeId];
  if (me?.status === 'exiting') return 'exiting';
  const outOfRing = hasRing(context.cluster) && !context.cluster.ring.owners.includes(context.nodeId);
  if (me?.status === 'leaving' && outOfRing && context.transferIdle) return 'ring';
  return undefined;
}

/** The members a departing node still waits for (empty: it may take its next step). */
export function departureWaiting(context: GossipContext): string[] {
  const step = departureStep(context);
  return step === undefined ? [] : departureWaitsFor(context.cluster, context.nodeId, step, context.peerReports, context.down);
}

/**
 * A removed node exits. A leaving node that is out of the ring and has handed everything over goes
 * in two acknowledged steps (src/core/departure.ts): once the members it leaves behind hold the
 * ring without it, it marks itself exiting; once they hold that mark, it exits. Never before: a
 * leaver that went with the only copy of the ring that took it out (it committed its own leave as
 * the claimant while cut off) left the others waiting for it for good (issue 27, seed 521).
 */
function maybeExit(enqueue: Enqueue, context: GossipContext): Partial<GossipContext> {
  if (context.exiting) return {};
  const me = context.cluster.members[context.nodeId];
  if (me?.status === 'removed') {
    enqueue({ type: 'tellNode', params: { type: 'node.exit', reason: 'removed from the cluster (force-remove)', handOver: false } });
    return { exiting: true };
  }
  const step = departureStep(context);
  if (step === undefined || departureWaiting(context).length > 0) return {};
  if (step === 'ring') {
    const cluster = markExiting(context.cluster, context.nodeId);
    const update = adopt(enqueue, context, cluster);
    // Everyone learns at once that this node is going; their answers are the acknowledgements.
    enqueue({ type: 'sendAll', params: digestsTo(context, liveMembers(context.cluster), cluster) });
    // Alone with nobody to wait for (every other member acknowledged already): go on at once.
    const next = { ...context, ...update };
    return departureWaiting(next).length === 0 ? { ...update, ...maybeExit(enqueue, next) } : update;
  }
  enqueue({ type: 'tellNode', params: { type: 'node.exit', reason: 'left the cluster: every partition handed over', handOver: true } });
  return { exiting: true };
}

function digestsTo(context: GossipContext, members: readonly string[], cluster: ClusterState): SendParams[] {
  return members
    .filter((m) => m !== context.nodeId)
    .map((to) => ({ to, kind: 'gossip.digest', reqId: String(context.round), body: viewOf(context, cluster) }));
}

function mergeView({ context, event, enqueue }: Args): GossipContext {
  const e = event as Extract<GossipEvent, { type: 'gossip.digest' | 'gossip.digest.ok' }>;
  const merged = receiveHeartbeats(context, context.nodeId, e.body.heartbeats, e.now, context.phi);
  enqueue.assign(merged.liveness);
  notify(enqueue, merged.changes);
  let next: GossipContext = { ...context, ...merged.liveness };
  if (e.body.cluster) {
    next = {
      ...next,
      reported: { ...next.reported, [e.from]: stateFingerprint(e.body.cluster) },
      peerReports: { ...next.peerReports, [e.from]: reportOf(e.body.cluster, next.nodeId) },
    };
    next = { ...next, ...adopt(enqueue, next, mergeStates(next.cluster, e.body.cluster)) };
    next = { ...next, ...maybeExit(enqueue, next) };
    next = { ...next, ...settlePending(enqueue, next) };
    enqueue.assign({
      cluster: next.cluster,
      transferIdle: next.transferIdle,
      exiting: next.exiting,
      reported: next.reported,
      peerReports: next.peerReports,
      pendingCommits: next.pendingCommits,
    });
  }
  return next;
}

function adminError(code: ErrorBody['code'], message: string): ErrorBody {
  return { code, message };
}

/** Applies an api.cluster request to the state: the new state, and the answer's body or error. */
function applyAdmin(context: GossipContext, e: ClusterClaimRequest): { state?: ClusterState; body?: ApiClusterOk; error?: ErrorBody } {
  const self = context.nodeId;
  const state = context.cluster;
  const answer = (s: ClusterState, plan?: ApiClusterOk['plan']): ApiClusterOk => ({
    op: e.op,
    nodeId: self,
    ...(e.node !== undefined ? { node: e.node } : {}),
    changes: stagedChanges(s),
    ringVersion: s.ring.version,
    ...(plan ? { plan } : {}),
  });
  if (e.op === 'plan') {
    const planned = planOf(state, context.n);
    return planned.ok ? { body: answer(state, planned.plan) } : { error: adminError(planned.code, planned.message) };
  }
  let result: AdminResult;
  let plan: ApiClusterOk['plan'];
  switch (e.op) {
    case 'join':
      result = stageJoin(state, e.node ?? self, self);
      break;
    case 'leave':
      result = stageLeave(state, e.node ?? self, 'leave', self, context.n);
      break;
    case 'force-remove':
      if (e.node === undefined) return { error: adminError('BAD_REQUEST', 'force-remove needs the node to remove') };
      result = stageLeave(state, e.node, 'remove', self, context.n);
      break;
    case 'commit': {
      const planned = planOf(state, context.n);
      if (planned.ok) plan = planned.plan;
      result = commitPlan(state, self, context.n);
      break;
    }
    case 'clear':
      result = clearPlan(state, self);
      break;
  }
  if (!result.ok) return { error: adminError(result.code, result.message) };
  return { state: result.state, body: answer(result.state, plan) };
}

function replyOf(req: ClusterClaimRequest) {
  return { replyTo: req.replyTo, to: req.client, reqId: req.reqId };
}

function refuse(enqueue: Enqueue, req: ClusterClaimRequest, code: ErrorBody['code'], message: string): Partial<GossipContext> {
  enqueue({ type: 'answerClient', params: { ...replyOf(req), kind: 'error', body: adminError(code, message) } });
  return {};
}

/** Applies a request here and answers it: the new state is adopted and sent to every member at once. */
function applyAndAnswer(enqueue: Enqueue, context: GossipContext, req: ClusterClaimRequest): Partial<GossipContext> {
  const { state, body, error } = applyAdmin(context, req);
  if (error) return refuse(enqueue, req, error.code, error.message);
  let update: Partial<GossipContext> = {};
  if (state) {
    update = adopt(enqueue, context, state);
    // Everyone hears of the change now, the members it drops included.
    const audience = [...new Set([...liveMembers(context.cluster), ...liveMembers(state)])];
    enqueue({ type: 'sendAll', params: digestsTo(context, audience, state) });
    update = { ...update, ...maybeExit(enqueue, { ...context, ...update }) };
  }
  enqueue({ type: 'answerClient', params: { ...replyOf(req), kind: 'api.cluster.ok', body } });
  return update;
}

/**
 * An admin request, asked here by a client (forwarded false) or forwarded by a member that names
 * this node the claimant (true): applied here if this node is the claimant, else forwarded to it.
 * Returns the context fields to assign.
 */
function handleAdmin(enqueue: Enqueue, context: GossipContext, asked: ClusterClaimRequest, forwarded: boolean): Partial<GossipContext> {
  const self = context.nodeId;
  // A leave or join without a node means the node asked, whoever applies it.
  const req: ClusterClaimRequest = asked.node === undefined && (asked.op === 'leave' || asked.op === 'join') ? { ...asked, node: self } : asked;
  // A plan changes nothing: any node shows the one its state holds.
  if (req.op === 'plan') return applyAndAnswer(enqueue, context, req);
  if (!hasRing(context.cluster)) return refuse(enqueue, req, 'NOT_READY', `node ${self} has not learned the ring yet`);
  const claimant = claimantOf(context.cluster);
  if (claimant === undefined) return refuse(enqueue, req, 'NOT_READY', 'the cluster state names no claimant: no valid member of the ring is left that is not staged for removal');
  if (claimant !== self) {
    // A claimant that is gone for good would block every change: its removal may be staged anywhere,
    // and once that is known the next member is the claimant.
    const removesDownClaimant = req.op === 'force-remove' && req.node === claimant && context.down[claimant] === true;
    if (removesDownClaimant) return applyAndAnswer(enqueue, context, req);
    if (forwarded) {
      return refuse(enqueue, req, 'NOT_READY', `node ${self} is not the claimant by its cluster state (${claimant} is): the cluster state has not converged yet, try again`);
    }
    if (context.down[claimant]) {
      return refuse(enqueue, req, 'NOT_READY', `the claimant ${claimant} is judged down: wait for it, or stage its removal (\`ringkv cluster force-remove ${claimant}\`) if it is gone for good`);
    }
    enqueue({ type: 'send', params: { to: claimant, kind: 'gossip.claim', reqId: req.reqId, body: { ...viewOf(context), request: req } } });
    return {};
  }
  // Only a commit that would commit something waits; a refusal (NO_CHANGES, ...) comes at once.
  if (req.op === 'commit' && planOf(context.cluster, context.n).ok) {
    const waiting = unconvergedMembers(context.cluster, self, context.reported, context.down);
    if (waiting.length > 0) {
      if (context.pendingCommits.length >= pendingCommitsMax) {
        return refuse(enqueue, req, 'NOT_READY', `the cluster state has not converged (${waiting.join(', ')} report another) and ${pendingCommitsMax} commits already wait`);
      }
      // Ask the members that disagree for their state now, rather than wait for the rounds.
      enqueue({ type: 'sendAll', params: digestsTo(context, waiting, context.cluster) });
      return { pendingCommits: [...context.pendingCommits, { ...req, untilRound: context.round + commitWaitRounds }] };
    }
  }
  return applyAndAnswer(enqueue, context, req);
}

/** Applies the waiting commits once the state has converged; refuses them if this node is no longer the claimant. */
function settlePending(enqueue: Enqueue, context: GossipContext): Partial<GossipContext> {
  if (context.pendingCommits.length === 0) return {};
  const claimant = claimantOf(context.cluster);
  if (claimant !== context.nodeId) {
    for (const req of context.pendingCommits) refuse(enqueue, req, 'NOT_READY', `node ${context.nodeId} is no longer the claimant (${claimant ?? 'none'} is): try again`);
    return { pendingCommits: [] };
  }
  if (unconvergedMembers(context.cluster, context.nodeId, context.reported, context.down).length > 0) return {};
  let next: GossipContext = { ...context, pendingCommits: [] };
  for (const req of context.pendingCommits) next = { ...next, ...applyAndAnswer(enqueue, next, req) };
  return { ...next };
}

/** Refuses the waiting commits whose time is up. */
function expirePending(enqueue: Enqueue, context: GossipContext): Partial<GossipContext> {
  const late = context.pendingCommits.filter((c) => c.untilRound <= context.round);
  if (late.length === 0) return {};
  const waiting = unconvergedMembers(context.cluster, context.nodeId, context.reported, context.down);
  for (const req of late) {
    refuse(enqueue, req, 'NOT_READY', `the cluster state has not converged within ${commitWaitRounds} gossip rounds: ${waiting.join(', ')} report another; try again`);
  }
  return { pendingCommits: context.pendingCommits.filter((c) => c.untilRound > context.round) };
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
    answerClient: (_, _params: AnswerParams) => {},
    // Provided by the runtime: hands a change to the node actor (its parent). A named action rather
    // than sendParent, so the machine runs on its own in transition() tests too.
    tellNode: (_, _params: TellNodeParams) => {},
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
    transferIdle: false,
    exiting: false,
    reported: {},
    pendingCommits: [],
    peerReports: {},
    leavingSince: null,
  }),
  // Announce this life (and this node's cluster state) to every member at once: a restarted node is
  // taken back as up within one message delay instead of after a few gossip rounds.
  entry: {
    type: 'sendAll',
    params: ({ context }) => digestsTo(context, liveMembers(context.cluster), context.cluster).map((d) => ({ ...d, reqId: '0' })),
  },
  initial: 'gossiping',
  states: {
    gossiping: {
      on: {
        'gossip.tick': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const round = context.round + 1;
            const rng = (context.rng + 0x9e3779b9) >>> 0;
            const members = liveMembers(context.cluster);
            const peers = members.filter((m) => m !== context.nodeId);
            const verdict = judge(context, members, context.nodeId, event.now, context.phiThreshold, context.phi);
            const myStatus = context.cluster.members[context.nodeId]?.status;
            const departing = myStatus === 'leaving' || myStatus === 'exiting';
            const leavingSince = departing ? (context.leavingSince ?? event.now) : null;
            const next = { ...verdict.liveness, round, rng, leavingSince };
            enqueue.assign(next);
            notify(enqueue as unknown as Enqueue, verdict.changes);
            // A member just judged down no longer holds a commit back; one whose time is up is refused.
            const now = { ...context, ...next };
            const settled = settlePending(enqueue as unknown as Enqueue, now);
            const expired = expirePending(enqueue as unknown as Enqueue, { ...now, ...settled });
            enqueue.assign({ ...settled, ...expired });
            // A departing node: a member just judged down no longer holds it back, and every member
            // that has not acknowledged its step hears its state again this round.
            const current = { ...now, ...settled, ...expired };
            const exit = maybeExit(enqueue as unknown as Enqueue, current);
            enqueue.assign(exit);
            const after = { ...current, ...exit };
            const waiting = departureWaiting(after).filter((m) => !after.down[m]);
            if (waiting.length > 0) enqueue({ type: 'sendAll', params: digestsTo({ ...after, round }, waiting, after.cluster) });
            if (peers.length === 0) return;
            const peer = peers[splitmix32(rng) % peers.length]!;
            enqueue({
              type: 'send',
              params: { to: peer, kind: 'gossip.digest', reqId: String(round), body: viewOf({ ...context, round }) },
            });
          }),
        },
        'gossip.digest': {
          actions: enqueueActions((args) => {
            const next = mergeView(args as unknown as Args);
            const e = args.event;
            args.enqueue({ type: 'send', params: { to: e.from, kind: 'gossip.digest.ok', reqId: e.reqId, body: viewOf(next) } });
          }),
        },
        'gossip.digest.ok': {
          actions: enqueueActions((args) => void mergeView(args as unknown as Args)),
        },
        'gossip.claim': {
          actions: enqueueActions((args) => {
            // The forwarder's view first: the claimant then knows what the node asked knew.
            const next = mergeView(args as unknown as Args);
            const e = args.event as Extract<GossipEvent, { type: 'gossip.claim' }>;
            args.enqueue.assign(handleAdmin(args.enqueue as unknown as Enqueue, next, e.body.request, true));
          }),
        },
        'api.cluster': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const req: ClusterClaimRequest = { op: event.op, replyTo: event.replyTo, client: event.from, reqId: event.reqId, ...(event.node !== undefined ? { node: event.node } : {}) };
            enqueue.assign(handleAdmin(enqueue as unknown as Enqueue, context, req, false));
          }),
        },
        'transfer.idle': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            // A report for another ring than the committed one (an old scan's) says nothing.
            if (!hasRing(context.cluster) || !sameOwners(event.ring, ringOf(context.cluster))) return;
            enqueue.assign({ transferIdle: true });
            const exit = maybeExit(enqueue as Enqueue, { ...context, transferIdle: true });
            enqueue.assign(exit);
          }),
        },
      },
    },
  },
});

function sameOwners(a: Ring, b: Ring): boolean {
  return a.q === b.q && a.owners.length === b.owners.length && a.owners.every((o, p) => o === b.owners[p]);
}

function notify(enqueue: Enqueue, changes: LivenessChange[]): void {
  for (const c of changes) enqueue({ type: 'tellNode', params: { type: c.state === 'up' ? 'member.up' : 'member.down', nodeId: c.nodeId } });
}
