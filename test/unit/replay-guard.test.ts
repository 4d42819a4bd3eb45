import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { idsRemembered, ReplayGuard, replaySendersMax } from '../../src/core/replay-guard.js';

const windowMs = 30_000;
const t0 = 1_000_000;

describe('the replay guard', () => {
  it('takes each (sender, counter) once, in any order within the window it remembers', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('aaaaaaaa', 'bbbbbbbb', 'cccccccc'), fc.integer({ min: 1, max: 3000 })), { maxLength: 400 }), (ids) => {
        const guard = new ReplayGuard(t0, windowMs);
        const seen = new Set<string>();
        for (const [sender, counter] of ids) {
          const verdict = guard.admit(sender, counter, t0 + 1, t0 + 2);
          const id = `${sender}/${counter}`;
          // Counters all lie within idsRemembered of each other: the answer is exact.
          expect(verdict).toBe(seen.has(id) ? 'replayed' : 'fresh');
          seen.add(id);
        }
      }),
    );
  });

  it('refuses what lies too far below the highest counter to tell, and forgets the bits of skipped counters', () => {
    const guard = new ReplayGuard(t0, windowMs);
    expect(guard.admit('s', 5, t0, t0)).toBe('fresh');
    expect(guard.admit('s', 5 + idsRemembered, t0, t0)).toBe('fresh');
    expect(guard.admit('s', 5, t0, t0)).toBe('replayed');
    expect(guard.admit('s', 6, t0, t0)).toBe('fresh');
    expect(guard.admit('s', 6, t0, t0)).toBe('replayed');
    // A jump of less than the window clears the skipped counters' bits (they held counters a window below).
    expect(guard.admit('s', 5 + 2 * idsRemembered - 10, t0, t0)).toBe('fresh');
    expect(guard.admit('s', 6 + idsRemembered, t0, t0)).toBe('fresh');
  });

  it('refuses whatever was sealed before it started: a restarted node cannot know what it took', () => {
    const guard = new ReplayGuard(t0, windowMs);
    expect(guard.admit('s', 1, t0 - 1, t0)).toBe('before-start');
    expect(guard.admit('s', 1, t0, t0)).toBe('fresh');
  });

  it('holds at most replaySendersMax senders, forgetting those whose seals are all stale', () => {
    const guard = new ReplayGuard(t0, windowMs);
    for (let i = 0; i < replaySendersMax; i++) expect(guard.admit(`s${i}`, 1, t0, t0)).toBe('fresh');
    expect(guard.admit('late', 1, t0, t0 + 1)).toBe('full');
    expect(guard.size).toBe(replaySendersMax);
    // Once every remembered seal is past the window, the senders are forgotten and new ones taken.
    expect(guard.admit('late', 1, t0 + windowMs + 1, t0 + windowMs + 1)).toBe('fresh');
    expect(guard.size).toBe(1);
  });
});
