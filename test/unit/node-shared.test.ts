// What the node's roles share (src/runtime/node-shared.ts): fresh stats, an action wrapper that
// counts and logs a failure instead of letting it crash an actor, and the ring as the node holds it.
import { describe, expect, it } from 'vitest';
import { initialState, ringOf } from '../../src/core/cluster-state.js';
import { createNodeShared, newNodeStats, ringNow, safeAction } from '../../src/runtime/node-shared.js';
import { identityOf, recorder, recordingLog } from '../support/role-ports.js';

describe('node-shared', () => {
  it('starts with no actor, not stopping, zeroed stats, and a deliver that takes events nowhere', () => {
    const shared = createNodeShared(identityOf('n1'), recordingLog());
    expect(shared.nodeId).toBe('n1');
    expect(shared.root).toBeUndefined();
    expect(shared.stopping).toBe(false);
    expect(shared.stats).toEqual(newNodeStats());
    expect(() => shared.deliver({ type: 'handoff.tick' })).not.toThrow();
  });

  it('safeAction passes its arguments through, and counts and logs a throw by the action name', () => {
    const log = recordingLog();
    const shared = createNodeShared(identityOf('n1'), log);
    const seen: unknown[] = [];
    const ok = safeAction(shared, 'fine', (a: number, b: string) => void seen.push(a, b));
    const bad = safeAction(shared, 'broken', () => {
      throw new Error('boom');
    });
    ok(1, 'x');
    expect(() => bad()).not.toThrow();
    bad();
    expect(seen).toEqual([1, 'x']);
    expect(shared.stats.actionFailures).toBe(2);
    expect(log.lines.map((l) => [l.level, l.msg, l.fields?.action])).toEqual([
      ['error', 'action failed', 'broken'],
      ['error', 'action failed', 'broken'],
    ]);
  });

  it('ringNow is the node actor ring once it runs, the initial one before', () => {
    const shared = createNodeShared(identityOf('n1'), recordingLog());
    const initial = ringOf(initialState(['n1'], 8));
    const later = ringOf(initialState(['n1', 'n2'], 8));
    expect(ringNow(shared, initial)).toBe(initial);
    shared.root = recorder(() => ({ context: { ring: later } }));
    expect(ringNow(shared, initial)).toBe(later);
  });
});
