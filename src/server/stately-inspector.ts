/**
 * Streams a node's actors to the Stately inspector (`ringkv node --stately-inspect ws://host:port`),
 * so that xstate users see ringkv's machines, their states and the events between them in the tool
 * they already know. Built on @statelyai/inspect's WebSocket inspector (createWebSocketInspector):
 * the node connects out to the given URL and sends one JSON message per inspection event
 * (@xstate.actor, @xstate.event, @xstate.snapshot), reconnecting every 5 s while it cannot connect.
 *
 * Off by default and free when off: node-process.ts imports this module (and with it
 * @statelyai/inspect) dynamically, only when the flag is given, and the node's actors are created
 * without an `inspect` observer otherwise.
 *
 * What is sent is what the dashboard shows, never user data: contexts and events go through the
 * inspection tap's summaries (no key or value bytes, bounded depth and size), not the library's
 * default serialization of whole snapshots. At most eventsPerSecondMax events a second are sent;
 * the rest are dropped and counted, so that a slow inspector cannot make the node buffer without
 * bound (the library itself keeps at most maxDeferredEvents while it is not connected).
 */
import type { AnyActorRef, InspectionEvent, Observer } from 'xstate';
import { createWebSocketInspector } from '@statelyai/inspect';
import type { Log } from '../ports/log.js';
import { summarize, summarizeEvent } from '../runtime/inspect-tap.js';

/** Inspection events sent per second at most; beyond it they are dropped and counted. */
export const statelyEventsPerSecondMax = 2_000;
/** Events held while the inspector is not connected (oldest dropped first). */
export const statelyDeferredEventsMax = 1_000;

export interface StatelyInspector {
  /** The observer to give createActor (through createNode's `inspect` port). */
  inspect: Observer<InspectionEvent>;
  stats: { sent: number; dropped: number };
  stop(): void;
}

function snapshotOf(ref: AnyActorRef, snap?: unknown): { status?: 'active' | 'done' | 'error' | 'stopped'; value?: unknown; context?: unknown } {
  const s = (snap ?? ref.getSnapshot()) as { status?: 'active' | 'done' | 'error' | 'stopped'; value?: unknown; context?: unknown } | undefined;
  if (!s || typeof s !== 'object') return { status: 'active' };
  return { status: s.status, value: s.value, context: summarize(s.context) };
}

export function startStatelyInspector(url: string, log: Log): StatelyInspector {
  const inspector = createWebSocketInspector({ url, maxDeferredEvents: statelyDeferredEventsMax });
  const stats = { sent: 0, dropped: 0 };
  let windowStart = Date.now();
  let inWindow = 0;
  const admit = (): boolean => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      if (stats.dropped > 0 && inWindow >= statelyEventsPerSecondMax) log.warn('stately inspector: events dropped by the rate limit', { dropped: stats.dropped });
      windowStart = now;
      inWindow = 0;
    }
    if (inWindow >= statelyEventsPerSecondMax) {
      stats.dropped++;
      return false;
    }
    inWindow++;
    stats.sent++;
    return true;
  };

  const inspect: Observer<InspectionEvent> = {
    next: (e) => {
      // xstate calls observers inside the actor's own processing: nothing may throw out of here.
      try {
        if (!admit()) return;
        const ref = e.actorRef as AnyActorRef;
        switch (e.type) {
          case '@xstate.actor':
            // No `info`: the library reads the parent from the ref (an info.parentId would be lost:
            // 0.7.2 parses `info?.parentId ?? typeof ref === 'string' ? …` as a ternary on both).
            return inspector.actor(ref, snapshotOf(ref));
          case '@xstate.event':
            return inspector.event(ref, summarizeEvent(e.event) as { type: string }, e.sourceRef ? { source: e.sourceRef } : undefined);
          case '@xstate.snapshot':
            return inspector.snapshot(ref, snapshotOf(ref, e.snapshot), { event: summarizeEvent(e.event) as { type: string } });
          default:
            return;
        }
      } catch (err) {
        log.warn('stately inspector: an event could not be sent', { err: String(err) });
      }
    },
  };
  log.info('streaming actors to the Stately inspector', { url });
  return { inspect, stats, stop: () => inspector.stop() };
}
