// How a node that left ends (src/runtime/exit-io.ts), alone on the simulator's clock: `exited`
// resolves only once nothing is left to hand over, and never before a gossip round has passed.
import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { createExitIo } from '../../src/runtime/exit-io.js';
import { recordingLog } from '../support/role-ports.js';

function setup(roundMs: number) {
  const clock = new SimClock();
  const log = recordingLog();
  let left: string | undefined = 'objects of partition 3';
  const io = createExitIo({ clock, log, roundMs, leftToHandOver: () => left });
  let reason: string | undefined;
  void io.exited.then((r) => (reason = r));
  return { clock, log, io, setLeft: (l: string | undefined) => (left = l), reason: () => reason };
}

describe('exit-io', () => {
  it('waits a round, then as long as something is left to hand over, and exits with the reason', async () => {
    const s = setup(500);
    s.io.exitAfterHandOver('left the cluster', true);
    await s.clock.runUntil(499);
    expect(s.reason()).toBeUndefined();
    await s.clock.runUntil(1400);
    expect(s.reason()).toBeUndefined();
    expect(s.log.lines.map((l) => l.fields?.left)).toEqual(['objects of partition 3', 'objects of partition 3']);
    s.setLeft(undefined);
    await s.clock.runUntil(1500);
    expect(s.reason()).toBe('left the cluster');
  });

  it('without hand-over, exits after the wait (at least 200 ms, whatever the round) regardless of what is held', async () => {
    const s = setup(0);
    s.io.exitAfterHandOver('removed', false);
    await s.clock.runUntil(199);
    expect(s.reason()).toBeUndefined();
    await s.clock.runUntil(200);
    expect(s.reason()).toBe('removed');
  });

  it('`now` looks at once, without the wait: a node that left in an earlier life', async () => {
    const s = setup(500);
    s.setLeft(undefined);
    s.io.exitAfterHandOver('it left in an earlier life', true, true);
    await Promise.resolve();
    expect(s.reason()).toBe('it left in an earlier life');
  });
});
