/**
 * DVV sets (src/core/dvv.ts). Random histories of replicas that take client writes (contexts from
 * earlier states) and sync with one another are checked against a causal oracle, and every state they
 * produce feeds the algebraic properties: sync is commutative, associative and idempotent, keeps
 * exactly the values the other side has not covered, `update` supersedes exactly its context, and
 * `less`/`equal` agree with the version vectors from `join`.
 *
 * The oracle: every write is a dot (replica id, counter) with the context it was written with. A
 * state knows a history H (a version vector: every dot at or below it). A known dot is live exactly
 * when no known write had it in its context. That is the meaning of "supersedes" with no wall clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  type DvvSet,
  type Sibling,
  type VersionVector,
  clamp,
  emptyDvv,
  equal,
  isDeleted,
  join,
  less,
  siblingCount,
  sync,
  update,
  values,
} from '../../src/core/dvv.js';

const utf8 = new TextEncoder();
const utf8Decode = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const tombstoneLabel = '⊥';
const valueOf = (label: string): Uint8Array => utf8.encode(label);
const labelOf = (v: Sibling): string => (v === null ? tombstoneLabel : utf8Decode.decode(v));
const sortedLabels = (set: DvvSet): string[] => values(set).map(labelOf).sort();

/** A live sibling with its dot: [id, counter, label]. Within an entry the values are newest first. */
type LiveDot = { id: string; k: number; label: string };
function liveDots(set: DvvSet): LiveDot[] {
  const out: LiveDot[] = [];
  for (const [id, n, vals] of set) vals.forEach((v, i) => out.push({ id, k: n - i, label: labelOf(v) }));
  return out;
}
const dotKey = (id: string, k: number): string => `${id}:${k}`;

function counterOf(vv: DvvSet | VersionVector, id: string): number {
  for (const entry of vv) if (entry[0] === id) return entry[1];
  return 0;
}

/** Pointwise comparison of version vectors (a missing id counts 0). */
function vvLeq(a: VersionVector, b: VersionVector): boolean {
  return a.every(([id, n]) => n <= counterOf(b, id));
}
const vvLess = (a: VersionVector, b: VersionVector): boolean => vvLeq(a, b) && !vvLeq(b, a);

/** Structural invariants of any DVV set: ids strictly sorted, counters >= 1, live values <= counter. */
function expectWellFormed(set: DvvSet): void {
  const wellFormed = set.every(
    ([id, n, vals], i) => Number.isInteger(n) && n >= 1 && vals.length <= n && (i === 0 || set[i - 1]![0] < id),
  );
  if (!wellFormed) expect(set).toEqual('a well-formed DVV set');
}

/** Freeze a state's arrays so that any mutation by the code under test throws. */
function freezeState(set: DvvSet): DvvSet {
  for (const entry of set) {
    Object.freeze(entry[2]);
    Object.freeze(entry);
  }
  return Object.freeze(set) as DvvSet;
}

/** Same history and same live siblings, checked both with `equal` and with the value multisets. */
function expectSameState(actual: DvvSet, expected: DvvSet): void {
  expect(join(actual)).toEqual(join(expected));
  expect(equal(actual, expected)).toBe(true);
  expect(sortedLabels(actual)).toEqual(sortedLabels(expected));
}

// ---------------------------------------------------------------------------------------------
// The model: replicas, clients, and the causal oracle
// ---------------------------------------------------------------------------------------------

type Op =
  /** A client write coordinated by `replica`, with no context or the context of an earlier state. */
  | { kind: 'put'; replica: number; context: number | null; tombstone: boolean }
  /** Replica `to` merges the state of replica `from` (replication, read repair, anti-entropy). */
  | { kind: 'sync'; from: number; to: number }
  /** A client reads a quorum: the states of some replicas merged. The result only becomes a context. */
  | { kind: 'read'; replicas: number[] }
  /** A replica loses its data and comes back with a new epoch, so a new clock id. */
  | { kind: 'restart'; replica: number };

const replicaNames = ['a', 'b', 'c'];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      replica: fc.nat(2),
      context: fc.option(fc.nat(), { freq: 5 }),
      tombstone: fc.nat(7).map((x) => x === 0), // a delete now and then
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('read' as const), replicas: fc.uniqueArray(fc.nat(2), { minLength: 1, maxLength: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), replica: fc.nat(2) }) },
);

interface Write {
  label: string;
  context: VersionVector;
}

