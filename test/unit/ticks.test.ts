// The node's rounds (src/runtime/ticks.ts), alone on the simulator's clock: each gossip round ticks
// gossip, handoff and transfer with the time; anti-entropy has its own interval; 0 turns a round off.
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { createTicks } from '../../src/runtime/ticks.js';

function setup(roundMs: number, aaeIntervalMs: number) {
  const clock = new SimClock();
  const events: string[] = [];
  const deliver = (e: NodeEvent) => void events.push(`${clock.now()} ${e.type}${'now' in e ? ` now=${e.now}` : ''}`);
  return { clock, events, ticks: createTicks({ clock, deliver, roundMs, aaeIntervalMs }) };
}

describe('ticks', () => {
  it('ticks gossip, handoff and transfer every round with the time, and anti-entropy on its own interval, until stopped', async () => {
    const s = setup(100, 250);
    s.ticks.start();
    await s.clock.runUntil(99);
    expect(s.events).toEqual([]);
    await s.clock.runUntil(250);
    expect(s.events).toEqual([
      '100 gossip.tick now=100',
      '100 handoff.tick',
      '100 transfer.tick now=100',
      '200 gossip.tick now=200',
      '200 handoff.tick',
      '200 transfer.tick now=200',
      '250 aae.tick',
    ]);
    s.ticks.stop();
    await s.clock.runUntil(2000);
    expect(s.events).toHaveLength(7);
    expect(s.clock.pending()).toBe(0);
  });

  it('sets no timer for a round of 0 ms (gossip off, anti-entropy off)', async () => {
    const s = setup(0, 0);
    s.ticks.start();
    expect(s.clock.pending()).toBe(0);
    await s.clock.runUntil(1000);
    expect(s.events).toEqual([]);
  });
});
