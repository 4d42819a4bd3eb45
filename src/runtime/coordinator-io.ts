/**
 * The coordinator's I/O (actors/coordinator.machine.ts, DESIGN.md §3): its input batched per turn,
 * and its outputs performed. The coordinator takes one event per turn: what arrives for it in one
 * turn (one NATS read, a client's batch, the local replica's answers) waits here and goes as one
 * coordinator.batch from a microtask, after the callbacks that delivered it and before the next
 * turn's I/O. A microtask, not setImmediate: the simulator drains microtasks between timers.
 */
import type { AnyActorRef } from 'xstate';
import { coordinatorActorId } from '../../actors/node-routes.js';
import type { NodeContext } from '../../actors/node.machine.js';
import type { CoordinatorOutput } from '../../actors/coordinator.machine.js';
import type { CoordinatorEvent, CoordinatorItem } from '../../actors/coordinator.events.js';
import type { Clock } from '../ports/clock.js';
import type { InspectTap } from './inspect-tap.js';
import type { NodeShared } from './node-shared.js';
import type { Outbound } from './outbound-io.js';

/** Items in one coordinator.batch; a turn that brings more sends several (each item is small). */
export const coordinatorBatchItemsMax = 4096;

export interface CoordinatorIo {
  /** Queues an item for the coordinator's batch of this turn. */
  toCoordinator(item: CoordinatorItem): void;
  /** Performs what one coordinator step decided (the machine's `perform` action). */
  perform(outputs: CoordinatorOutput[]): void;
  /** Requests that still have wake-ups set (the timers of requests not yet done). */
  timersPending(): number;
}

export interface CoordinatorIoDeps {
  shared: NodeShared;
  clock: Clock;
  /** The inspection tap: whether someone follows, and where route and step traces go. */
  tap: Pick<InspectTap, 'watching' | 'coordinatorTrace'>;
  out: Outbound;
}

export function createCoordinatorIo(deps: CoordinatorIoDeps): CoordinatorIo {
  const { shared, clock, tap } = deps;
  const { send, answerClient, forward } = deps.out;
  const { stats, log } = shared;

  let coordinatorQueue: CoordinatorItem[] = [];
  let coordinatorFlushQueued = false;
  const toCoordinator = (item: CoordinatorItem) => {
    coordinatorQueue.push(item);
    if (coordinatorFlushQueued) return;
    coordinatorFlushQueued = true;
    queueMicrotask(flushCoordinator);
  };
  const flushCoordinator = () => {
    coordinatorFlushQueued = false;
    const items = coordinatorQueue;
    coordinatorQueue = [];
    const snapshot = shared.root?.getSnapshot() as { context: NodeContext; children: Record<string, AnyActorRef | undefined> } | undefined;
    const coordinator = snapshot?.children[coordinatorActorId];
    if (!snapshot || !coordinator) return;
    const traced = tap.watching;
    for (let i = 0; i < items.length; i += coordinatorBatchItemsMax) {
      const batch: CoordinatorEvent = { type: 'coordinator.batch', items: items.slice(i, i + coordinatorBatchItemsMax), now: clock.now(), view: snapshot.context, traced };
      coordinator.send(batch);
    }
  };

  // The wake-ups the coordinator's requests asked for (setTimer), by request id, until it is done.
  const coordinatorTimers = new Map<string, unknown[]>();
  const perform = (outputs: CoordinatorOutput[]) => {
    for (const o of outputs) {
      try {
        performOne(o);
      } catch (err) {
        stats.actionFailures++;
        log.error('action failed', { action: `coordinator ${o.type}`, err });
      }
    }
  };
  const performOne = (o: CoordinatorOutput) => {
    switch (o.type) {
      case 'send':
        return send(o.params);
      case 'sendAll':
        return o.params.forEach(send);
      case 'answerClient':
        return answerClient(o.params);
      case 'forward':
        return forward({ to: o.to, replyTo: o.req.replyTo, bytes: o.req.bytes });
      case 'setTimer': {
        const handle = clock.setTimeout(() => toCoordinator(o.event), Math.max(0, o.at - clock.now()));
        const handles = coordinatorTimers.get(o.event.reqId);
        if (handles) handles.push(handle);
        else coordinatorTimers.set(o.event.reqId, [handle]);
        return;
      }
      case 'done': {
        for (const handle of coordinatorTimers.get(o.id) ?? []) clock.clearTimeout(handle);
        coordinatorTimers.delete(o.id);
        return;
      }
      case 'late':
        stats.lateAnswers += o.count;
        return;
      case 'failed':
        stats.actionFailures++;
        log.error('coordinator failed on one item of a batch', { item: o.item, reqId: o.reqId, err: o.error });
        return;
      case 'trace':
      case 'routed':
        return tap.coordinatorTrace(o);
    }
  };

  return { toCoordinator, perform, timersPending: () => coordinatorTimers.size };
}
