/**
 * The member gate: the first thing every inbound message meets, before the router or the inspect
 * server decodes anything of it (issue 17, items 2 and 4). It checks the seal (src/protocol/seal.ts)
 * against the subject the message arrived on:
 *
 * - sealed by a member of this cluster: passed on as the payload inside, marked `member: true`;
 * - unsigned on a role that takes non-members (api: client requests; admin: operators' requests, which
 *   NATS permissions guard; inspect: admin requests, which
 *   the inspect server refuses sessions to unless sealed): passed on as is, `member: false`;
 * - anything else (unsigned on replica, handoff, aae, gossip, forward or inspect-peer; a wrong mac; a seal of another
 *   cluster; a seal outside the time window; a mangled frame): dropped, counted per role and reason
 *   (ringkv_messages_unauthenticated_total) and logged at warn with its claimed sender and kind.
 *
 * - sealed by a member but taken before (its id: sender and counter, src/core/replay-guard.ts), sealed
 *   before this node started (it cannot know what it took before), a forward whose reply subject is
 *   not under the seal, or a new sender when the guard is full: dropped before anything of it is
 *   decoded, counted per role and reason (ringkv_messages_replayed_total), logged like the others.
 *   One map lookup and a bit per sealed message: the request path's only new cost.
 *
 * The logs are rate-limited per reason (`warnEveryMs`), each line saying how many were suppressed
 * since the last, so a flood of forged messages cannot fill the disk or drown the log. A seal of
 * another cluster id gets a warning of its own: it means another cluster with this name shares this
 * NATS (or a node has the wrong secret), which the operator must hear about.
 */
import type { Log } from '../ports/log.js';
import type { Inbound } from '../ports/transport.js';
import { batchKind } from '../protocol/batch.js';
import { decodeEnvelope } from '../protocol/envelope.js';
import { isSealed, openSealed, sealedPayloadUnchecked, sealWindowMs, type SealFailure, type SealKey } from '../protocol/seal.js';
import { ReplayGuard } from '../core/replay-guard.js';

/** At most one warning per reason this often; the rest are counted and reported with the next one. */
export const warnEveryMs = 10_000;

export interface GateStats {
  /** Messages dropped by the gate, by `${role}/${reason}` (reason: a SealFailure). */
  unauthenticated: Record<string, number>;
  /** Of those, the ones sealed with another cluster's id. */
  foreignCluster: number;
  /** Messages that passed as a member's. */
  authenticated: number;
  /**
   * Members' messages dropped as possible replays, by `${role}/${reason}` (reason: replayed,
   * before-start, reply-unbound, full): not counted in `unauthenticated`, their seal held.
   */
  replayed: Record<string, number>;
  /** Senders the replay guard remembers now. */
  replaySenders: number;
}

export interface MemberGateDeps {
  key: SealKey;
  clusterName: string;
  now: () => number;
  log: Log;
  stats: GateStats;
}

/** Roles whose unsigned messages are passed on (as non-members'); every other role is members only. */
// admin: operators' requests, guarded by NATS permissions on the admin subjects (README, Security).
const openRoles: ReadonlySet<string> = new Set(['api', 'admin', 'inspect']);
/** Refusals of a message whose seal held (counted in `replayed`, not `unauthenticated`). */
const replayReasons: ReadonlySet<SealFailure> = new Set<SealFailure>(['replayed', 'before-start', 'reply-unbound', 'replay-full']);

export function newGateStats(): GateStats {
  return { unauthenticated: {}, foreignCluster: 0, authenticated: 0, replayed: {}, replaySenders: 0 };
}

