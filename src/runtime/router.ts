/**
 * The envelope router: every inbound message is decoded and validated here, before any actor sees
 * it (DESIGN.md §5). Client requests become typed node events (context decoded, options checked);
 * a bad client request is answered with an error code at once; a bad internal message is dropped
 * and counted. Nothing that arrives can make an actor throw.
 */
import type { NodeEvent } from '../../actors/node.events.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { ErrorBody } from '../protocol/errors.js';
import type { Limits } from '../protocol/limits.js';
import { batchItems, batchKind } from '../protocol/batch.js';
import { checkDvvSet, isBytes } from '../protocol/validation.js';
import { decode } from '../protocol/codec.js';
import { type ClusterOp, adminKinds, clientKinds, forwardKinds, replicaAnswerKinds, replicaRequestKinds } from '../protocol/messages.js';
import type { GossipBody, GossipClaimBody } from '../../actors/gossip.events.js';
import { checkAaeBody, checkClaimRequest, checkReapBody, checkClientBody, checkGossipBody, checkHandoffBody, checkReplicaBody, decodeContext, replicaPutOfItem } from '../protocol/validation.js';
import { answersOnRole, type Inbound, type Role, type Transport } from '../ports/transport.js';
import { kindMatchesSubject } from '../protocol/subjects.js';
import type { Log } from '../ports/log.js';
import type { DvvSet } from '../core/dvv.js';
import { screenState } from '../core/version-check.js';

export interface RouterStats {
  received: number;
  /** Internal messages dropped because they failed validation. */
  droppedInvalid: number;
  /** Client requests answered with BAD_REQUEST, TOO_LARGE or WRONG_SUBJECT by the router. */
  rejected: number;
  /**
   * Requests whose kind belongs to another role than the subject they came on (an admin kind on a
   * client subject, a client kind on the admin subject, anything but a coordinated request or a
   * status on the forward role): answered WRONG_SUBJECT where a reply address waits, else dropped. Also counted in
   * `rejected` or `droppedInvalid`.
   */
  wrongSubject?: number;
  /** Batch envelopes unpacked (src/protocol/batch.ts); their items count in `received` one by one. */
  batches?: number;
  /**
   * Entries of versions from peers that were refused (src/core/version-check.ts): a counter ringkv
   * could not have issued, or a history past its bound. The rest of each version is kept.
   */
  versionsRefused?: number;
}

export interface RouterDeps {
  nodeId: string;
  q: number;
  limits: Limits;
  transport: Transport;
  deliver: (event: NodeEvent) => void;
  stats: RouterStats;
  /** Stamps gossip arrivals for the failure detector. */
  now: () => number;
  /** Where refused versions are reported (warn); silent without one. */
  log?: Log;
  /**
   * Takes the tombstone reaper's messages (reap.*, on the aae role; src/runtime/reaper-io.ts),
   * validated, without an actor: the reaper is plain I/O around a pure core. Without it they drop.
   */
  reap?: (kind: string, from: string, reqId: string, body: unknown) => void;
}

/** The request kinds each answering role takes (src/protocol/messages.ts). */
const kindsByRole: Partial<Record<Role, ReadonlySet<string>>> = {
  api: new Set<string>(clientKinds),
  admin: new Set<string>(adminKinds),
  forward: new Set<string>(forwardKinds),
};
const anyRequestKind = new Set<string>([...clientKinds, ...adminKinds]);
const replicaKindSet = new Set<string>([...replicaRequestKinds, ...replicaAnswerKinds]);

