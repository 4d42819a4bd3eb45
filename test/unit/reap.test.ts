// The tombstone reaping rule (src/core/reap.ts) and its messages' validation, as pure functions.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type DvvSet, update } from '../../src/core/dvv.js';
import { GraceWatch, keyVerdict, type MemberAnswer, passBlocked, type ReapView, restoreProblem } from '../../src/core/reap.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { checkReapBody } from '../../src/protocol/validation.js';

const value = new TextEncoder().encode('v');
const written: DvvSet = update([], [], 'n1/a', value);
const tombstone: DvvSet = update(written, [['n1/a', 1]], 'n2/b', null);
const view: ReapView = { ringVersion: 3, staged: false, moving: false, members: ['n1', 'n2', 'n3', 'n4'], down: new Set() };
const primaries = ['n1', 'n2', 'n3'];
const asked = ['n2', 'n3', 'n4'];

function answers(over: Partial<Record<string, Partial<MemberAnswer> & { state?: DvvSet | null; hinted?: boolean }>> = {}): Map<string, MemberAnswer> {
  const out = new Map<string, MemberAnswer>();
  for (const m of asked) {
    const o = over[m] ?? {};
    const state = o.state !== undefined ? o.state : primaries.includes(m) ? tombstone : null;
    out.set(m, { ringVersion: o.ringVersion ?? 3, staged: o.staged ?? false, moving: o.moving ?? false, keys: [{ state, hinted: o.hinted ?? false }] });
  }
  return out;
}

describe('keyVerdict', () => {
  it('reaps only a tombstone every primary holds the same and nothing else holds', () => {
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers(), view)).toBeNull();
  });

  it('waits for each condition', () => {
    expect(keyVerdict(written, false, 0, primaries, asked, answers(), view)).toBe('not-equal');
    expect(keyVerdict(tombstone, true, 0, primaries, asked, answers(), view)).toBe('hinted');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n3: { state: written } }), view)).toBe('not-equal');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n3: { state: null } }), view)).toBe('not-equal');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n4: { state: written } }), view)).toBe('copy-elsewhere');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n4: { state: tombstone } }), view)).toBe('copy-elsewhere');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n4: { hinted: true } }), view)).toBe('hinted');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n2: { ringVersion: 4 } }), view)).toBe('ring-version');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n2: { staged: true } }), view)).toBe('staged-change');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, answers({ n4: { moving: true } }), view)).toBe('transfer');
    const missing = answers();
    missing.delete('n4');
    expect(keyVerdict(tombstone, false, 0, primaries, asked, missing, view)).toBe('no-answer');
  });

  it('a newer write on any primary always blocks the reap (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('n2', 'n3'), fc.constantFrom('n1/a', 'n2/b', 'n3/c'), (primary, id) => {
        const newer = update(tombstone, [], id, value);
        return keyVerdict(tombstone, false, 0, primaries, asked, answers({ [primary]: { state: newer } }), view) === 'not-equal';
      }),
    );
  });

  it('a pass is blocked by a staged change, a transfer, or a member judged down', () => {
    expect(passBlocked(view)).toBeNull();
    expect(passBlocked({ ...view, staged: true })).toBe('staged-change');
    expect(passBlocked({ ...view, moving: true })).toBe('transfer');
    expect(passBlocked({ ...view, down: new Set(['n4']) })).toBe('member-down');
  });
});

describe('GraceWatch', () => {
  it('reaps only after the grace period of unbroken agreement on the same tombstone', () => {
    const w = new GraceWatch(10);
    expect(w.observe('k', tombstone, true, 1000, 500)).toBe(false);
    expect(w.observe('k', tombstone, true, 1400, 500)).toBe(false);
    expect(w.observe('k', tombstone, true, 1500, 500)).toBe(true);
    // Broken agreement starts the clock again.
    expect(w.observe('k', tombstone, false, 1600, 500)).toBe(false);
    expect(w.observe('k', tombstone, true, 1700, 500)).toBe(false);
    expect(w.observe('k', tombstone, true, 2100, 500)).toBe(false);
    expect(w.observe('k', tombstone, true, 2200, 500)).toBe(true);
    // Another tombstone (a second delete) starts it again too.
    const second = update(tombstone, [['n1/a', 1], ['n2/b', 1]], 'n3/c', null);
    expect(w.observe('k', second, true, 2300, 500)).toBe(false);
    expect(w.observe('k', second, true, 2800, 500)).toBe(true);
  });

  it('with no grace period reaps at the first agreement; watches at most its maximum', () => {
    const w = new GraceWatch(1);
    expect(w.observe('a', tombstone, true, 0, 0)).toBe(true);
    const full = new GraceWatch(1);
    expect(full.observe('a', tombstone, true, 0, 100)).toBe(false);
    expect(full.observe('b', tombstone, true, 0, 100)).toBe(false);
    expect(full.observe('b', tombstone, true, 1000, 100)).toBe(false);
    expect(full.size).toBe(1);
  });
});

describe('restoreProblem', () => {
  it('takes a backup younger than the grace period and refuses an older one, saying why and what to do', () => {
    expect(restoreProblem(1000, 5000, 10_000)).toBeNull();
    expect(restoreProblem(1000, 11_000, 10_000)).toBeNull();
    expect(restoreProblem(1000, 11_001, 10_000)).toMatch(/longer than the tombstone grace period.*empty data directory.*--restore-older-than-grace/);
  });
});

describe('checkReapBody', () => {
  const key = new TextEncoder().encode('k');
  it('takes well-formed messages', () => {
    expect(checkReapBody('reap.check', { ring: 1, items: [[0, key]] }, 4, defaultLimits)).toBe(true);
    expect(checkReapBody('reap.check.ok', { ring: 1, staged: false, moving: false, states: [tombstone, null], hinted: [false, true] }, 4, defaultLimits)).toBe(true);
    expect(checkReapBody('reap.drop', { items: [[3, key, tombstone]] }, 4, defaultLimits)).toBe(true);
    expect(checkReapBody('reap.drop.ok', { dropped: 2 }, 4, defaultLimits)).toBe(true);
  });

  it('drops malformed ones', () => {
    expect(checkReapBody('reap.check', { ring: 1, items: [[4, key]] }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.check', { ring: 1, items: [[0, new Uint8Array(0)]] }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.check', { ring: 1, items: Array.from({ length: 1025 }, () => [0, key]) }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.check.ok', { ring: 1, staged: false, moving: false, states: [null], hinted: [] }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.check.ok', { ring: 1, staged: false, states: [null], hinted: [false] }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.drop', { items: [[0, key, 'not a state']] }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.drop.ok', { dropped: -1 }, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.unknown', {}, 4, defaultLimits)).toBe(false);
    expect(checkReapBody('reap.check', null, 4, defaultLimits)).toBe(false);
  });
});