export function createMemberGate(deps: MemberGateDeps): (msg: Inbound) => Inbound | undefined {
  const { key, stats, log } = deps;
  const lastWarnAt = new Map<string, number>();
  const suppressed = new Map<string, number>();

  // Whatever a member sealed before this moment may have been taken by the process this one replaces.
  const guard = new ReplayGuard(deps.now(), sealWindowMs);

  const refuse = (msg: Inbound, reason: SealFailure, claimedCluster?: string): undefined => {
    const slot = `${msg.role}/${reason}`;
    const counts = replayReasons.has(reason) ? stats.replayed : stats.unauthenticated;
    counts[slot] = (counts[slot] ?? 0) + 1;
    if (reason === 'other-cluster') stats.foreignCluster++;
    const now = deps.now();
    const last = lastWarnAt.get(reason);
    if (last !== undefined && now - last < warnEveryMs) {
      suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
      return undefined;
    }
    lastWarnAt.set(reason, now);
    const skipped = suppressed.get(reason) ?? 0;
    suppressed.delete(reason);
    // Decoded only to say what it claimed, and only for the one message a window that is logged.
    const claimed = claimOf(isSealed(msg.bytes) ? sealedPayloadUnchecked(msg.bytes) : msg.bytes);
    const fields = { role: msg.role, reason, ...claimed, ...(msg.subject !== undefined ? { subject: msg.subject } : {}), suppressedSinceLastWarn: skipped };
    if (reason === 'other-cluster') {
      log.warn(`another cluster named ${deps.clusterName} shares this NATS (or a node has the wrong cluster secret): dropped its message`, {
        ...fields,
        claimedClusterId: claimedCluster,
        clusterId: key.clusterId,
      });
    } else if (replayReasons.has(reason)) {
      log.warn("dropped a member's sealed message that may be a replay (its id was taken before, it was sealed before this node started, or its reply subject is not sealed)", fields);
    } else {
      log.warn('dropped a message not sealed by a member of this cluster', fields);
    }
    return undefined;
  };

  return (msg: Inbound): Inbound | undefined => {
    if (!isSealed(msg.bytes)) {
      if (openRoles.has(msg.role)) return { ...msg, member: false };
      return refuse(msg, 'unsigned');
    }
    const now = deps.now();
    const opened = openSealed(key, msg.subject ?? '', msg.bytes, now, msg.replyTo);
    if (!opened.ok) {
      refuse(msg, opened.reason, opened.clusterId);
      // Whoever waits for an answer on a role that takes non-members is told instead of left to time
      // out: an admin with the wrong secret gets UNAUTHENTICATED from the inspect server, a client
      // whose request merely starts with the seal's byte gets BAD_REQUEST from the router. Neither
      // grants anything to a message that is no member's.
      if (!openRoles.has(msg.role) || msg.replyTo === undefined) return undefined;
      if (msg.role === 'api' || msg.role === 'admin') return { ...msg, member: false, sealRefused: opened.reason };
      const inner = sealedPayloadUnchecked(msg.bytes);
      return inner === undefined ? undefined : { ...msg, bytes: inner, member: false, sealRefused: opened.reason };
    }
    // A forward's answer goes to its reply subject: a forward must carry it under the seal, or a
    // listener could race the copy it made, with its own reply subject, ahead of the original.
    if (msg.role === 'forward' && !opened.replyBound) return refuse(msg, 'reply-unbound');
    const verdict = guard.admit(opened.sender, opened.counter, opened.sentAtMs, now);
    stats.replaySenders = guard.size;
    if (verdict !== 'fresh') return refuse(msg, verdict === 'full' ? 'replay-full' : verdict);
    stats.authenticated++;
    return { ...msg, bytes: opened.payload, member: true };
  };
}

function claimOf(bytes: Uint8Array | undefined): { claimedFrom?: string; claimedKind?: string } {
  if (bytes === undefined) return {};
  const env = decodeEnvelope(bytes);
  if (typeof env === 'string') return { claimedKind: 'undecodable' };
  return { claimedFrom: env.from.slice(0, 64), claimedKind: env.kind === batchKind ? 'batch' : env.kind.slice(0, 64) };
}
