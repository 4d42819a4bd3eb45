/**
 * The error a client reports for a request no node answered well: what the nodes said, else what
 * the client saw (a deadline, a dropped connection, no responders).
 */
import type { HedgedOutcome } from './hedged-request.js';
import { RingkvError } from './errors.js';

/** When no node could give a good answer, which of their errors says most. */
const errorRank = ['UNAVAILABLE', 'TIMEOUT', 'OVERLOADED', 'NOT_OWNER', 'INTERNAL', 'NOT_READY'];

export function failureOf(op: string, outcome: Extract<HedgedOutcome<unknown>, { ok: false }>, timeoutMs: number, cluster: string, connectionClosed: boolean): RingkvError {
  const isWrite = op === 'put' || op === 'del';
  if (outcome.why === 'final') return outcome.errors.at(-1)!;
  if (outcome.why === 'deadline') {
    const got = outcome.answers.length > 0 ? ` (${outcome.answers.length} replicas answered in time)` : '';
    return new RingkvError(
      'TIMEOUT',
      isWrite
        ? `no answer within ${timeoutMs} ms${got}; the ${op === 'del' ? 'delete' : 'write'} may or may not have been applied`
        : `no answer within ${timeoutMs} ms${got}`,
    );
  }
  // A write that a coordinator timed out on, or whose answer was lost with the connection, may
  // have been applied: saying UNAVAILABLE (not applied) for it would mislead.
  if (isWrite) {
    const timedOut = outcome.errors.filter((x) => x.code === 'TIMEOUT').at(-1);
    if (timedOut) return timedOut;
    if (outcome.lost > 0) {
      return new RingkvError('TIMEOUT', `the connection to NATS dropped while the ${op === 'del' ? 'delete' : 'write'} was in flight and no node answered it again; it may or may not have been applied`);
    }
  }
  for (const code of errorRank) {
    const e = outcome.errors.filter((x) => x.code === code).at(-1);
    if (e) return e;
  }
  if (outcome.gone.length > 0) {
    const where = outcome.gone.includes('') ? 'for its API' : `for nodes ${[...new Set(outcome.gone)].join(', ')}`;
    return new RingkvError('NO_CLUSTER', `no ringkv node is serving cluster "${cluster}" (NATS has no responders ${where})`);
  }
  // Only a closed connection leaves nothing to ask before the deadline; say so only when it is.
  if (connectionClosed) return new RingkvError('NO_CLUSTER', `the request could not be sent: the connection to NATS is closed`);
  return new RingkvError('NO_CLUSTER', `no ringkv node of cluster "${cluster}" could be asked (every candidate failed without an answer)`);
}
