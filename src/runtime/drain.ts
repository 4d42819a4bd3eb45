/**
 * The first half of a graceful stop (RunningNode.drain, DESIGN.md §4): the node leaves the api queue
 * group, sets `shared.stopping` (inbound-io.ts then refuses new puts, deletes and coordinated gets
 * with NOT_READY), and waits until the coordinator has answered what it holds, at most `waitMsMax`.
 */
import { coordinatorActorId } from '../../actors/node-routes.js';
import type { AnyActorRef } from 'xstate';
import type { Clock } from '../ports/clock.js';
import type { Transport } from '../ports/transport.js';
import type { NodeShared } from './node-shared.js';

/** How often drain() looks whether the coordinator still has requests in flight. */
export const drainPollMs = 10;

/** Requests the node's coordinator holds now (0 before the node has started). */
export function coordinating(shared: NodeShared): number {
  const c = (shared.root?.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children?.[coordinatorActorId];
  return (c?.getSnapshot() as { context?: { requests?: Map<string, unknown> } } | undefined)?.context?.requests?.size ?? 0;
}

export function createDrain(deps: { shared: NodeShared; transport: Pick<Transport, 'leaveQueueGroup'>; clock: Clock }) {
  const { shared, transport, clock } = deps;
  return async (waitMsMax: number): Promise<{ inFlight: number; waitedMs: number }> => {
    shared.stopping = true;
    const startedAt = clock.now();
    await transport.leaveQueueGroup?.();
    const pause = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(() => resolve(), ms));
    while (coordinating(shared) > 0 && clock.now() - startedAt < waitMsMax) await pause(drainPollMs);
    // Two more turns: the last answers leave with their turn's flush, and the last replica writes
    // (peers' requests) commit in their group commit and are acknowledged.
    await pause(0);
    await pause(0);
    return { inFlight: coordinating(shared), waitedMs: clock.now() - startedAt };
  };
}
