// The first half of a graceful stop (src/runtime/drain.ts), alone on the simulator's clock: the node
// leaves the queue group, says it is stopping, and waits for its coordinator's requests, at most
// the time it is given.
import { describe, expect, it } from 'vitest';
import { coordinatorActorId } from '../../actors/node-routes.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { coordinating, createDrain } from '../../src/runtime/drain.js';
import { createNodeShared } from '../../src/runtime/node-shared.js';
import { identityOf, recorder, recordingLog } from '../support/role-ports.js';

function setup() {
  const clock = new SimClock();
  const shared = createNodeShared(identityOf('n1'), recordingLog());
  const requests = new Map<string, unknown>([['a', {}], ['b', {}]]);
  const coordinator = recorder(() => ({ context: { requests } }));
  shared.root = recorder(() => ({ children: { [coordinatorActorId]: coordinator } }));
  const steps: string[] = [];
  const transport = {
    leaveQueueGroup: async () => {
      steps.push(`left the queue group, stopping=${shared.stopping}`);
    },
  };
  const drain = createDrain({ shared, transport, clock });
  return { clock, shared, requests, drain, steps };
}

describe('drain', () => {
  it('stops taking new work, leaves the queue group, and waits until the coordinator holds nothing', async () => {
    const s = setup();
    expect(coordinating(s.shared)).toBe(2);
    let result: { inFlight: number; waitedMs: number } | undefined;
    void s.drain(1000).then((r) => (result = r));
    expect(s.shared.stopping).toBe(true);
    await s.clock.runUntil(35);
    expect(result).toBeUndefined();
    expect(s.steps).toEqual(['left the queue group, stopping=true']);
    s.requests.clear();
    await s.clock.runUntil(100);
    expect(result).toEqual({ inFlight: 0, waitedMs: 40 });
  });

  it('gives up after waitMsMax and says what was still in flight', async () => {
    const s = setup();
    let result: { inFlight: number; waitedMs: number } | undefined;
    void s.drain(50).then((r) => (result = r));
    await s.clock.runUntil(200);
    expect(result).toEqual({ inFlight: 2, waitedMs: 50 });
  });

  it('counts nothing in flight on a node without a coordinator (not started)', () => {
    const s = setup();
    s.shared.root = undefined;
    expect(coordinating(s.shared)).toBe(0);
  });
});
