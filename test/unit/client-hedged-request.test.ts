/**
 * The client's hedged request (src/client/hedged-request.ts) and its view of node health
 * (src/client/node-health.ts), with scripted nodes: a silent node is hedged around after the delay,
 * a node with no responders is replaced at once, a definite error stops at once, a lost connection
 * sends the request again, and R distinct answers are collected for a read.
 */
import { describe, expect, it } from 'vitest';
import { HedgeBudget, HedgeDelay } from '../../src/client/hedge-delay.js';
import { runHedged, type HedgedSpec, type Judgement } from '../../src/client/hedged-request.js';
import { NodeHealth } from '../../src/client/node-health.js';
import { MuxError } from '../../src/client/request-mux.js';
import { RingkvError } from '../../src/client/errors.js';

type Behaviour = { after: number; answer: string } | { after: number; fail: 'noResponders' | 'lost' | 'timeout' } | 'silent';

const enc = new TextEncoder();
const dec = new TextDecoder();

function spec(nodes: Record<string, Behaviour | Behaviour[]>, over: Partial<HedgedSpec<string>> = {}) {
  const asked: { node: string; at: number }[] = [];
  const t0 = performance.now();
  const calls = new Map<string, number>();
  const s: HedgedSpec<string> = {
    candidates: Object.keys(nodes),
    needed: 1,
    deadlineAt: t0 + 2_000,
    delay: new HedgeDelay({ initialMs: 30, floorMs: 30, capMs: 200 }),
    budget: new HedgeBudget(),
    health: new NodeHealth(),
    now: () => performance.now(),
    send: (node) => {
      asked.push({ node, at: performance.now() - t0 });
      const n = calls.get(node) ?? 0;
      calls.set(node, n + 1);
      const all = nodes[node]!;
      const b = Array.isArray(all) ? all[Math.min(n, all.length - 1)]! : all;
      if (b === 'silent') return new Promise<Uint8Array>(() => undefined);
      return new Promise<Uint8Array>((resolve, reject) =>
        setTimeout(() => ('answer' in b ? resolve(enc.encode(b.answer)) : reject(new MuxError(b.fail, b.fail))), b.after),
      );
    },
    judge: (_node, bytes): Judgement<string> => {
      const t = dec.decode(bytes);
      if (t.startsWith('final:')) return { kind: 'final', error: new RingkvError('BAD_REQUEST', t) };
      if (t.startsWith('next:')) return { kind: 'next', error: new RingkvError('OVERLOADED', t) };
      if (t.startsWith('wait:')) return { kind: 'wait', error: new RingkvError('TIMEOUT', t) };
      return { kind: 'ok', value: t };
    },
    ...over,
  };
  return { s, asked };
}

