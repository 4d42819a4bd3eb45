/**
 * The node's rounds (DESIGN.md §2): time enters the machines only as event data, stamped here from
 * the Clock port. Each gossip round also ticks handoff and ownership transfer; anti-entropy has its
 * own interval, and a tick starts a round of exchanges unless the last is still running.
 */
import type { NodeEvent } from '../../actors/node.events.js';
import type { Clock } from '../ports/clock.js';

export interface Ticks {
  /** Sets the first timers (a round of 0 ms: that tick never runs). */
  start(): void;
  stop(): void;
}

export function createTicks(deps: { clock: Clock; deliver: (event: NodeEvent) => void; roundMs: number; aaeIntervalMs: number }): Ticks {
  const { clock, deliver, roundMs, aaeIntervalMs } = deps;
  let tickHandle: unknown;
  const tick = () => {
    deliver({ type: 'gossip.tick', now: clock.now() });
    deliver({ type: 'handoff.tick' });
    deliver({ type: 'transfer.tick', now: clock.now() });
    tickHandle = clock.setTimeout(tick, roundMs);
  };
  let aaeTickHandle: unknown;
  const aaeTick = () => {
    deliver({ type: 'aae.tick' });
    aaeTickHandle = clock.setTimeout(aaeTick, aaeIntervalMs);
  };
  return {
    start() {
      if (roundMs > 0) tickHandle = clock.setTimeout(tick, roundMs);
      if (aaeIntervalMs > 0) aaeTickHandle = clock.setTimeout(aaeTick, aaeIntervalMs);
    },
    stop() {
      if (tickHandle !== undefined) clock.clearTimeout(tickHandle);
      if (aaeTickHandle !== undefined) clock.clearTimeout(aaeTickHandle);
    },
  };
}
