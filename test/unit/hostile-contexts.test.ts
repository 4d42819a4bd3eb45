/**
 * Issue 15's properties, over random and adversarial contexts (fast-check): three replicas of one
 * key, clients writing through any of them with an honest context (a read's), none, or a forged
 * one (made-up clock ids, counters far above what was issued, counters beyond counterMax, too many
 * ids), replicas syncing in any order, and peers sending poisoned versions. Whatever the clients
 * send: a context the API refuses (decodeContext) changes nothing; every acknowledged write stays
 * readable unless a later write's context, as the coordinator cut it to its stored state, covered
 * it; replicas converge; a key's history holds only clock ids the replicas issued, counters stay at
 * most counterMax, and the history stays within historyEntriesMax.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DvvSet, type VersionVector, clamp, emptyDvv, equal, join, values } from '../../src/core/dvv.js';
import { applySync, applyWrite, defaultVersionBounds } from '../../src/core/replica-write.js';
import { encode } from '../../src/protocol/codec.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { decodeContext } from '../../src/protocol/validation.js';

const ids = ['r0/e1', 'r1/e1', 'r2/e1'];
const fakeIds = ['a/x', 'r0/e0', 'r1/e9', 'zz/zz'];
const bytes = (s: string) => new TextEncoder().encode(s);
const label = (v: Uint8Array | null) => (v === null ? '(tombstone)' : new TextDecoder().decode(v));
const counterOf = (vv: VersionVector | DvvSet, id: string) => (vv as [string, number][]).find((e) => e[0] === id)?.[1] ?? 0;

const counterArb = fc.oneof(fc.constantFrom(1, 2, 3, 2 ** 40, defaultLimits.counterMax, defaultLimits.counterMax + 1, 2 ** 53 - 2), fc.nat(10));
const forgedArb = fc.oneof(
  fc.uniqueArray(fc.tuple(fc.constantFrom(...ids, ...fakeIds), counterArb), { selector: (e) => e[0], maxLength: 6 }),
  // More clock ids than any history holds.
  fc.constant(Array.from({ length: defaultLimits.historyEntriesMax + 5 }, (_, i): [string, number] => [`made-up-${String(i).padStart(4, '0')}`, 1])),
);

type Op =
  | { op: 'write'; via: number; ctx: { kind: 'none' } | { kind: 'read'; from: number } | { kind: 'forged'; entries: [string, number][] } }
  | { op: 'sync'; from: number; to: number }
  | { op: 'poison'; to: number; counter: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('write' as const),
    via: fc.nat(2),
    ctx: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('read' as const), from: fc.nat(2) }),
      fc.record({ kind: fc.constant('forged' as const), entries: forgedArb }),
    ),
  }),
  fc.record({ op: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
  fc.record({ op: fc.constant('poison' as const), to: fc.nat(2), counter: fc.constantFrom(2 ** 53 - 1, defaultLimits.counterMax + 1, -3, 1.5) }),
);

describe('hostile contexts: random and adversarial histories of one key', () => {
  it('keep every acknowledged write readable unless superseded by what a context could see, converge, and stay bounded', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const states: DvvSet[] = [emptyDvv, emptyDvv, emptyDvv];
        // Every acknowledged write: its label and dot; and what each later write superseded.
        const acked: { label: string; id: string; k: number }[] = [];
        const superseded: VersionVector[] = [];
        let n = 0;
        for (const o of ops) {
          if (o.op === 'write') {
            let context: VersionVector = [];
            if (o.ctx.kind === 'read') context = join(states[o.ctx.from]!);
            if (o.ctx.kind === 'forged') {
              const sorted = [...o.ctx.entries].sort((a, b) => (a[0] < b[0] ? -1 : 1));
              const checked = decodeContext(encode(sorted), defaultLimits);
              // Refused at the API (BAD_REQUEST): nothing is written.
              if (!checked.ok) {
                expect(sorted.length > defaultLimits.historyEntriesMax || sorted.some(([, c]) => c > defaultLimits.counterMax || !Number.isInteger(c) || c < 0)).toBe(true);
                continue;
              }
              context = checked.value;
            }
            const stored = states[o.via]!;
            const text = `w${n++}`;
            const { next, result } = applyWrite(stored, { kind: 'coordinate', context, value: bytes(text), siblingsMax: 1000 }, ids[o.via]!);
            expect(result.ok).toBe(true);
            states[o.via] = next!;
            acked.push({ label: text, id: ids[o.via]!, k: counterOf(next!, ids[o.via]!) });
            superseded.push(join(clamp(context, stored)));
          } else if (o.op === 'sync') {
            const { next } = applySync(states[o.to], states[o.from]!);
            if (next) states[o.to] = next;
          } else {
            // A peer's version with one impossible entry beside a real one.
            const poisoned = [...states[o.to]!, ['zzz/poison', o.counter, [bytes('poison')]]] as unknown as DvvSet;
            const { next, refused } = applySync(states[o.to], poisoned);
            expect(refused).toBeGreaterThan(0);
            if (next) states[o.to] = next;
          }
        }
        // Anti-entropy until quiet: every pair both ways, twice.
        for (let round = 0; round < 2; round++) {
          for (let a = 0; a < 3; a++) {
            for (let b = 0; b < 3; b++) {
              const { next } = applySync(states[b], states[a]!);
              if (next) states[b] = next;
            }
          }
        }
        expect(equal(states[0]!, states[1]!) && equal(states[1]!, states[2]!)).toBe(true);
        const final = states[0]!;
        const readable = new Set(values(final).map(label));
        for (const [i, w] of acked.entries()) {
          if (readable.has(w.label)) continue;
          // Gone only because a later write's context (cut to what its coordinator held) covered it.
          expect(superseded.slice(i + 1).some((vv) => counterOf(vv, w.id) >= w.k)).toBe(true);
        }
        // Bounded: only issued clock ids, counters within counterMax, at most historyEntriesMax entries.
        for (const [id, counter] of final as unknown as [string, number, unknown[]][]) {
          expect(ids).toContain(id);
          expect(Number.isSafeInteger(counter) && counter <= defaultVersionBounds.counterMax).toBe(true);
        }
        expect(final.length).toBeLessThanOrEqual(defaultVersionBounds.historyEntriesMax);
      }),
      { numRuns: 300 },
    );
  });
});
