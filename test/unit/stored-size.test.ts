import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/protocol/codec.js';
import { applyWrite } from '../../src/core/replica-write.js';
import { storedBytesBound } from '../../src/core/stored-size.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { keyStoredBytesBound } from '../../src/protocol/limits.js';

const dvvSet = fc
  .uniqueArray(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 8 })
  .chain((ids) =>
    fc.tuple(...ids.sort().map((id) => fc.tuple(fc.constant(id), fc.integer({ min: 0, max: 2 ** 48 }), fc.array(fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }), { maxLength: 4 })))),
  ) as fc.Arbitrary<DvvSet>;

describe("a key's stored size", () => {
  it('is never under the encoded size, and over it by a few dozen bytes per entry and sibling at most', () => {
    fc.assert(
      fc.property(dvvSet, (set) => {
        const encoded = encode(set).length;
        const bound = storedBytesBound(set);
        const parts = set.length + set.reduce((n, [, , v]) => n + v.length, 0);
        expect(bound).toBeGreaterThanOrEqual(encoded);
        expect(bound - encoded).toBeLessThanOrEqual(5 + parts * 24 + set.reduce((n, [id]) => n + 2 * id.length, 0));
      }),
    );
  });

  it('refuses a put that would take a key past the bound (TOO_LARGE, nothing to store); one that shrinks it is taken', () => {
    const value = (n: number) => new Uint8Array(n);
    const coordinate = (context: [string, number][], v: Uint8Array) => ({ kind: 'coordinate' as const, context, value: v, siblingsMax: 100, storedBytesMax: 10_000 });
    let state: DvvSet | undefined;
    for (let i = 0; i < 3; i++) {
      const out = applyWrite(state, coordinate([], value(3000)), 'n1/a');
      expect(out.result.ok).toBe(true);
      state = out.next!;
    }
    const refused = applyWrite(state, coordinate([], value(3000)), 'n1/a');
    expect(refused.next).toBeNull();
    expect(refused.result).toMatchObject({ ok: false, code: 'TOO_LARGE' });
    // A key already beyond the bound (stored by an older build, or under a larger bound): a blind put
    // that grows it is refused, a put with its context that merges the siblings into one is taken.
    const big = applyWrite(state, { ...coordinate([], value(9000)), storedBytesMax: 1e9 }, 'n1/a').next!;
    expect(storedBytesBound(big)).toBeGreaterThan(10_000);
    expect(applyWrite(big, coordinate([], value(10)), 'n1/a').result).toMatchObject({ ok: false, code: 'TOO_LARGE' });
    const merged = applyWrite(big, coordinate([['n1/a', 4]], value(10)), 'n1/a');
    expect(merged.result.ok).toBe(true);
    expect(storedBytesBound(merged.next!)).toBeLessThan(100);
  });

  it('is at most half the max_payload the NATS server announces', () => {
    expect(keyStoredBytesBound(4 << 20, 8 << 20)).toBe(4 << 20);
    expect(keyStoredBytesBound(4 << 20, 1 << 20)).toBe(512 << 10);
    expect(keyStoredBytesBound(4 << 20, undefined)).toBe(4 << 20);
  });
});
