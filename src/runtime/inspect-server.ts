/**
 * Serves the inspection protocol (inspect-protocol.ts) on a node's `inspect` role, over whatever
 * Transport the node has: NATS in production, the SimNetwork in simulation. Follow records stream
 * to the reply address of the follow request. Correlation notices (`inspect.correlate`) go to peers'
 * `inspect-peer` role, a node subject (sealed, members only, and one NATS permissions keep admins
 * off), not to `inspect`, where admins may publish: an admin holding the secret could otherwise fill
 * another node's session with coordinators it never traced. They travel on the same transport as the
 * replica requests they precede, which keeps them in order. Each role takes only its own kinds.
 */
import type { Log } from '../ports/log.js';
import type { Inbound, Transport } from '../ports/transport.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { ErrorBody } from '../protocol/errors.js';
import { checkCorrelate, checkFollow, checkSessionBody, checkSnapshot, inspectLimits } from './inspect-protocol.js';
import { InspectTap, type TapDeps } from './inspect-tap.js';

export interface InspectServerStats {
  requests: number;
  /** Inspect messages that were malformed, or needed a reply address and had none. */
  dropped: number;
  /** Inspect requests refused (UNAUTHENTICATED) or dropped because they were not sealed by a member or an admin. */
  unauthenticated: number;
  /** Kinds that arrived on the other inspection role: an inspect.correlate on `inspect`, an admin request on `inspect-peer`. Dropped. */
  wrongRole: number;
}

export interface InspectServer {
  tap: InspectTap;
  stats: InspectServerStats;
  handle(msg: Inbound): void;
}

export interface InspectServerDeps {
  nodeId: string;
  transport: Transport;
  clock: TapDeps['clock'];
  log: Log;
}

export function createInspectServer(deps: InspectServerDeps): InspectServer {
  const { nodeId, transport, log } = deps;
  const stats: InspectServerStats = { requests: 0, dropped: 0, unauthenticated: 0, wrongRole: 0 };

  const envelope = (kind: string, to: string, reqId: string, body: unknown) => encodeEnvelope({ v: protocolVersion, kind, from: nodeId, to, reqId, body });

  const tap = new InspectTap({
    nodeId,
    clock: deps.clock,
    correlate: (peer, session, origin, reqId) => transport.send(peer, 'inspect-peer', envelope('inspect.correlate', peer, '', { session, origin, reqId })),
    onError: (err) => log.error('inspection observer failed', { err }),
  });

  const handle = (msg: Inbound): void => {
    stats.requests++;
    const replyTo = msg.replyTo;
    if (msg.sealRefused !== undefined) {
      stats.unauthenticated++;
      const claimed = decodeEnvelope(msg.bytes);
      const to = typeof claimed === 'string' ? '' : claimed.from;
      const reqId = typeof claimed === 'string' ? '' : claimed.reqId;
      if (replyTo !== undefined) {
        transport.reply(replyTo, envelope('error', to, reqId, { code: 'UNAUTHENTICATED', message: `the request's seal was refused (${msg.sealRefused}): is this the cluster's secret?` }));
      }
      return;
    }
    const env = decodeEnvelope(msg.bytes);
    const fail = (to: string, reqId: string, error: ErrorBody) => {
      if (replyTo === undefined) stats.dropped++;
      else transport.reply(replyTo, envelope('error', to, reqId, error));
    };
    if (typeof env === 'string') return fail('', '', { code: 'BAD_REQUEST', message: env });
    // Node to node, only inspect.correlate, and it only there (the member gate let nothing unsealed onto inspect-peer).
    if ((msg.role === 'inspect-peer') !== (env.kind === 'inspect.correlate')) {
      stats.wrongRole++;
      if (msg.role === 'inspect-peer' || replyTo === undefined) return;
      return fail(env.from, env.reqId, { code: 'WRONG_SUBJECT', message: `${env.kind} is not taken on the inspect role: it is node to node traffic` });
    }
    // Sessions cost the node work and show its internals: only for requests sealed with the cluster
    // secret (members, and the admin CLI holding the secret; src/runtime/inspect-client.ts). The
    // member gate has already dropped a message whose seal failed.
    if (msg.member !== true) {
      stats.unauthenticated++;
      return fail(env.from, env.reqId, {
        code: 'UNAUTHENTICATED',
        message: 'inspection needs the cluster secret: give the CLI --cluster-secret-file (or RINGKV_CLUSTER_SECRET_FILE / RINGKV_CLUSTER_SECRET)',
      });
    }
    const answer = (kind: string, body: unknown) => {
      if (replyTo !== undefined) transport.reply(replyTo, envelope(kind, env.from, env.reqId, body));
    };

    switch (env.kind) {
      case 'inspect.snapshot': {
        const checked = checkSnapshot(env.body);
        if (!checked.ok) return fail(env.from, env.reqId, checked.error);
        if (replyTo === undefined) return void stats.dropped++;
        return answer('inspect.snapshot.ok', tap.snapshot(checked.value.actor));
      }
      case 'inspect.follow': {
        const checked = checkFollow(env.body);
        if (!checked.ok) return fail(env.from, env.reqId, checked.error);
        if (replyTo === undefined) return fail(env.from, env.reqId, { code: 'BAD_REQUEST', message: 'inspect.follow needs a reply address to stream to' });
        const stream = replyTo;
        const opened = tap.follow(checked.value, {
          records: (m) => transport.reply(stream, envelope('inspect.records', env.from, env.reqId, m)),
          end: (m) => transport.reply(stream, envelope('inspect.end', env.from, env.reqId, m)),
        });
        if (!opened.ok) return fail(env.from, env.reqId, opened.error);
        log.info('inspection session opened', { session: checked.value.session, request: checked.value.request, durationMs: checked.value.durationMs });
        return answer('inspect.follow.ok', { session: checked.value.session, node: nodeId, durationMs: checked.value.durationMs, limits: inspectLimits });
      }
      case 'inspect.stop': {
        const checked = checkSessionBody(env.body);
        if (!checked.ok) return fail(env.from, env.reqId, checked.error);
        const stopped = tap.stop(checked.value.session, 'stopped');
        return answer('inspect.stop.ok', { session: checked.value.session, stopped });
      }
      case 'inspect.correlate': {
        const checked = checkCorrelate(env.body);
        if (!checked.ok) return void stats.dropped++;
        tap.correlate(checked.value.session, checked.value.origin, checked.value.reqId);
        return;
      }
      default:
        return fail(env.from, env.reqId, { code: 'BAD_REQUEST', message: `unknown inspect kind "${env.kind}"` });
    }
  };

  return { tap, stats, handle };
}
