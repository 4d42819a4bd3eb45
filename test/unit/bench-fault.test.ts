/**
 * The pure parts of `ringkv bench --fault`: the fault spec parser, the phase and gap computation,
 * and the durability rule of the write log.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { faultForMsDefault, formatFaultSpec, FaultSpecError, parseFaultSpec } from '../../src/bench/fault.js';
import { PhaseRecorder } from '../../src/bench/phases.js';
import { tagValue, WriteLog, writeIdOf } from '../../src/bench/write-log.js';

describe('fault spec', () => {
  it('reads kind, time and duration', () => {
    expect(parseFaultSpec('kill-node@10s')).toEqual({ kind: 'kill-node', atMs: 10_000, forMs: faultForMsDefault });
    expect(parseFaultSpec('pause-node@1.5s+500ms')).toEqual({ kind: 'pause-node', atMs: 1500, forMs: 500 });
    expect(parseFaultSpec(' kill-node@0+1m ')).toEqual({ kind: 'kill-node', atMs: 0, forMs: 60_000 });
    expect(parseFaultSpec('kill-node@250ms+2')).toEqual({ kind: 'kill-node', atMs: 250, forMs: 2000 });
  });

  it('refuses what it cannot run, with a BAD_REQUEST code', () => {
    for (const bad of ['', 'kill-node', 'kill@10s', 'kill-node@', 'kill-node@10x', 'kill-node@-1s', 'pause-node@10s+', 'pause-node@10s+0s', 'kill-node@10s+20s+1s', 'kill-node@61m']) {
      let caught: unknown;
      try {
        parseFaultSpec(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(FaultSpecError);
      expect((caught as FaultSpecError).code).toBe('BAD_REQUEST');
    }
  });

  it('formats what it parses, and parses what it formats', () => {
    fc.assert(
      fc.property(fc.constantFrom('kill-node', 'pause-node'), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 1, max: 3_600_000 }), (kind, atMs, forMs) => {
        const spec = { kind: kind as 'kill-node' | 'pause-node', atMs, forMs };
        expect(parseFaultSpec(formatFaultSpec(spec))).toEqual(spec);
      }),
    );
  });
});

describe('phases and gaps', () => {
  it('counts each operation in the phase it ran in; one in flight during the fault counts there', () => {
    const r = new PhaseRecorder(['read', 'update']);
    r.start(1000);
    r.record('read', 1000, 1010);
    r.record('update', 1500, 1600);
    r.faultApplied(2000);
    r.record('read', 1990, 2010); // in flight when the fault came
    r.record('update', 2100, 2200, { code: 'UNAVAILABLE' });
    r.recovered(4000);
    r.record('update', 1999, 7500, { code: 'TIMEOUT' }); // sent before, hung past the restart
    r.record('read', 4100, 4200);
    const rep = r.report(6000);
    expect(rep.phases.before.perOp.read).toMatchObject({ ok: 1, failed: 0 });
    expect(rep.phases.before.perOp.update).toMatchObject({ ok: 1, failed: 0 });
    expect(rep.phases.during.perOp.read).toMatchObject({ ok: 1, failed: 0 });
    expect(rep.phases.during.perOp.update).toMatchObject({ ok: 0, failed: 2, timedOut: 1, errorsByCode: { UNAVAILABLE: 1, TIMEOUT: 1 } });
    expect(rep.phases.after.perOp.read).toMatchObject({ ok: 1, failed: 0 });
    expect(rep.phases.before).toMatchObject({ fromMs: 0, toMs: 1000 });
    expect(rep.phases.during).toMatchObject({ fromMs: 1000, toMs: 3000 });
    expect(rep.phases.after).toMatchObject({ fromMs: 3000, toMs: 5000 });
    // Reads succeeded at 1010, 2010, 4200; the window ends at 6000.
    expect(rep.gaps.read).toEqual({ longestMs: 2190, fromMs: 1010, toMs: 3200 });
    // Updates succeeded only at 1600: the gap runs to the window's end.
    expect(rep.gaps.update).toEqual({ longestMs: 4400, fromMs: 600, toMs: 5000 });
    expect(rep.successesPerSecond.read).toEqual([1, 1, 0, 1, 0]);
  });

  it('the longest gap is the largest distance between consecutive successes, window edges included', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 200 }), fc.integer({ min: 0, max: 20_000 }), (offsets, tail) => {
        const ends = [...offsets].sort((a, b) => a - b);
        const endAt = (ends.at(-1) ?? 0) + tail;
        const r = new PhaseRecorder(['read']);
        r.start(0);
        for (const t of ends) r.record('read', Math.max(0, t - 5), t);
        const points = [0, ...ends, endAt];
        let longest = 0;
        for (let i = 1; i < points.length; i++) longest = Math.max(longest, points[i]! - points[i - 1]!);
        const gap = r.report(endAt).gaps.read!;
        expect(gap.longestMs).toBe(longest);
        expect(gap.toMs - gap.fromMs).toBe(longest);
        const ok = Object.values(r.report(endAt).phases).reduce((sum, p) => sum + p.perOp.read!.ok, 0);
        expect(ok).toBe(ends.length);
      }),
    );
  });

  it('failures do not close a gap', () => {
    const r = new PhaseRecorder(['update']);
    r.start(0);
    r.record('update', 0, 100);
    for (let t = 200; t < 3000; t += 100) r.record('update', t - 50, t, { code: 'UNAVAILABLE' });
    r.record('update', 2900, 3100);
    expect(r.report(3100).gaps.update?.longestMs).toBe(3000);
  });
});

describe('write log', () => {
  it('tags values with their write id', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (value, id) => {
        const tagged = tagValue(value, id);
        expect(tagged.length).toBe(Math.max(8, value.length));
        expect(writeIdOf(tagged)).toBe(id);
        expect(tagged.subarray(8)).toEqual(value.subarray(8));
      }),
    );
    expect(writeIdOf(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toBeUndefined();
  });

  it('an acknowledged write survives when read back, or when a write it did not precede replaced it', () => {
    let now = 0;
    const log = new WriteLog(() => now);
    const a = log.begin(); // starts at 0
    now = 10;
    log.acknowledged('k', a); // ends at 10
    now = 20;
    const b = log.begin(); // starts at 20, after a ended
    now = 30;
    log.acknowledged('k', b);
    const v = (id: number) => tagValue(new Uint8Array(16), id);
    expect(log.survived('k', [v(b)])).toBe(true);
    expect(log.survived('k', [v(a), v(b)])).toBe(true);
    // a ended before b started: it cannot have replaced b, so b is lost.
    expect(log.survived('k', [v(a)])).toBe(false);
    expect(log.survived('k', [])).toBe(false);
    expect(log.survived('k', [new Uint8Array(16)])).toBe(false);
    // c started before b ended (concurrent with it): last writer wins may keep c alone.
    now = 25;
    const c = log.begin();
    now = 40;
    log.acknowledged('k', c);
    // c started after b: c is now the last-started acknowledged write of k.
    expect(log.survived('k', [v(c)])).toBe(true);
    expect(log.survived('k', [v(b)])).toBe(true); // b ended at 30, after c started at 25
    // A write with an unknown outcome may land at any time, so it may have replaced any write.
    now = 50;
    const d = log.begin();
    log.unknownOutcome();
    expect(log.survived('k', [v(d)])).toBe(true);
    expect(log.survived('other', [])).toBe(true);
  });

  it('checks every key with an acknowledged write and names the lost ones', async () => {
    const log = new WriteLog();
    const store = new Map<string, Uint8Array[]>();
    for (let i = 0; i < 50; i++) {
      const key = `k${i}`;
      const id = log.begin();
      log.acknowledged(key, id);
      store.set(key, [tagValue(new Uint8Array(8), id)]);
    }
    store.set('k7', []);
    const result = await log.check(async (key) => {
      if (key === 'k9') throw new Error('unreachable');
      return store.get(key)!;
    });
    expect(result).toMatchObject({ keysChecked: 50, acknowledgedWrites: 50, unknownWrites: 0, lostKeys: 1, lostKeyNames: ['k7'], unreadKeys: 1 });
  });
});