class Model {
  /** Every write ever made, by dot. */
  readonly writes = new Map<string, Write>();
  /** Every state any replica or read ever had, in order: the pool contexts and test inputs come from. */
  readonly snapshots: DvvSet[] = [];
  readonly epochs = [1, 1, 1];
  readonly states: DvvSet[] = [emptyDvv, emptyDvv, emptyDvv];
  private writeCount = 0;

  clockId(replica: number): string {
    return `${replicaNames[replica]}/${this.epochs[replica]}`;
  }

  private record(set: DvvSet): DvvSet {
    const frozen = freezeState(set);
    this.snapshots.push(frozen);
    return frozen;
  }

  put(replica: number, context: VersionVector, tombstone: boolean): DvvSet {
    const label = `w${this.writeCount++}`;
    const id = this.clockId(replica);
    const before = this.states[replica]!;
    const after = update(before, context, id, tombstone ? null : valueOf(label));
    // The new dot is the coordinator's next counter, whatever the context claims about it.
    const k = counterOf(before, id) + 1;
    expect(counterOf(after, id)).toBe(k);
    expect(this.writes.has(dotKey(id, k))).toBe(false);
    // What the write supersedes is the context cut to what the coordinator holds (dvv.clamp).
    this.writes.set(dotKey(id, k), { label: tombstone ? tombstoneLabel : label, context: join(clamp(context, before)) });
    this.states[replica] = this.record(after);
    return this.states[replica]!;
  }

  apply(op: Op): void {
    switch (op.kind) {
      case 'put': {
        const context = op.context === null || this.snapshots.length === 0 ? [] : join(this.snapshots[op.context % this.snapshots.length]!);
        this.put(op.replica, context, op.tombstone);
        break;
      }
      case 'sync':
        this.states[op.to] = this.record(sync(this.states[op.to]!, this.states[op.from]!));
        break;
      case 'read':
        this.record(op.replicas.map((r) => this.states[r]!).reduce((acc, s) => sync(acc, s), emptyDvv));
        break;
      case 'restart':
        this.epochs[op.replica]!++;
        this.states[op.replica] = emptyDvv;
        break;
    }
  }

  /**
   * The labels of the live values of a state whose history is `vv`, by the oracle's definition: the
   * known dots that no known write's context covers. Plain code, no expect(), because it runs for
   * every state of every history.
   */
  oracleLive(vv: VersionVector): string[] {
    const known: { id: string; k: number; write: Write }[] = [];
    const coveredUpTo = new Map<string, number>();
    for (const [id, n] of vv)
      for (let k = 1; k <= n; k++) {
        const write = this.writes.get(dotKey(id, k));
        // Every dot in a history is a write somebody made: contexts only ever name real dots.
        if (write === undefined) throw new Error(`dot ${dotKey(id, k)} is known but was never written`);
        known.push({ id, k, write });
        for (const [cid, cn] of write.context) coveredUpTo.set(cid, Math.max(coveredUpTo.get(cid) ?? 0, cn));
      }
    return known
      .filter(({ id, k }) => k > (coveredUpTo.get(id) ?? 0))
      .map(({ write }) => write.label)
      .sort();
  }
}

/** Run a history; afterwards the model holds every state the history produced. */
function runHistory(ops: Op[]): Model {
  const model = new Model();
  for (const op of ops) model.apply(op);
  return model;
}

// Long enough that replicas go their own ways for a while: short histories are mostly trivial.
const historyArb = fc.array(opArb, { minLength: 10, maxLength: 40, size: 'max' });

/** A history together with picks of some of the states it produced. */
const withPicks = (count: number) =>
  fc.tuple(historyArb, fc.array(fc.nat(), { minLength: count, maxLength: count })).map(([ops, picks]) => {
    const model = runHistory(ops);
    const pool = model.snapshots.length > 0 ? model.snapshots : [emptyDvv];
    return { model, ops, picked: picks.map((p) => pool[p % pool.length]!) };
  });

const runs = { numRuns: 300 };

// ---------------------------------------------------------------------------------------------
// Examples, ported from dvvset.erl's unit tests
// ---------------------------------------------------------------------------------------------

