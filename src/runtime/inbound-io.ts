/**
 * Requests in (DESIGN.md §4): how messages and events reach the node's actors. The intake takes
 * every inbound message through the member gate and on to the current handler (the seed bootstrap
 * while the node still learns the cluster, then the router and the inspect server); `deliver` hands
 * a node event to the actor that takes it, by the request path's fast route where there is one.
 */
import type { NodeContext } from '../../actors/node.machine.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { directRoute } from '../../actors/node-routes.js';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { errorBody } from '../protocol/errors.js';
import type { SealKey } from '../protocol/seal.js';
import type { Clock } from '../ports/clock.js';
import type { Inbound } from '../ports/transport.js';
import { createMemberGate } from './member-gate.js';
import type { RequestObserver } from './node-api.js';
import type { NodeShared } from './node-shared.js';
import type { ReplicaIo } from './replica-io.js';

export interface Intake {
  /** The transport's handler: the member gate first, then the current handler. */
  admit(msg: Inbound): void;
  /** Where admitted messages go from now on. */
  setHandler(handler: (msg: Inbound) => void): void;
}

/** Members only: every message meets the gate before anything of it is decoded (member-gate.ts). */
export function createIntake(deps: { shared: NodeShared; seal: SealKey; cluster: string; clock: Clock }): Intake {
  const { shared, clock } = deps;
  const gate = createMemberGate({ key: deps.seal, clusterName: deps.cluster, now: () => clock.now(), log: shared.log, stats: shared.stats.gate });
  let dispatch: (msg: Inbound) => void = () => {};
  return {
    admit(msg: Inbound): void {
      const admitted = gate(msg);
      if (admitted !== undefined) dispatch(admitted);
    },
    setHandler(handler) {
      dispatch = handler;
    },
  };
}

export interface InboundDeps {
  shared: NodeShared;
  requests?: RequestObserver | undefined;
  /** The coordinator's batch for this turn (coordinator-io.ts). */
  toCoordinator: (item: CoordinatorItem) => void;
  /** The replica's batch for this turn, and the reads answered without a transition (replica-io.ts). */
  replica: Pick<ReplicaIo, 'enqueue' | 'readAndAnswer' | 'readAndReply'>;
  answerClient: (p: AnswerParams) => void;
}

/** Hands a node event to the actor that takes it: the request path's first step after the router. */
export function createDeliver(deps: InboundDeps): (event: NodeEvent) => void {
  const { shared, requests, toCoordinator, answerClient } = deps;
  const { enqueue, readAndAnswer, readAndReply } = deps.replica;
  const { nodeId } = shared;
  return (event: NodeEvent) => {
    if (requests && event.type.startsWith('api.')) {
      const e = event as { type: string; from: string; reqId: string };
      requests.received(e.type.slice('api.'.length), e.from, e.reqId);
    }
    const root = shared.root;
    if (!root) return;
    if (shared.stopping && (event.type === 'api.put' || event.type === 'api.del' || event.type === 'api.get')) {
      // Refused before anything is made: the client knows it was not applied and goes to the next
      // node at once (NOT_READY is not a definite error to the client), rather than to a
      // coordinator that might not live to answer it.
      const e = event as { from: string; reqId: string; replyTo: string };
      answerClient({ replyTo: e.replyTo, to: e.from, reqId: e.reqId, kind: 'error', body: errorBody('NOT_READY', `node ${nodeId} is stopping: nothing was applied, ask another node`) });
      return;
    }
    // The request path's fast route: the coordinator's and the replica's events go into their batch
    // for this turn, and reads are answered from the store, routed as actors/node-routes.ts says,
    // without a node transition.
    const direct = directRoute(root.getSnapshot().context as NodeContext, event);
    if (direct === undefined) root.send(event);
    else if ('coordinator' in direct) toCoordinator(direct.coordinator);
    else if ('replica' in direct) enqueue(direct.replica);
    else if ('read' in direct) readAndAnswer({ from: direct.read.from, reqId: direct.read.reqId, p: direct.read.body.p, key: direct.read.body.key });
    else readAndReply(direct.localRead);
  };
}
