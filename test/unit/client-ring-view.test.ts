/**
 * The client's ring (src/client/ring-view.ts): built from an api.status answer exactly as the nodes
 * hold it (statusOf in actors/node.machine.ts), so the client routes every key as the nodes do; a
 * status that does not describe a whole ring is refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ringFromStatus, supersedes, type RingView } from '../../src/client/ring-view.js';
import { statusOf, type NodeContext } from '../../actors/node.machine.js';
import { claimInitial, partitionOf, preferenceList, type Ring } from '../../src/core/ring.js';
import type { ApiStatusOk } from '../../src/protocol/messages.js';

function statusFor(ring: Ring, down: string[] = [], n = 3): ApiStatusOk {
  const context = { cluster: 'c', ring, quorumDefault: { n, r: 2, w: 2 }, nodeId: ring.owners[0]!, down: Object.fromEntries(down.map((d) => [d, true])) } as unknown as NodeContext;
  return statusOf(context);
}

const nodeIds = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,7}$/), { minLength: 1, maxLength: 9 });
const partitionCounts = fc.constantFrom(1, 2, 8, 64, 256);

describe('ringFromStatus', () => {
  it('rebuilds the nodes\' ring from their status: same owners, same preference lists, same partition of every key', () => {
    fc.assert(
      fc.property(nodeIds, partitionCounts, fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { maxLength: 20 }), (nodes, q, keys) => {
        const ring = claimInitial(nodes, q);
        const view = ringFromStatus(statusFor(ring)) as RingView;
        expect(typeof view).toBe('object');
        expect(view.ring).toEqual(ring);
        for (const key of keys) {
          const p = partitionOf(key, view.ring.q);
          expect(preferenceList(view.ring, p, 3)).toEqual(preferenceList(ring, p, 3));
        }
      }),
    );
  });

  it('keeps N, the members, and the members the answering node judged down', () => {
    const view = ringFromStatus(statusFor(claimInitial(['n1', 'n2', 'n3'], 8), ['n2'], 5)) as RingView;
    expect(view.n).toBe(5);
    expect([...view.members].sort()).toEqual(['n1', 'n2', 'n3']);
    expect([...view.down]).toEqual(['n2']);
    expect(view.version).toBe(0);
  });

  it('takes the ring version when the status has one', () => {
    const status = { ...statusFor(claimInitial(['n1', 'n2'], 4)), ringVersion: 7 };
    expect((ringFromStatus(status) as RingView).version).toBe(7);
  });

  it('refuses a status that describes no whole ring', () => {
    const good = statusFor(claimInitial(['n1', 'n2'], 4));
    const bad: [string, ApiStatusOk][] = [
      ['partitions not a power of two', { ...good, partitions: 6 }],
      ['no members', { ...good, members: [] }],
      ['a partition without owner', { ...good, members: [{ nodeId: 'n1', state: 'up', partitions: [0, 2] }, { nodeId: 'n2', state: 'up', partitions: [1] }] }],
      ['a partition with two owners', { ...good, members: [{ nodeId: 'n1', state: 'up', partitions: [0, 1, 2] }, { nodeId: 'n2', state: 'up', partitions: [1, 3] }] }],
      ['a partition out of range', { ...good, members: [{ nodeId: 'n1', state: 'up', partitions: [0, 2, 9] }, { nodeId: 'n2', state: 'up', partitions: [1, 3] }] }],
      ['a bad N', { ...good, n: 0 }],
    ];
    for (const [what, status] of bad) expect(typeof ringFromStatus(status), what).toBe('string');
  });
});

describe('supersedes', () => {
  const view = (version?: number) => ({ ...(ringFromStatus(statusFor(claimInitial(['n1'], 1))) as RingView), version });
  it('never rolls back to an older ring version; without versions the latest answer wins', () => {
    expect(supersedes(view(3), undefined)).toBe(true);
    expect(supersedes(view(3), view(2))).toBe(true);
    expect(supersedes(view(3), view(3))).toBe(true);
    expect(supersedes(view(2), view(3))).toBe(false);
    expect(supersedes(view(), view())).toBe(true);
  });
});