export function createRouter(deps: RouterDeps): (msg: Inbound) => void {
  const { nodeId, transport, stats, deliver } = deps;

  const reject = (replyTo: string, to: string, reqId: string, body: ErrorBody) => {
    stats.rejected++;
    transport.reply(replyTo, encodeEnvelope({ v: protocolVersion, kind: 'error', from: nodeId, to, reqId, body }));
  };

  const bounds = { counterMax: deps.limits.counterMax, historyEntriesMax: deps.limits.historyEntriesMax };

  /**
   * Every version a peer sends (replication, read answers, hints, transfers, anti-entropy) is
   * screened here, in place, before any actor sees it: what ringkv could not have issued is refused
   * entry by entry, counted and logged with the key's partition, and the rest goes on. The message
   * itself is never dropped for it, so the key keeps converging on what every replica accepts.
   */
  const screenVersions = (kind: string, from: string, body: Record<string, unknown>): void => {
    let refused = 0;
    let reason: string | null = null;
    const partitions = new Set<number>();
    const screen = (state: DvvSet, p: unknown): DvvSet => {
      const out = screenState(state, bounds);
      if (out.refused > 0) {
        refused += out.refused;
        reason = out.reason;
        if (typeof p === 'number') partitions.add(p);
      }
      return out.state;
    };
    if (kind === 'replica.put' || kind === 'replica.get.ok' || kind === 'replica.coordinate.ok') {
      if (Array.isArray(body.state)) {
        const screened = screen(body.state as DvvSet, body.p);
        // The bytes it arrived as are no longer this state: the replica encodes what it keeps.
        if (screened !== body.state) delete body.encoded;
        body.state = screened;
      }
    } else if (kind === 'handoff.batch' || kind === 'handoff.transfer') {
      for (const item of body.items as { p: number; state: DvvSet }[]) item.state = screen(item.state, item.p);
    } else if (kind === 'aae.put' || kind === 'aae.segment.ok') {
      // aae.segment.ok does not name its partition: the exchange that asked for it knows it.
      for (const object of body.objects as [Uint8Array, DvvSet][]) object[1] = screen(object[1], body.p);
    }
    if (refused === 0) return;
    stats.versionsRefused = (stats.versionsRefused ?? 0) + refused;
    deps.log?.warn('refused part of a version from a peer', { from, kind, partitions: [...partitions], refused, reason });
  };

  const route = (msg: Inbound): void => {
    // A client request the member gate could not open as a seal (src/runtime/member-gate.ts): not
    // decoded, refused as a whole.
    if (msg.sealRefused !== undefined) {
      stats.received++;
      if (msg.replyTo !== undefined) reject(msg.replyTo, '', '', { code: 'BAD_REQUEST', message: `the message starts with the seal byte 0xc1 but its seal was refused (${msg.sealRefused}): clients send plain envelopes` });
      return;
    }
    const env = decodeEnvelope(msg.bytes);
    // A batch from a peer, or a client's batch on the api role: every item is routed as if it had
    // arrived alone (decoded, validated and counted on its own), so one bad item never drops or fails
    // the others. A client batch has one reply address for all its items; each answer carries its
    // item's reqId, which is how the client matches it. A batch inside a batch fails its role's
    // validation like any unknown kind (on the api role: BAD_REQUEST with the inner batch's reqId).
    if (typeof env !== 'string' && env.kind === batchKind) {
      const items = batchItems(env.body);
      if (typeof items === 'string') {
        stats.received++;
        if (answersOnRole(msg.role) && msg.replyTo !== undefined) return reject(msg.replyTo, env.from, env.reqId, { code: 'BAD_REQUEST', message: items });
        stats.droppedInvalid++;
        return;
      }
      stats.batches = (stats.batches ?? 0) + 1;
      for (const item of items) {
        // Each item keeps the batch's subject: its kind is checked against the operation it names.
        if (isBytes(item)) routeOne({ role: msg.role, bytes: item, subject: msg.subject, ...(msg.replyTo !== undefined ? { replyTo: msg.replyTo } : {}) }, decodeEnvelope(item));
        else if (answersOnRole(msg.role) && msg.replyTo !== undefined) {
          stats.received++;
          reject(msg.replyTo, env.from, '', { code: 'BAD_REQUEST', message: 'a batch item must be the bytes of one envelope' });
        } else {
          stats.received++;
          stats.droppedInvalid++;
        }
      }
      return;
    }
    routeOne(msg, env);
  };

  const routeOne = (msg: Inbound, env: ReturnType<typeof decodeEnvelope>): void => {
    stats.received++;
    if (answersOnRole(msg.role)) {
      // A request without a reply address cannot be answered: nobody waits for it.
      if (msg.replyTo === undefined) {
        stats.droppedInvalid++;
        return;
      }
      if (typeof env === 'string') return reject(msg.replyTo, '', '', { code: 'BAD_REQUEST', message: env });
      if (!kindsByRole[msg.role]!.has(env.kind)) {
        // Node traffic: a node never forwards anything else, so this one is forged; dropped.
        if (msg.role === 'forward') {
          stats.wrongSubject = (stats.wrongSubject ?? 0) + 1;
          stats.droppedInvalid++;
          return;
        }
        if (!anyRequestKind.has(env.kind)) return reject(msg.replyTo, env.from, env.reqId, { code: 'BAD_REQUEST', message: `unknown request kind "${env.kind}"` });
        // The subject is what a NATS permission allows: a kind of another role on it is refused,
        // whatever its body, so a client permission never buys an admin operation.
        stats.wrongSubject = (stats.wrongSubject ?? 0) + 1;
        const where = adminKinds.includes(env.kind as never) ? 'the admin subjects (ringkv.<cluster>.admin.<op>, ringkv.<cluster>.node.<id>.admin.<op>)' : 'the client subjects (ringkv.<cluster>.api.<op>, ringkv.<cluster>.node.<id>.api.<op>)';
        return reject(msg.replyTo, env.from, env.reqId, { code: 'WRONG_SUBJECT', message: `${env.kind} is not taken on the ${msg.role} role: send it on ${where}` });
      }
      // The operation is bound to its subject too (api.put only on ...api.put), so that a permission
      // on one operation's subject grants that operation alone. The simulator gives no subject.
      if (msg.role !== 'forward' && msg.subject !== undefined && !kindMatchesSubject(msg.role as 'api' | 'admin', env.kind, msg.subject)) {
        stats.wrongSubject = (stats.wrongSubject ?? 0) + 1;
        return reject(msg.replyTo, env.from, env.reqId, { code: 'WRONG_SUBJECT', message: `${env.kind} is not taken on ${msg.subject}: send it on the subject of its operation (${msg.role === 'admin' ? 'ringkv.<cluster>.admin.' : 'ringkv.<cluster>.api.'}${env.kind.slice(4)} or ringkv.<cluster>.node.<id>.${msg.role}.${env.kind.slice(4)})` });
      }
      const checked = checkClientBody(env.kind, env.body, deps.limits);
      if (!checked.ok) return reject(msg.replyTo, env.from, env.reqId, { code: checked.code, message: checked.message });
      const body = checked.value;
      const base = { from: env.from, reqId: env.reqId, replyTo: msg.replyTo };
      if (env.kind === 'api.status' || env.kind === 'api.hints' || env.kind === 'api.transfers') return deliver({ type: env.kind, ...base });
      if (env.kind === 'api.aae') return deliver({ type: 'api.aae', ...base, op: body.op as 'status' | 'pause' | 'resume' });
      if (env.kind === 'api.backup') return deliver({ type: 'api.backup', ...base, dir: body.dir as string });
      if (env.kind === 'api.cluster') {
        return deliver({ type: 'api.cluster', ...base, op: body.op as ClusterOp, ...(typeof body.node === 'string' ? { node: body.node } : {}) });
      }
      const request = {
        ...base,
        key: body.key as Uint8Array,
        options: {
          n: num(body.n),
          r: num(body.r),
          w: num(body.w),
          pw: num(body.pw),
          pr: num(body.pr),
          sloppy: typeof body.sloppy === 'boolean' ? body.sloppy : undefined,
          timeoutMs: num(body.timeoutMs),
        },
        // On the forward role a node passed it on: it is never forwarded again. A client may set the
        // flag too, which only takes away the forwarding it would otherwise get.
        forwarded: body.forwarded === true || msg.role === 'forward',
        bytes: msg.bytes,
      };
      if (env.kind === 'api.get') return deps.deliver({ type: 'api.get', ...request });
      if (env.kind === 'api.local.get') return deps.deliver({ type: 'api.local.get', ...request });
      const context = decodeContext(body.context as Uint8Array | null | undefined, deps.limits);
      if (!context.ok) return reject(msg.replyTo, env.from, env.reqId, { code: context.code, message: context.message });
      const value = env.kind === 'api.put' ? (body.value as Uint8Array) : null;
      return deps.deliver({ type: env.kind as 'api.put' | 'api.del', ...request, value, context: context.value });
    }
    if (msg.role === 'replica') {
      if (typeof env === 'string' || !replicaKindSet.has(env.kind) || !checkReplicaBody(env.kind, env.body, deps.q)) {
        stats.droppedInvalid++;
        return;
      }
      if (env.kind === 'replica.put.acks') {
        // One group commit's acks: the coordinator takes one replica.put.ok per request.
        for (const reqId of (env.body as { reqIds: string[] }).reqIds) deliver({ type: 'replica.put.ok', from: env.from, reqId, body: emptyBody });
        return;
      }
      if (env.kind === 'replica.puts') {
        // A turn's replica.put requests from one coordinator: each item checked and routed alone.
        for (const item of (env.body as { items: unknown[] }).items) {
          const put = replicaPutOfItem(item, deps.q);
          if (put === undefined || !takeEncodedState(put.body as Record<string, unknown>)) {
            stats.droppedInvalid++;
            continue;
          }
          screenVersions('replica.put', env.from, put.body as Record<string, unknown>);
          deliver({ type: 'replica.put', from: env.from, reqId: put.reqId, body: put.body } as unknown as NodeEvent);
        }
        return;
      }
      if (env.kind === 'replica.put' && !takeEncodedState(env.body as Record<string, unknown>)) {
        stats.droppedInvalid++;
        return;
      }
      screenVersions(env.kind, env.from, env.body as Record<string, unknown>);
      return deliver({ type: env.kind, from: env.from, reqId: env.reqId, body: env.body } as NodeEvent);
    }
    if (msg.role === 'gossip') {
      if (typeof env === 'string' || (env.kind !== 'gossip.digest' && env.kind !== 'gossip.digest.ok' && env.kind !== 'gossip.claim') || !checkGossipBody(env.body)) {
        stats.droppedInvalid++;
        return;
      }
      if (env.kind === 'gossip.claim') {
        if (!checkClaimRequest((env.body as { request?: unknown }).request)) {
          stats.droppedInvalid++;
          return;
        }
        return deliver({ type: 'gossip.claim', from: env.from, reqId: env.reqId, body: env.body as GossipClaimBody, now: deps.now() });
      }
      const body = env.body as GossipBody;
      return deliver({ type: env.kind, from: env.from, reqId: env.reqId, body, now: deps.now() });
    }
    if (msg.role === 'handoff') {
      if (typeof env === 'string' || !checkHandoffBody(env.kind, env.body, deps.q)) {
        stats.droppedInvalid++;
        return;
      }
      screenVersions(env.kind, env.from, env.body as Record<string, unknown>);
      // A peer's transfer batch is stamped with its arrival: inbound transfer slots expire by it.
      if (env.kind === 'handoff.transfer') return deliver({ type: env.kind, from: env.from, reqId: env.reqId, body: env.body, now: deps.now() } as NodeEvent);
      return deliver({ type: env.kind, from: env.from, reqId: env.reqId, body: env.body } as NodeEvent);
    }
    if (msg.role === 'aae' && typeof env !== 'string' && env.kind.startsWith('reap.')) {
      if (!deps.reap || !checkReapBody(env.kind, env.body, deps.q, deps.limits)) {
        stats.droppedInvalid++;
        return;
      }
      // Not screened: a reap message's states are never stored, only compared with a stored one
      // (dvv.equal), so at worst a bad one matches nothing and nothing is reaped.
      return deps.reap(env.kind, env.from, env.reqId, env.body);
    }
    if (msg.role === 'aae') {
      if (typeof env === 'string' || !checkAaeBody(env.kind, env.body, deps.q, deps.limits)) {
        stats.droppedInvalid++;
        return;
      }
      screenVersions(env.kind, env.from, env.body as Record<string, unknown>);
      // The envelope's size: exchanges pace themselves by the bytes of each round trip.
      return deliver({ type: env.kind, from: env.from, reqId: env.reqId, body: env.body, bytes: msg.bytes.length } as NodeEvent);
    }
    stats.droppedInvalid++;
  };
  return route;
}

/**
 * A replica.put's state arrives encoded (bin: the coordinator encodes a new state once for every
 * replica it goes to, and the replica keeps these bytes as they are when its merge is that state):
 * decoded here, checked as a DVV set, and the bytes kept beside it as `encoded`. A state sent as a
 * set (an older node) is taken as it is. `encoded` is only ever what this function sets. False: the
 * bytes are no DVV set; the message is dropped.
 */
function takeEncodedState(body: Record<string, unknown>): boolean {
  // Only what a peer put there itself: a delete on every body would cost every replica.put.
  if ('encoded' in body) delete body.encoded;
  if (!(body.state instanceof Uint8Array)) return true;
  const bytes = body.state;
  let state: unknown;
  try {
    state = decode(bytes);
  } catch {
    return false;
  }
  if (!checkDvvSet(state)) return false;
  body.state = state;
  body.encoded = bytes;
  return true;
}

/** The body of every replica.put.ok an acks message stands for: nothing in it, shared. */
const emptyBody: Record<string, never> = Object.freeze({}) as Record<string, never>;

function num(x: unknown): number | undefined {
  return typeof x === 'number' ? x : undefined;
}
