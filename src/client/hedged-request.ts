/**
 * One client operation sent to the nodes of a key's preference list, hedged (issue 10): it needs
 * `needed` good answers from distinct nodes (1 for a put, R for a client-driven read). It asks the
 * first `needed` candidates at once; when they have not all answered after the hedge delay, it asks
 * the next candidate too, and again after each further delay. A candidate that cannot answer (no
 * responders: its process is gone; an answer that says "try elsewhere") is replaced by the next one
 * at once, and a request lost with the connection is sent again at once. The first `needed` good
 * answers win; later answers still count for the latency window and node health, never for the
 * result.
 *
 * The caller judges each answer: ok (counts), final (a definite error: stop and report it),
 * next (this node cannot serve it: ask another), or wait (an indeterminate error: report it only if
 * nothing else is still in flight).
 */
import { MuxError } from './request-mux.js';
import type { HedgeBudget, HedgeDelay } from './hedge-delay.js';
import type { NodeHealth } from './node-health.js';
import { RingkvError } from './errors.js';

export type Judgement<T> = { kind: 'ok'; value: T } | { kind: 'final' | 'next' | 'wait'; error: RingkvError };

export interface HedgedSpec<T> {
  /** Node ids in the order to ask them; '' is the API queue group (any node). */
  candidates: string[];
  needed: number;
  /** When the whole operation gives up (performance.now() ms). */
  deadlineAt: number;
  /**
   * When this set of attempts stops waiting, if before the deadline (a client replica read that
   * moves on to a coordinator). The attempts still carry the operation's whole deadline.
   */
  giveUpAt?: number;
  /** Sends one attempt; `remainingMs` is what is left of the operation's time. */
  send(node: string, remainingMs: number): Promise<Uint8Array>;
  judge(node: string, answer: Uint8Array): Judgement<T>;
  delay: HedgeDelay;
  budget: HedgeBudget;
  health: NodeHealth;
  now(): number;
}

export type HedgedOutcome<T> =
  | { ok: true; answers: [node: string, value: T][]; hedges: number; gone: string[] }
  | {
      ok: false;
      /** final: a node gave a definite error; exhausted: no candidate left; deadline: time ran out. */
      why: 'final' | 'exhausted' | 'deadline';
      answers: [node: string, value: T][];
      /** Errors the nodes answered, in arrival order. */
      errors: RingkvError[];
      /** Candidates that had no responders. */
      gone: string[];
      /** Attempts whose answer was lost with the connection (a write among them may have been applied). */
      lost: number;
      hedges: number;
    };