describe('DVV sets: examples from dvvset.erl', () => {
  const v = (s: string): Uint8Array => valueOf(s);
  const readable = (set: DvvSet) => set.map(([id, n, vals]) => [id, n, vals.map(labelOf)]);

  it('join gives the version vector of a state', () => {
    const a1 = update(emptyDvv, [], 'a', v('v1'));
    const b1 = update(a1, join(a1), 'b', v('v2'));
    expect(join(emptyDvv)).toEqual([]);
    expect(join(a1)).toEqual([['a', 1]]);
    expect(join(b1)).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
  });

  it('update supersedes what its context covers and nothing else', () => {
    const a0 = update(emptyDvv, [], 'a', v('v1'));
    const a1 = update(a0, join(a0), 'a', v('v2'));
    const a2 = update(a1, join(a1), 'b', v('v3'));
    const a3 = update(a1, join(a0), 'b', v('v4'));
    const a4 = update(a1, join(a0), 'a', v('v5'));
    expect(readable(a0)).toEqual([['a', 1, ['v1']]]);
    expect(readable(a1)).toEqual([['a', 2, ['v2']]]);
    expect(readable(a2)).toEqual([
      ['a', 2, []],
      ['b', 1, ['v3']],
    ]);
    expect(readable(a3)).toEqual([
      ['a', 2, ['v2']],
      ['b', 1, ['v4']],
    ]);
    expect(readable(a4)).toEqual([['a', 3, ['v5', 'v2']]]);
  });

  it('sync drops what one side has seen superseded, and keeps concurrent values', () => {
    const x: DvvSet = [['x', 1, []]];
    const a = update(emptyDvv, [], 'a', v('v1'));
    const y = update(emptyDvv, [], 'b', v('v2'));
    const a1 = update(a, join(a), 'a', v('v2'));
    const a3 = update(a1, join(a1), 'b', v('v3'));
    const a4 = update(a1, join(a1), 'c', v('v3'));
    const w: DvvSet = [['a', 1, []]];
    const z: DvvSet = [['a', 2, [v('v2'), v('v1')]]];
    expect(readable(sync(w, z))).toEqual([['a', 2, ['v2']]]);
    expect(readable(sync(z, w))).toEqual([['a', 2, ['v2']]]);
    expect(readable(sync(a, a1))).toEqual(readable(sync(a1, a)));
    expect(readable(sync(a4, a3))).toEqual([
      ['a', 2, []],
      ['b', 1, ['v3']],
      ['c', 1, ['v3']],
    ]);
    expect(readable(sync(a3, a4))).toEqual(readable(sync(a4, a3)));
    expect(readable(sync(x, a))).toEqual([
      ['a', 1, ['v1']],
      ['x', 1, []],
    ]);
    expect(readable(sync(a, x))).toEqual(readable(sync(x, a)));
    expect(readable(sync(a, y))).toEqual([
      ['a', 1, ['v1']],
      ['b', 1, ['v2']],
    ]);
    expect(readable(sync(y, a))).toEqual(readable(sync(a, y)));
  });

  it('less and equal compare histories', () => {
    const a = update(emptyDvv, [], 'a', v('v1'));
    const b = update(a, join(a), 'a', v('v2'));
    const b2 = update(a, join(a), 'b', v('v2'));
    const c = update(b, join(a), 'z', v('v5'));
    const d = update(c, join(c), 'd', v('v4'));
    expect(less(a, b)).toBe(true);
    expect(less(a, c)).toBe(true);
    expect(less(b, c)).toBe(true);
    expect(less(b, b2)).toBe(false);
    expect(less(b2, b)).toBe(false);
    expect(less(b, b)).toBe(false);
    expect(less(a, d)).toBe(true);
    expect(less(d, a)).toBe(false);
    expect(equal(a, a)).toBe(true);
    expect(equal(a, b)).toBe(false);
    expect(less(join(a), join(d))).toBe(true);
    // Same history, different siblings: equal looks at the live values too (dvvset.erl's W and Z).
    const z: DvvSet = [['a', 2, [v('v2'), v('v1')]]];
    const zSynced = sync([['a', 1, []]], z);
    expect(join(zSynced)).toEqual(join(z));
    expect(equal(zSynced, z)).toBe(false);
    expect(less(zSynced, z) || less(z, zSynced)).toBe(false);
  });

  it('a put with an empty context adds a sibling rather than replacing (example)', () => {
    const s1 = update(emptyDvv, [], 'a/1', v('x'));
    const s2 = update(s1, [], 'a/1', v('y'));
    expect(readable(s2)).toEqual([['a/1', 2, ['y', 'x']]]);
    const s3 = update(s2, [], 'b/1', null);
    expect(siblingCount(s3)).toBe(3);
    expect(isDeleted(s3)).toBe(false);
    expect(isDeleted(update(s3, join(s3), 'b/1', null))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random histories
// ---------------------------------------------------------------------------------------------

describe('DVV sets: random replica histories', () => {
  it('every state matches the causal oracle: same history, exactly the uncovered writes live', () => {
    fc.assert(
      fc.property(historyArb, (ops) => {
        const model = runHistory(ops);
        // The snapshots are every state any replica or read had, in order.
        for (const set of [...model.snapshots, ...model.states]) {
          expectWellFormed(set);
          const live = model.oracleLive(join(set));
          expect(sortedLabels(set)).toEqual(live);
          expect(siblingCount(set)).toBe(live.length);
          expect(isDeleted(set)).toBe(live.every((l) => l === tombstoneLabel));
        }
      }),
      runs,
    );
  });

  it('sync is commutative (equal, and the same values as multisets)', () => {
    fc.assert(
      fc.property(withPicks(2), ({ picked: [a, b] }) => {
        expectSameState(sync(a!, b!), sync(b!, a!));
      }),
      runs,
    );
  });

  it('sync is associative', () => {
    fc.assert(
      fc.property(withPicks(3), ({ picked: [a, b, c] }) => {
        expectSameState(sync(sync(a!, b!), c!), sync(a!, sync(b!, c!)));
      }),
      runs,
    );
  });

  it('sync is idempotent, and merging what was already merged changes nothing', () => {
    fc.assert(
      fc.property(withPicks(2), ({ picked: [a, b] }) => {
        expectSameState(sync(a!, a!), a!);
        const ab = sync(a!, b!);
        expectSameState(sync(ab, a!), ab);
        expectSameState(sync(b!, ab), ab);
        expectSameState(sync(ab, ab), ab);
      }),
      runs,
    );
  });

  it('sync keeps exactly the values the other side has not covered', () => {
    fc.assert(
      fc.property(withPicks(2), ({ picked: [a, b] }) => {
        const merged = sync(a!, b!);
        const mergedDots = new Map(liveDots(merged).map((d) => [dotKey(d.id, d.k), d.label]));
        // A live value survives unless the other side knows its dot and no longer holds it.
        const survives = (other: DvvSet, d: LiveDot): boolean =>
          counterOf(other, d.id) < d.k || liveDots(other).some((o) => o.id === d.id && o.k === d.k);
        const expected = new Map<string, string>();
        for (const d of liveDots(a!)) if (survives(b!, d)) expected.set(dotKey(d.id, d.k), d.label);
        for (const d of liveDots(b!)) if (survives(a!, d)) expected.set(dotKey(d.id, d.k), d.label);
        expect(mergedDots).toEqual(expected);
        // Its history is the union of both.
        const ids = [...new Set([...join(a!), ...join(b!)].map(([id]) => id))].sort();
        expect(join(merged)).toEqual(ids.map((id) => [id, Math.max(counterOf(a!, id), counterOf(b!, id))]));
      }),
      runs,
    );
  });

  it('update with the context join(s) supersedes exactly the values of s that the replica holds', () => {
    fc.assert(
      fc.property(withPicks(1), fc.nat(2), fc.nat(2), ({ model, picked: [s0] }, r, other) => {
        const stored = model.states[r]!;
        // The context can only supersede what the coordinator can vouch for: s cut to the stored state.
        const context = join(clamp(join(s0!), stored));
        const s = s0!;
        const id = model.clockId(r);
        const fresh = 'fresh-value';
        const result = update(stored, context, id, valueOf(fresh));
        expectWellFormed(result);
        const labels = values(result).map(labelOf);
        // The new value is there once, none of s's values remain.
        expect(labels.filter((l) => l === fresh)).toHaveLength(1);
        const sLabels = new Set(
          liveDots(s)
            .filter((d) => counterOf(context, d.id) >= d.k)
            .map((d) => d.label)
            .filter((l) => l !== tombstoneLabel),
        );
        for (const l of labels) expect(sLabels.has(l)).toBe(false);
        // Of what the replica held, exactly the values the context does not cover remain.
        const uncovered = liveDots(stored).filter((d) => counterOf(context, d.id) < d.k);
        expect(
          liveDots(result)
            .filter((d) => d.label !== fresh)
            .map((d) => dotKey(d.id, d.k))
            .sort(),
        ).toEqual(uncovered.map((d) => dotKey(d.id, d.k)).sort());
        // Values written concurrently at another replica (not in s) survive when the two meet.
        const otherState = model.states[other]!;
        const before = liveDots(sync(stored, otherState)).filter((d) => counterOf(context, d.id) < d.k);
        const after = liveDots(sync(result, otherState)).filter((d) => d.label !== fresh);
        expect(after.map((d) => dotKey(d.id, d.k)).sort()).toEqual(before.map((d) => dotKey(d.id, d.k)).sort());
        // And the new dot is in the causal future of both s and the stored state.
        expect(less(context, result)).toBe(true);
        expect(less(stored, result)).toBe(true);
        // Nothing of the context beyond the stored state reaches the result's history.
        for (const [cid, cn] of join(result)) if (cid !== id) expect(cn).toBe(counterOf(stored, cid));
      }),
      runs,
    );
  });

  it('a put with an empty context adds a sibling and removes nothing', () => {
    fc.assert(
      fc.property(withPicks(1), fc.nat(2), fc.boolean(), ({ model, picked: [s] }, r, tombstone) => {
        const id = model.clockId(r);
        // Any state the replica could hold: its own, or one merged into it.
        const stored = sync(model.states[r]!, s!);
        const result = update(stored, [], id, tombstone ? null : valueOf('new'));
        expect(siblingCount(result)).toBe(siblingCount(stored) + 1);
        expect(sortedLabels(result)).toEqual([...values(stored).map(labelOf), tombstone ? tombstoneLabel : 'new'].sort());
        expect(join(result)).toEqual(
          [...new Set([...join(stored).map(([i]) => i), id])].sort().map((i) => [i, counterOf(stored, i) + (i === id ? 1 : 0)]),
        );
      }),
      runs,
    );
  });

  it('less and equal agree with the version vectors from join', () => {
    fc.assert(
      fc.property(withPicks(2), ({ picked: [a, b] }) => {
        const [ja, jb] = [join(a!), join(b!)];
        expect(less(a!, b!)).toBe(vvLess(ja, jb));
        expect(less(ja, jb)).toBe(vvLess(ja, jb));
        expect(less(a!, jb)).toBe(vvLess(ja, jb));
        expect(equal(a!, b!)).toBe(JSON.stringify(ja) === JSON.stringify(jb));
        expect(less(a!, a!)).toBe(false);
        expect(less(a!, b!) && less(b!, a!)).toBe(false);
        expect(equal(a!, a!)).toBe(true);
        expect(equal(a!, b!)).toBe(equal(b!, a!));
        // Equal histories hold the same siblings; a smaller history is absorbed by sync.
        if (equal(a!, b!)) expect(sortedLabels(a!)).toEqual(sortedLabels(b!));
        if (less(a!, b!)) expectSameState(sync(a!, b!), b!);
        // Exactly one of: a < b, b < a, a = b, or concurrent (neither descends the other).
        const ab = sync(a!, b!);
        expect(less(a!, b!) || equal(a!, b!) ? equal(ab, b!) : less(b!, ab)).toBe(true);
      }),
      runs,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Sibling explosion
// ---------------------------------------------------------------------------------------------

describe('DVV sets: sibling explosion', () => {
  it('two clients alternating 100 writes through one replica, each with its own last context, never leave more than 2 siblings', () => {
    let stored: DvvSet = emptyDvv;
    const contexts: VersionVector[] = [[], []];
    for (let i = 0; i < 100; i++) {
      const client = i % 2;
      stored = update(stored, contexts[client]!, 'a/1', valueOf(`c${client}-${i}`));
      contexts[client] = join(stored);
      expect(siblingCount(stored)).toBeLessThanOrEqual(2);
      expect(values(stored).map(labelOf)).toContain(`c${client}-${i}`);
    }
    // After the first two writes both clients are concurrent: exactly their last writes are left.
    expect(sortedLabels(stored)).toEqual(['c0-98', 'c1-99']);
    expect(join(stored)).toEqual([['a/1', 100]]);
  });

  it('k clients writing in any order through one replica, each with its own last context, leave at most k siblings', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.nat(), { minLength: 1, maxLength: 120 }), (k, schedule) => {
        let stored: DvvSet = emptyDvv;
        const contexts: VersionVector[] = Array.from({ length: k }, () => []);
        const lastWrite = new Map<number, string>();
        schedule.forEach((pick, i) => {
          const client = pick % k;
          const label = `c${client}-${i}`;
          stored = update(stored, contexts[client]!, 'a/1', valueOf(label));
          contexts[client] = join(stored);
          lastWrite.set(client, label);
          const labels = values(stored).map(labelOf);
          expect(labels).toContain(label);
          expect(siblingCount(stored)).toBeLessThanOrEqual(k);
          // Each client's earlier writes are gone: only a client's latest write can be live.
          for (const l of labels) expect([...lastWrite.values()]).toContain(l);
        });
      }),
      runs,
    );
  });
});
