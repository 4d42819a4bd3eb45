/**
 * Events of the coordinator: what one request's core takes (the replicas' answers and its own
 * wake-ups), and the one event the node's long-lived coordinator actor takes, a turn's batch of them
 * together with the client requests of that turn.
 */
import type { DvvSet } from '../src/core/dvv.js';
import type { ClientReadEvent, ClientWriteEvent } from './client.events.js';
import type { RouteView } from './route-view.js';

/** What one request takes (actors/coordinator.core.ts `step`); each names its request by reqId. */
export type CoreEvent =
  | { type: 'replica.coordinate.ok'; from: string; reqId: string; body: { state: DvvSet } }
  /**
   * From this node's own replica, in the same turn as the replica.coordinate it answers: the new dot
   * is made and its state is in the store's group commit, not yet committed. The other replicas are
   * sent that state at once; the local ack is the replica.coordinate.ok that follows the commit.
   */
  | { type: 'replica.coordinate.made'; from: string; reqId: string; body: { state: DvvSet } }
  | { type: 'replica.put.ok'; from: string; reqId: string; body: Record<string, never> }
  | { type: 'replica.get.ok'; from: string; reqId: string; body: { state: DvvSet | null } }
  | { type: 'replica.error'; from: string; reqId: string; body: { code: string; message: string } }
  /** The request's deadline passed (a wake-up the core asked for with setTimer). */
  | { type: 'deadline'; reqId: string }
  /** The short wait for late read answers, before read repair, is over. */
  | { type: 'repairWaitOver'; reqId: string }
  /** A target had its time to answer: spares are asked in place of the silent ones. */
  | { type: 'fallbackWait'; reqId: string };

/** The request's own wake-ups (timers it set), as against answers from replicas. */
export const wakeUpKinds: ReadonlySet<string> = new Set<CoreEvent['type']>(['deadline', 'repairWaitOver', 'fallbackWait']);

/** One item of a coordinator batch: a client request to route and maybe coordinate, or a core event. */
export type CoordinatorItem = ClientWriteEvent | ClientReadEvent | CoreEvent;

export type CoordinatorEvent = {
  /** Everything for the coordinator that arrived in one event-loop turn, in arrival order. */
  type: 'coordinator.batch';
  items: CoordinatorItem[];
  /** The time of the batch on the node's Clock (the actor reads no clock): deadlines count from it. */
  now: number;
  /** What routing a client request needs, as the node knows it now (ring, liveness, defaults). */
  view: RouteView;
  /** True while an inspection session is open: the batch's effects then include what `ringkv trace` shows. */
  traced: boolean;
};