export function runHedged<T>(spec: HedgedSpec<T>): Promise<HedgedOutcome<T>> {
  return new Promise((resolve) => {
    const queue = [...spec.candidates];
    const answers: [string, T][] = [];
    const answered = new Set<string>();
    const errors: RingkvError[] = [];
    const gone: string[] = [];
    const startedAt = spec.now();
    let inFlight = 0;
    let hedges = 0;
    let lost = 0;
    let done = false;
    let hedgeTimer: ReturnType<typeof setTimeout> | undefined;
    let lastWait: RingkvError | undefined;

    const finish = (outcome: HedgedOutcome<T>) => {
      if (done) return;
      done = true;
      clearTimeout(hedgeTimer);
      clearTimeout(deadlineTimer);
      resolve(outcome);
    };
    const fail = (why: 'final' | 'exhausted' | 'deadline') => finish({ ok: false, why, answers, errors, gone, lost, hedges });

    const stopAt = Math.min(spec.deadlineAt, spec.giveUpAt ?? Infinity);
    const launch = (): boolean => {
      // Out of time: the candidate stays in the queue, so settle() tells the deadline from exhaustion.
      const remaining = spec.deadlineAt - spec.now();
      if (queue.length === 0 || remaining <= 0) return false;
      const node = queue.shift()!;
      inFlight++;
      const sentAt = spec.now();
      if (node !== '') spec.health.sent(node, sentAt);
      spec.send(node, remaining).then(
        (bytes) => {
          inFlight--;
          const now = spec.now();
          if (node !== '') spec.health.answered(node, now);
          if (done) return;
          const j = spec.judge(node, bytes);
          if (j.kind === 'ok') {
            spec.delay.record(now - sentAt);
            if (!answered.has(node)) {
              answered.add(node);
              answers.push([node, j.value]);
            }
            if (answers.length >= spec.needed) finish({ ok: true, answers, hedges, gone });
            else settle();
            return;
          }
          errors.push(j.error);
          if (j.kind === 'final') return fail('final');
          if (j.kind === 'next') launch();
          else lastWait = j.error;
          settle();
        },
        (err: unknown) => {
          inFlight--;
          const reason = err instanceof MuxError ? err.reason : 'publish';
          const now = spec.now();
          if (node !== '') {
            if (reason === 'noResponders') spec.health.noResponders(node, now);
            else if (reason === 'timeout') spec.health.timedOut(node, now);
            else spec.health.lost(node);
          }
          if (done) return;
          if (reason === 'noResponders') {
            gone.push(node);
            launch();
          } else if (reason === 'lost') {
            // The answer was lost with the connection, not the node: ask it again, after the others.
            lost++;
            queue.push(node);
            launch();
          } else if (reason === 'closed') {
            return fail('exhausted');
          } else if (reason === 'timeout') {
            // An attempt's timer is what was left of the operation's time when it was sent, so it
            // fires at the deadline, a millisecond either side of the deadline timer. The request
            // went out and may have been acted on: that is the deadline's outcome (TIMEOUT, unknown),
            // never "nothing left to ask" (issue 18, item 8: such puts were reported as not sent).
            return fail('deadline');
          } else if (reason === 'denied') {
            // NATS refused the publish (or the inbox): another node's subject of the same role is
            // refused alike, so this is the answer.
            errors.push(new RingkvError('NATS_PERMISSION', (err as MuxError).message));
            return fail('final');
          }
          settle();
        },
      );
      return true;
    };

    // Nothing in flight and nothing more to ask: report what there is. When the deadline has passed
    // (the client's own event loop stalled past it, or the time went on earlier attempts), no attempt
    // can be sent: that is the deadline's outcome (TIMEOUT), not "no node left to ask" (issue 27,
    // item 5: a get after a 1.2 s stall was reported NO_CLUSTER "the connection to NATS is closed").
    const settle = () => {
      if (done || inFlight > 0) return;
      if (lastWait === undefined && queue.length > 0 && launch()) return;
      if (queue.length > 0 && spec.now() >= spec.deadlineAt) return fail('deadline');
      fail('exhausted');
    };

    const armHedge = (ms: number) => {
      if (spec.now() + ms >= stopAt) return; // no hedge would be in time
      // Whole milliseconds, as for the deadline below.
      hedgeTimer = setTimeout(onHedgeTimer, Math.max(0, Math.ceil(ms)));
    };
    const onHedgeTimer = () => {
      if (done || queue.length === 0) return;
      const elapsed = spec.now() - startedAt;
      const cap = spec.delay.options.capMs;
      // Past the cap a hedge goes whatever the budget says: a stalled node must not hold a request.
      if (elapsed >= cap || spec.budget.take()) {
        hedges++;
        launch();
        armHedge(spec.delay.delayMs());
      } else {
        armHedge(cap - elapsed);
      }
    };

    // Whole milliseconds: Node keeps one timer list per distinct duration, and a fractional one (a
    // performance.now() difference) would make and drop a list for every request.
    const deadlineTimer = setTimeout(() => fail('deadline'), Math.max(0, Math.ceil(stopAt - startedAt)));
    spec.budget.earn();
    for (let i = 0; i < spec.needed; i++) if (!launch()) break;
    if (inFlight === 0) return settle();
    armHedge(spec.delay.delayMs());
  });
}