describe('runHedged', () => {
  it('ends at the deadline (not "exhausted") when the deadline has passed before any attempt could go (a client stall)', async () => {
    // issue 27, item 5: the caller's event loop stalled past the deadline before this operation began.
    const { s, asked } = spec({ n1: { after: 5, answer: 'a1' } }, { deadlineAt: performance.now() - 1 });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: false, why: 'deadline' });
    expect(asked).toEqual([]);
  });

  it('asks only the first node when it answers in time', async () => {
    const { s, asked } = spec({ n1: { after: 5, answer: 'a1' }, n2: { after: 5, answer: 'a2' } });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: true, answers: [['n1', 'a1']], hedges: 0 });
    expect(asked.map((a) => a.node)).toEqual(['n1']);
  });

  it('hedges to the next node after the delay when the first is silent; the first good answer wins', async () => {
    const { s, asked } = spec({ n1: 'silent', n2: { after: 5, answer: 'a2' } });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: true, answers: [['n2', 'a2']], hedges: 1 });
    expect(asked[1]!.at).toBeGreaterThanOrEqual(25);
  });

  it('moves on at once from a node with no responders, without waiting for the hedge delay', async () => {
    const { s, asked } = spec({ n1: { after: 1, fail: 'noResponders' }, n2: { after: 1, answer: 'a2' } }, { delay: new HedgeDelay({ initialMs: 1000, floorMs: 1000, capMs: 1000 }) });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: true, answers: [['n2', 'a2']], hedges: 0 });
    expect(asked[1]!.at).toBeLessThan(500);
    expect(s.health.isAvoided('n1', performance.now())).toBe(true);
  });

  it('sends a request lost with the connection again at once, to the next node and then the same one', async () => {
    const { s, asked } = spec({ n1: [{ after: 1, fail: 'lost' }, { after: 1, answer: 'a1' }], n2: { after: 1, fail: 'lost' } }, { delay: new HedgeDelay({ initialMs: 1000, floorMs: 1000, capMs: 1000 }) });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: true, answers: [['n1', 'a1']] });
    expect(asked.map((a) => a.node)).toEqual(['n1', 'n2', 'n1']);
    expect(asked[2]!.at).toBeLessThan(500);
  });

  it('stops at a definite error, and reports every node gone when none answers', async () => {
    const final = await runHedged(spec({ n1: { after: 1, answer: 'final:bad key' }, n2: { after: 1, answer: 'a2' } }).s);
    expect(final).toMatchObject({ ok: false, why: 'final' });
    const gone = await runHedged(spec({ n1: { after: 1, fail: 'noResponders' }, n2: { after: 1, fail: 'noResponders' } }).s);
    expect(gone).toMatchObject({ ok: false, why: 'exhausted', gone: ['n1', 'n2'] });
  });

  it('tries the next node after an answer that says "elsewhere", but reports an indeterminate one when nothing else is in flight', async () => {
    const next = await runHedged(spec({ n1: { after: 1, answer: 'next:busy' }, n2: { after: 1, answer: 'a2' } }).s);
    expect(next).toMatchObject({ ok: true, answers: [['n2', 'a2']] });
    const wait = await runHedged(spec({ n1: { after: 1, answer: 'wait:timed out' }, n2: { after: 1, answer: 'a2' } }, { delay: new HedgeDelay({ initialMs: 1000, floorMs: 1000, capMs: 1000 }) }).s);
    expect(wait).toMatchObject({ ok: false, why: 'exhausted' });
    expect((wait as { errors: RingkvError[] }).errors.map((e) => e.code)).toEqual(['TIMEOUT']);
  });

  it('collects R answers from distinct nodes for a read, hedging past a silent one', async () => {
    const { s } = spec({ n1: { after: 2, answer: 'a1' }, n2: 'silent', n3: { after: 2, answer: 'a3' } }, { needed: 2 });
    const out = await runHedged(s);
    expect(out.ok).toBe(true);
    expect((out as { answers: [string, string][] }).answers.map(([n]) => n).sort()).toEqual(['n1', 'n3']);
  });

  it('gives up at the deadline', async () => {
    const { s } = spec({ n1: 'silent', n2: 'silent' }, { deadlineAt: performance.now() + 150 });
    const started = performance.now();
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: false, why: 'deadline' });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('ends at the deadline, not as exhausted, when an attempt timer fires just before the deadline timer (issue 18, item 8)', async () => {
    // The attempt's timer is the time left when it was sent: it may fire a millisecond before the
    // operation's deadline timer. The request went out, so the outcome is unknown (a deadline).
    const { s } = spec({ n1: { after: 40, fail: 'timeout' } }, { deadlineAt: performance.now() + 60 });
    const out = await runHedged(s);
    expect(out).toMatchObject({ ok: false, why: 'deadline' });
    const two = spec({ n1: { after: 40, fail: 'timeout' }, n2: { after: 1, fail: 'noResponders' } }, { deadlineAt: performance.now() + 60 });
    expect(await runHedged(two.s)).toMatchObject({ ok: false, why: 'deadline' });
  });
});

describe('NodeHealth', () => {
  it('avoids a node after no responders, for avoidMs, and forgives it at its next answer', () => {
    const h = new NodeHealth({ avoidMs: 100, stallMs: 50 });
    h.sent('n1', 0);
    h.noResponders('n1', 1);
    expect(h.isAvoided('n1', 50)).toBe(true);
    expect(h.isAvoided('n1', 102)).toBe(false);
    h.sent('n1', 10);
    h.noResponders('n1', 10);
    h.sent('n1', 20);
    h.answered('n1', 21);
    expect(h.isAvoided('n1', 22)).toBe(false);
  });

  it('avoids a node that leaves requests unanswered past stallMs while answering nothing', () => {
    const h = new NodeHealth({ avoidMs: 100, stallMs: 50 });
    h.sent('n2', 0);
    expect(h.isAvoided('n2', 40)).toBe(false);
    expect(h.isAvoided('n2', 60)).toBe(true);
    h.answered('n2', 70);
    expect(h.isAvoided('n2', 71)).toBe(false);
    // A lost connection says nothing about the node.
    h.sent('n2', 80);
    h.lost('n2');
    expect(h.isAvoided('n2', 500)).toBe(false);
  });
});
