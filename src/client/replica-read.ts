/**
 * A client-driven get (Dynamo §6.4): ask R replicas directly for their own state of the key
 * (api.local.get) and merge the DVV sets in the client. When they differ (a replica is behind), or
 * too few can answer, the caller asks a coordinator instead, which answers the merge and
 * read-repairs, or knows the sloppy quorum and says UNAVAILABLE with what it needed.
 */
import { performance } from 'node:perf_hooks';
import { type DvvSet, equal, sync } from '../core/dvv.js';
import { quorumDefault } from '../core/quorum.js';
import { defaultVersionBounds } from '../core/replica-write.js';
import { fallbackWaitMsDefault } from '../core/targets.js';
import { screenState } from '../core/version-check.js';
import { defaultLimits } from '../protocol/limits.js';
import type { ApiGetOk, ApiLocalGetOk, RequestOptions } from '../protocol/messages.js';
import { checkDvvSet } from '../protocol/validation.js';
import { RingkvError } from './errors.js';
import type { Judgement } from './hedged-request.js';
import type { KeyRouter } from './key-routing.js';
import { readResultOf, type GetResult } from './read-result.js';
import type { RequestSession } from './request-session.js';
import type { RingView } from './ring-view.js';

/** Client-driven reads need a plain quorum read: strict quorums and pr go through a coordinator. */
export function canReadReplicas(view: RingView, o: RequestOptions): boolean {
  const n = o.n ?? view.n;
  const r = o.r ?? quorumDefault.r;
  const isWhole = (x: unknown, lo: number, hi: number) => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
  return isWhole(n, 1, defaultLimits.nMax) && isWhole(r, 1, n) && (o.pr ?? 0) === 0 && o.sloppy !== false;
}

export interface ReplicaReadPorts {
  session: RequestSession;
  router: KeyRouter;
  /** A get coordinated by a node (the fallback when the replicas differ). */
  coordinatedGet: (key: Uint8Array, body: Record<string, unknown>, deadlineAt: number) => Promise<ApiGetOk>;
}

/**
 * Asks R replicas for their own state of the key and merges them. Undefined when the client must
 * ask a coordinator instead: too few replicas could answer, or they differ (one is behind, and a
 * coordinated get answers their merge and repairs it).
 */
export async function readReplicas(
  ports: ReplicaReadPorts,
  view: RingView,
  key: Uint8Array,
  options: RequestOptions & { timeoutMs: number },
  deadlineAt: number,
): Promise<GetResult | undefined> {
  const { session } = ports;
  const n = options.n ?? view.n;
  const r = options.r ?? quorumDefault.r;
  const { targets, order } = ports.router.order(view, key, n);
  if (targets.length < r) {
    // Too few replicas believed alive: a coordinator knows the sloppy quorum and says UNAVAILABLE.
    session.stats.readFallbacks++;
    return undefined;
  }
  const body = { key, ...options };
  // Replicas that stay silent (cut off, and no failure detector has noticed yet) must not use up
  // the whole deadline: after a share of it the read goes to a coordinator, which asks spares of
  // the preference list in their place (actors/coordinator.core.ts, fallbackWait). Only the
  // key's targets answer a replica read, so the client cannot ask the spares itself.
  const now = performance.now();
  const replicasUntil = Math.min(deadlineAt, now + Math.max(fallbackWaitMsDefault, (deadlineAt - now) / 3));
  const outcome = await session.hedged<DvvSet | null>('local.get', order, r, body, deadlineAt, session.readDelay, (env) => {
    const state = (env as ApiLocalGetOk).state;
    return state === null || checkDvvSet(state) ? { kind: 'ok', value: state } : badAnswer('api.local.get');
  }, true, replicasUntil);
  if (!outcome.ok) {
    if (outcome.why === 'final') throw session.failure('get', outcome, options.timeoutMs);
    if (outcome.why === 'deadline' && replicasUntil >= deadlineAt) throw session.failure('get', outcome, options.timeoutMs);
    session.stats.readFallbacks++;
    return undefined;
  }
  const states = outcome.answers.map(([, s]) => s ?? []);
  // A replica's state is screened as a node would screen it (src/core/version-check.ts), so a
  // poisoned replica cannot hand out a context ringkv refuses; it then differs from the merge, and
  // the coordinated get below repairs it.
  const merged = states.reduce((acc, s) => sync(acc, screenState(s, defaultVersionBounds).state), [] as DvvSet);
  if (states.every((s) => equal(s, merged))) {
    session.stats.clientDrivenReads++;
    return readResultOf(merged);
  }
  // A replica is behind. A coordinated get answers the merge of what the replicas hold and sends
  // the ones that lack part of it read repair; should it fail, the merge of R answers is itself a
  // correct quorum read.
  session.stats.readFallbacks++;
  try {
    return await ports.coordinatedGet(key, body, deadlineAt);
  } catch {
    return readResultOf(merged);
  }
}

function badAnswer(kind: string): Judgement<never> {
  return { kind: 'next', error: new RingkvError('INTERNAL', `a node answered ${kind} with a malformed state`) };
}
