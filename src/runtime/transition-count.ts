/**
 * Counts every event any actor of a node's system takes (costs.transitions, src/protocol/cost-counters.ts).
 *
 * xstate routes every event through its system's relay, whoever sends it: `actor.send` from the
 * runtime, `sendTo` and `sendParent` between machines, delayed events when their timer fires, and a
 * child's done or error event to its parent. Counting there sees them all in one place, at the cost
 * of one increment, where an inspection observer would make xstate build and spread an object for
 * every event, action and microstep (src/runtime/inspect-tap.ts says why the tap subscribes only
 * while someone follows). `_relay` is xstate's own (v5); where it is missing the count stays 0,
 * which the request-budget test would catch.
 */
import type { AnyActorRef } from 'xstate';
import { costs } from '../protocol/cost-counters.js';

type Relay = (source: unknown, target: unknown, event: unknown) => void;

export function countTransitions(actor: AnyActorRef): void {
  const system = actor.system as unknown as { _relay?: Relay };
  const relay = system._relay;
  if (typeof relay !== 'function') return;
  system._relay = (source, target, event) => {
    costs.transitions++;
    relay(source, target, event);
  };
}
