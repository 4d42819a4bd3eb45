/**
 * What requests cost, counted (DESIGN.md §3): the work a process does on the request path, as counts
 * that stay the same on a noisy machine where times do not. `ringkv bench` reads each node's counts
 * before and after a measured window (they travel in the api.status answer) and divides by the
 * operations done: messages and bytes per operation, store transactions, state-machine transitions,
 * encodes and decodes, seals and opens. test/integration/request-budget.test.ts holds budgets on them.
 *
 * One counter set per process, not per node: a production node is one process, so the two are the
 * same there, and an in-process test of several nodes reads the sum over all of them, which is what a
 * budget per operation is about. Plain number fields incremented in place: a counter must cost less
 * than the work it counts (one property increment; no map, no closure, no allocation).
 */

export interface CostCounts {
  /** NATS messages this process published, and their bytes (payload, as handed to nats.js). */
  messagesOut: number;
  bytesOut: number;
  /** NATS messages this process received on its subscriptions, and their bytes. */
  messagesIn: number;
  bytesIn: number;
  /**
   * Event-loop turns in which this process published: nats.js writes what one turn published in one
   * socket write (its flush runs on a microtask after the first publish), so this counts socket writes.
   */
  publishTurns: number;
  /** Store transactions committed (a group commit is one) and the writes they carried. */
  storeTxns: number;
  storeWrites: number;
  /** Events taken by state machines (one transition step each, whatever the machine). */
  transitions: number;
  /** MessagePack encodes and decodes (src/protocol/codec.ts), envelopes and stored states alike. */
  encodes: number;
  decodes: number;
  /** HMAC seals made and checked (src/protocol/seal.ts): one per NATS message between members. */
  seals: number;
  opens: number;
  /** Bytes published, by what they are: a node role ('replica', 'forward', ...) or 'reply'. */
  bytesOutBy: Record<string, number>;
  /** Messages published, by the same names. */
  messagesOutBy: Record<string, number>;
}

export type CostName = Exclude<keyof CostCounts, 'bytesOutBy' | 'messagesOutBy'>;

export const costNames: readonly CostName[] = [
  'messagesOut',
  'bytesOut',
  'messagesIn',
  'bytesIn',
  'publishTurns',
  'storeTxns',
  'storeWrites',
  'transitions',
  'encodes',
  'decodes',
  'seals',
  'opens',
];

function zero(): CostCounts {
  return {
    messagesOut: 0,
    bytesOut: 0,
    messagesIn: 0,
    bytesIn: 0,
    publishTurns: 0,
    storeTxns: 0,
    storeWrites: 0,
    transitions: 0,
    encodes: 0,
    decodes: 0,
    seals: 0,
    opens: 0,
    bytesOutBy: {},
    messagesOutBy: {},
  };
}

/** This process's counters since it started: incremented in place by the code that does the work. */
export const costs: CostCounts = zero();

/** A copy of the counters now, to subtract a later reading from. */
export function readCosts(): CostCounts {
  return { ...costs, bytesOutBy: { ...costs.bytesOutBy }, messagesOutBy: { ...costs.messagesOutBy } };
}

/** What was counted between two readings. */
export function costsSince(before: CostCounts, after: CostCounts = readCosts()): CostCounts {
  const d = zero();
  for (const name of costNames) d[name] = after[name] - before[name];
  for (const [k, v] of Object.entries(after.bytesOutBy)) d.bytesOutBy[k] = v - (before.bytesOutBy[k] ?? 0);
  for (const [k, v] of Object.entries(after.messagesOutBy)) d.messagesOutBy[k] = v - (before.messagesOutBy[k] ?? 0);
  return d;
}

/** Sum of several processes' counts (the nodes of a cluster). */
export function sumCosts(counts: readonly CostCounts[]): CostCounts {
  const s = zero();
  for (const c of counts) {
    for (const name of costNames) s[name] += c[name];
    for (const [k, v] of Object.entries(c.bytesOutBy)) s.bytesOutBy[k] = (s.bytesOutBy[k] ?? 0) + v;
    for (const [k, v] of Object.entries(c.messagesOutBy)) s.messagesOutBy[k] = (s.messagesOutBy[k] ?? 0) + v;
  }
  return s;
}

/** Counts one published message under `what` (a role or 'reply'). */
export function countPublish(what: string, bytes: number): void {
  costs.messagesOut++;
  costs.bytesOut += bytes;
  costs.bytesOutBy[what] = (costs.bytesOutBy[what] ?? 0) + bytes;
  costs.messagesOutBy[what] = (costs.messagesOutBy[what] ?? 0) + 1;
  if (!publishedThisTurn) {
    publishedThisTurn = true;
    costs.publishTurns++;
    setImmediate(endPublishTurn);
  }
}

let publishedThisTurn = false;
const endPublishTurn = (): void => {
  publishedThisTurn = false;
};
