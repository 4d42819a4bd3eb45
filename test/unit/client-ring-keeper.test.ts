/**
 * The client's ring keeper (src/client/ring-keeper.ts): it pins the first cluster id it hears (or
 * the one it was given), never takes a ring from a status of another id, shares one fetch among
 * concurrent callers, and keeps its ring when a fetch fails.
 */
import { describe, expect, it } from 'vitest';
import { statusOf, type NodeContext } from '../../actors/node.machine.js';
import type { ClientStats } from '../../src/client/client-options.js';
import { RingKeeper } from '../../src/client/ring-keeper.js';
import { claimInitial, type Ring } from '../../src/core/ring.js';
import type { ApiStatusOk } from '../../src/protocol/messages.js';

function statusFor(ring: Ring, clusterId: string | undefined): ApiStatusOk {
  const context = { cluster: 'c', ring, quorumDefault: { n: 3, r: 2, w: 2 }, nodeId: ring.owners[0]!, down: {} } as unknown as NodeContext;
  const status = statusOf(context);
  return clusterId === undefined ? { ...status, clusterId: undefined } : { ...status, clusterId };
}

const stats = (): ClientStats => ({ clientDrivenReads: 0, readFallbacks: 0, hedges: 0, noResponders: 0, lostRequests: 0, foreignAnswers: 0, ringRefreshes: 0 });

function keeper(answers: (() => ApiStatusOk)[], clusterId?: string) {
  const s = stats();
  let calls = 0;
  const k = new RingKeeper({
    clientDriven: true,
    clusterId,
    refreshMs: 60_000,
    timeoutMs: 200,
    fetchStatus: async () => {
      const answer = answers[Math.min(calls, answers.length - 1)]!;
      calls++;
      return answer();
    },
    isClosed: () => false,
    stats: s,
  });
  return { k, s, calls: () => calls };
}

const ring3 = claimInitial(['n1', 'n2', 'n3'], 8);

describe('RingKeeper', () => {
  it('pins the first cluster id and refuses a status of another id afterwards', async () => {
    const { k, s } = keeper([() => statusFor(ring3, 'id-a'), () => statusFor(claimInitial(['x1', 'x2', 'x3'], 8), 'id-b')]);
    try {
      expect(k.clusterId).toBeUndefined();
      const view = await k.ring();
      expect(k.clusterId).toBe('id-a');
      expect([...view!.members].sort()).toEqual(['n1', 'n2', 'n3']);
      await k.refresh();
      // The stray's ring was not taken.
      expect(k.view).toBe(view);
      expect(s.foreignAnswers).toBe(1);
      expect(k.accepts(statusFor(ring3, 'id-a'))).toBe(true);
      expect(k.accepts(statusFor(ring3, undefined))).toBe(false);
      expect(s.foreignAnswers).toBe(2);
    } finally {
      k.stop();
    }
  });

  it('with a given id, waits past answers of another cluster for one of its own (within the deadline)', async () => {
    const { k, s, calls } = keeper([() => statusFor(ring3, 'stray'), () => statusFor(ring3, 'stray'), () => statusFor(ring3, 'mine')], 'mine');
    try {
      expect(k.clusterIdGiven).toBe(true);
      const view = await k.ring();
      expect(view).toBeDefined();
      expect(calls()).toBe(3);
      expect(s.foreignAnswers).toBe(2);
      expect(s.ringRefreshes).toBe(1);
    } finally {
      k.stop();
    }
  });

  it('with a given id and only strays answering, has no ring once the deadline has passed', async () => {
    const { k } = keeper([() => statusFor(ring3, 'stray')], 'mine');
    try {
      expect(await k.ring()).toBeUndefined();
    } finally {
      k.stop();
    }
  });

  it('shares one fetch among concurrent callers, and keeps its ring when a fetch fails', async () => {
    let fail = false;
    const { k, calls } = keeper([
      () => {
        if (fail) throw new Error('no node answered');
        return statusFor(ring3, 'id-a');
      },
    ]);
    try {
      const [a, b] = await Promise.all([k.refresh(), k.refresh()]);
      expect(a).toBe(b);
      expect(calls()).toBe(1);
      const view = k.view;
      expect(view).toBeDefined();
      fail = true;
      await k.refresh();
      expect(k.view).toBe(view);
    } finally {
      k.stop();
    }
  });
});
