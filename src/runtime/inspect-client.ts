/**
 * The watching side of the inspection protocol, over a NATS connection: a node's snapshot, a follow
 * stream, and `trace`, which runs one client request with tracing on at every node and explains
 * its path: the node that received it, any forward, the coordinator and its preference list, which
 * replicas were asked and which answered, the answer, and read repair.
 *
 * Used by `ringkv inspect` and `ringkv trace`, and by tests.
 */
import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { inboxPrefixOf } from '../adapters/nats/connection-options.js';
import { randomBytes } from 'node:crypto';
import { batchItems, batchKind } from '../protocol/batch.js';
import { decodeEnvelope, encodeEnvelope, type Envelope, protocolVersion } from '../protocol/envelope.js';
import type { ApiStatusOk } from '../protocol/messages.js';
import { apiSubject, nodeOpSubject, nodeSubject } from '../protocol/subjects.js';
import { seal, type SealKey } from '../protocol/seal.js';
import { permissionViolation } from '../client/connect-failure.js';
import type { EndMessage, FollowRequest, InspectRecord, RecordsMessage, SnapshotAnswer, Summary } from './inspect-protocol.js';

/** How long a node may take to answer a snapshot or to confirm a follow or a stop. */
export const inspectAnswerTimeoutMs = 2_000;
/** After a traced request is answered, how long late work (replicas, read repair) is still collected. */
export const traceSettleMsDefault = 300;
/** The most records one trace keeps. */
export const traceRecordsMax = 10_000;

export class InspectError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FollowHandle {
  /** Settles with the node's end message, or undefined when the stream was closed without one. */
  ended: Promise<EndMessage | undefined>;
  /** Asks the node to stop and waits (briefly) for its end message. */
  stop(): Promise<EndMessage | undefined>;
}

export interface FollowCallbacks {
  records(msg: RecordsMessage): void;
  error?(err: InspectError): void;
}

const text = new TextEncoder();

export class InspectClient {
  private seq = 0;
  readonly name = `ringkv-inspect-${randomBytes(4).toString('hex')}`;

  /**
   * `seal`: the cluster's seal key (the secret, and the id it gives for this cluster name). Requests
   * to a node's inspect role are sealed with it: nodes grant snapshots and follow sessions only to
   * sealed requests (an unsealed one gets UNAUTHENTICATED).
   */
  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly seal?: SealKey,
  ) {}

  /** A request for a node's inspect subject, sealed when this client holds the secret. */
  private inspectRequest(subject: string, bytes: Uint8Array): Uint8Array {
    return this.seal === undefined ? bytes : seal(this.seal, subject, bytes, Date.now());
  }

  private envelope(kind: string, to: string, body: unknown, reqId = String(++this.seq)): Uint8Array {
    return encodeEnvelope({ v: protocolVersion, kind, from: this.name, to, reqId, body });
  }

  private async request(subject: string, bytes: Uint8Array, timeoutMs: number): Promise<Envelope> {
    let reply;
    try {
      reply = await this.nc.request(subject, bytes, { timeout: timeoutMs });
    } catch (err) {
      const e = err as { name?: string; message?: string; isNoResponders?: () => boolean };
      if (typeof e.isNoResponders === 'function' && e.isNoResponders()) throw new InspectError('NO_CLUSTER', `nothing answers on ${subject}: is the node up?`);
      // Inspection is an admin operation: a user without the admin permissions is refused by NATS.
      if (permissionViolation(err)) throw new InspectError('NATS_PERMISSION', `NATS does not let this user publish to ${subject}: inspection needs the admin permissions`);
      throw new InspectError('TIMEOUT', `no answer on ${subject} within ${timeoutMs} ms (${e.message ?? String(err)})`);
    }
    const env = decodeEnvelope(reply.data);
    if (typeof env === 'string') throw new InspectError('INTERNAL', `bad answer on ${subject}: ${env}`);
    if (env.kind === 'error') {
      const body = env.body as { code?: string; message?: string };
      throw new InspectError(body.code ?? 'INTERNAL', body.message ?? 'error');
    }
    return env;
  }

  async snapshot(node: string, actor?: string): Promise<SnapshotAnswer> {
    const subject = nodeSubject(this.cluster, node, 'inspect');
    const env = await this.request(subject, this.inspectRequest(subject, this.envelope('inspect.snapshot', node, actor ? { actor } : {})), inspectAnswerTimeoutMs);
    return env.body as SnapshotAnswer;
  }

  async status(): Promise<ApiStatusOk> {
    const env = await this.request(apiSubject(this.cluster, 'status'), this.envelope('api.status', '', {}), inspectAnswerTimeoutMs);
    return env.body as ApiStatusOk;
  }

  /** Opens a follow session on one node; resolves once the node has confirmed it. */
  async follow(node: string, request: Omit<FollowRequest, 'session'> & { session?: string }, cb: FollowCallbacks): Promise<FollowHandle> {
    const session = request.session ?? `follow-${randomBytes(6).toString('hex')}`;
    // In this connection's inbox family: on a secured NATS the only one this user may subscribe to.
    const inbox = createInbox(inboxPrefixOf(this.nc));
    let confirm: ((env: Envelope) => void) | undefined;
    let endResolve!: (m: EndMessage | undefined) => void;
    const ended = new Promise<EndMessage | undefined>((r) => (endResolve = r));
    const confirmed = new Promise<Envelope>((r) => (confirm = r));
    const sub: Subscription = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return endResolve(undefined);
        // The node answers one inbox once per turn: several messages (records, then the end) come as one batch.
        for (const env of envelopesOf(msg.data)) take(env);
      },
    });
    const take = (env: Envelope) => {
      if (env.kind === 'inspect.records') cb.records(env.body as RecordsMessage);
      else if (env.kind === 'inspect.end') {
        endResolve(env.body as EndMessage);
        sub.unsubscribe();
      } else if (env.kind === 'inspect.follow.ok' || env.kind === 'error') confirm?.(env);
    };
    const subject = nodeSubject(this.cluster, node, 'inspect');
    this.nc.publish(subject, this.inspectRequest(subject, this.envelope('inspect.follow', node, { ...request, session })), { reply: inbox });
    const answer = await Promise.race([confirmed, sleep(inspectAnswerTimeoutMs).then(() => undefined)]);
    if (answer === undefined || answer.kind === 'error') {
      sub.unsubscribe();
      endResolve(undefined);
      const body = answer?.body as { code?: string; message?: string } | undefined;
      throw answer === undefined
        ? new InspectError('TIMEOUT', `node ${node} did not confirm the follow within ${inspectAnswerTimeoutMs} ms: is it up?`)
        : new InspectError(body?.code ?? 'INTERNAL', body?.message ?? 'error');
    }
    const stop = async () => {
      if (!this.nc.isClosed()) this.nc.publish(subject, this.inspectRequest(subject, this.envelope('inspect.stop', node, { session })));
      const end = await Promise.race([ended, sleep(inspectAnswerTimeoutMs).then(() => undefined)]);
      sub.unsubscribe();
      return end;
    };
    return { ended, stop };
  }

  /**
   * Runs one client request with tracing on at every member and collects what each node's actors
   * did for it. The request is sent like a client's (to the API queue group, or to `via`), with a
   * request id of its own so that every node can recognise it.
   */
  async trace(req: TraceRequest): Promise<TraceResult> {
    const members = req.members ?? (await this.status()).members.map((m) => m.nodeId);
    const id = randomBytes(6).toString('hex');
    const reqId = `trace-${id}`;
    const client = `ringkv-trace-${id}`;
    const records: InspectRecord[] = [];
    let dropped = 0;
    const durationMs = (req.timeoutMs ?? 5_000) + 5_000;

    const opened = await Promise.allSettled(
      members.map((node) =>
        this.follow(
          node,
          { session: reqId, request: reqId, client, peers: members, durationMs },
          {
            records: (m) => {
              dropped = Math.max(dropped, m.dropped);
              for (const r of m.records) if (records.length < traceRecordsMax) records.push(r);
            },
          },
        ),
      ),
    );
    const handles = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const unreached = members.filter((_, i) => opened[i]!.status === 'rejected');

    const body: Record<string, unknown> = { key: typeof req.key === 'string' ? text.encode(req.key) : req.key };
    if (req.op !== 'get') {
      body.value = req.op === 'del' ? null : typeof req.value === 'string' ? text.encode(req.value) : (req.value ?? new Uint8Array());
      if (req.context) body.context = req.context;
      else if (req.op === 'del') {
        // Like the client's delete: supersede what is there now, so read its context first (untraced).
        const got = await this.request(apiSubject(this.cluster, 'get'), this.envelope('api.get', '', { key: body.key }), (req.timeoutMs ?? 5_000) + 500);
        body.context = (got.body as { context?: Uint8Array }).context;
      }
    }
    for (const f of ['n', 'r', 'w', 'timeoutMs'] as const) if (req[f] !== undefined) body[f] = req[f];
    const subject = req.via ? nodeOpSubject(this.cluster, req.via, 'api', req.op) : apiSubject(this.cluster, req.op);
    const bytes = encodeEnvelope({ v: protocolVersion, kind: `api.${req.op}`, from: client, to: req.via ?? '', reqId, body });

    const started = performance.now();
    let answer: TraceAnswer;
    try {
      const reply = await this.nc.request(subject, bytes, { timeout: (req.timeoutMs ?? 5_000) + 500 });
      const env = decodeEnvelope(reply.data);
      if (typeof env === 'string') answer = { ok: false, kind: 'error', code: 'INTERNAL', message: env };
      else if (env.kind === 'error') {
        const e = env.body as { code: string; message: string };
        answer = { ok: false, kind: 'error', code: e.code, message: e.message };
      } else answer = { ok: true, kind: env.kind, body: env.body as Record<string, unknown> };
    } catch (err) {
      answer = { ok: false, kind: 'error', code: 'TIMEOUT', message: `no answer: ${(err as Error).message}` };
    }
    const latencyMs = performance.now() - started;

    await sleep(req.settleMs ?? traceSettleMsDefault);
    await Promise.all(handles.map((h) => h.stop()));

    records.sort((a, b) => a.t - b.t || a.node.localeCompare(b.node) || a.seq - b.seq);
    return { op: req.op, reqId, client, members, unreached, answer, latencyMs, records, dropped, summary: summarizeTrace(records, reqId) };
  }
}

export interface TraceRequest {
  op: 'put' | 'get' | 'del';
  key: string | Uint8Array;
  value?: string | Uint8Array;
  context?: Uint8Array;
  n?: number;
  r?: number;
  w?: number;
  timeoutMs?: number;
  /** Send to this node's api role rather than the API queue group. */
  via?: string;
  /** The nodes to trace on; default: the members api.status reports. */
  members?: string[];
  settleMs?: number;
}

export type TraceAnswer =
  | { ok: true; kind: string; body: Record<string, unknown> }
  | { ok: false; kind: 'error'; code: string; message: string };

export interface TraceResult {
  op: string;
  reqId: string;
  client: string;
  members: string[];
  /** Members that did not open a trace session (down, or not answering). */
  unreached: string[];
  answer: TraceAnswer;
  latencyMs: number;
  records: InspectRecord[];
  dropped: number;
  summary: TraceSummary;
}

export interface TraceSummary {
  /** Nodes whose root actor received the client request, in order. */
  receivedBy: string[];
  forwards: { node: string; to: string }[];
  coordinator?: {
    node: string;
    actor: string;
    op: string;
    partition: number | undefined;
    preferenceList: string[];
    /** The nodes it asked: healthy primaries, then fallbacks (sloppy quorum). */
    targets: string[];
    quorum: Summary;
  };
  /** Primaries left out because the coordinator believed them down. */
  skipped: string[];
  /** Fallbacks that stood in for a down primary, each keeping a hint for it. */
  fallbacks: { node: string; for: string }[];
  /** put: down primaries whose hints the coordinator's own replica kept. */
  hintsKeptLocally: string[];
  asked: string[];
  /** Replicas whose answer reached the coordinator, in arrival order, with the ms since its spawn. */
  answered: { node: string; kind: string; afterMs: number; code?: string }[];
  notAnswered: string[];
  /** The coordinator's answer to the client: kind and code. */
  clientAnswer?: { kind: string; code?: string; afterMs: number };
  /** get: replicas sent read repair (empty: none was needed); undefined for writes. */
  readRepair?: string[];
  /** The coordinator's states, in order. */
  states: string[];
}

function asStrings(x: Summary | undefined): string[] {
  return Array.isArray(x) ? x.filter((v): v is string => typeof v === 'string') : [];
}

function paramsList(params: Summary | undefined): Record<string, Summary>[] {
  if (Array.isArray(params)) return params.filter((p): p is Record<string, Summary> => typeof p === 'object' && p !== null && !Array.isArray(p));
  if (typeof params === 'object' && params !== null) return [params as Record<string, Summary>];
  return [];
}

/** Reads a request's path out of its trace records. */
export function summarizeTrace(records: InspectRecord[], reqId: string): TraceSummary {
  const summary: TraceSummary = { receivedBy: [], forwards: [], skipped: [], fallbacks: [], hintsKeptLocally: [], asked: [], answered: [], notAnswered: [], states: [] };
  // The request's start in the coordinator (a spawn in traces from older nodes).
  const spawn = records.find((r) => (r.kind === 'spawn' || r.kind === 'start') && r.machine === 'coordinator');
  for (const r of records) {
    const ev = r.event as Record<string, Summary> | undefined;
    if (r.kind === 'event' && r.actor === r.node && typeof ev?.type === 'string' && ev.type.startsWith('api.') && ev.reqId === reqId) {
      summary.receivedBy.push(r.node);
    }
    if (r.kind === 'action' && r.action === 'forward') {
      for (const p of paramsList(r.params)) if (typeof p.to === 'string') summary.forwards.push({ node: r.node, to: p.to });
    }
  }
  if (!spawn) return summary;
  const input = (spawn.input ?? {}) as Record<string, Summary>;
  const mine = (r: InspectRecord) => r.node === spawn.node && r.actor === spawn.actor;
  const preferenceList = asStrings(input.preferenceList);
  // Targets are {node, hintFor?}; older coordinators named the nodes they asked `alive`.
  const targetList = Array.isArray(input.targets) ? input.targets : [];
  const targets = targetList.length > 0 ? targetList.map((t) => String((t as Record<string, Summary>)?.node ?? t)) : asStrings(input.alive);
  for (const t of targetList) {
    const target = t as Record<string, Summary> | null;
    if (target && typeof target === 'object' && typeof target.hintFor === 'string') summary.fallbacks.push({ node: String(target.node), for: target.hintFor });
  }
  summary.hintsKeptLocally = asStrings(input.localHints);
  summary.coordinator = {
    node: spawn.node,
    actor: spawn.actor,
    op: typeof input.op === 'string' ? input.op : '?',
    partition: typeof input.partition === 'number' ? input.partition : undefined,
    preferenceList,
    targets,
    quorum: input.quorum ?? null,
  };
  summary.skipped = preferenceList.filter((n) => !targets.includes(n));
  const isGet = input.op === 'get';
  if (isGet) summary.readRepair = [];
  for (const r of records.filter(mine)) {
    const afterMs = r.t - spawn.t;
    if (r.kind === 'transition') {
      if (summary.states.length === 0 && r.from) summary.states.push(r.from);
      if (r.state) summary.states.push(r.state);
    }
    if (r.kind === 'event') {
      const ev = (r.event ?? {}) as Record<string, Summary>;
      const type = String(ev.type);
      if (/^replica\.[a-z]+\.ok$/.test(type) || type === 'replica.error') {
        const node = String(ev.from);
        if (!summary.answered.some((a) => a.node === node)) {
          const a: TraceSummary['answered'][number] = { node, kind: type, afterMs };
          if (typeof ev.code === 'string') a.code = ev.code;
          summary.answered.push(a);
        }
      }
    }
    if (r.kind === 'action') {
      for (const p of paramsList(r.params)) {
        const kind = typeof p.kind === 'string' ? p.kind : '';
        const to = typeof p.to === 'string' ? p.to : '';
        if (r.action === 'answerClient') {
          const answer: NonNullable<TraceSummary['clientAnswer']> = { kind, afterMs };
          if (typeof p.code === 'string') answer.code = p.code;
          summary.clientAnswer = answer;
        } else if (/^replica\.(coordinate|put|get)$/.test(kind)) {
          // After a get has its answer, a replica.put is read repair; otherwise it is a request.
          const repairing = isGet && kind === 'replica.put';
          if (repairing) summary.readRepair!.push(to);
          else if (!summary.asked.includes(to)) summary.asked.push(to);
        }
      }
    }
  }
  summary.notAnswered = summary.asked.filter((n) => !summary.answered.some((a) => a.node === n));
  return summary;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The envelopes of one message: itself, or each item of a batch (an item that does not decode is skipped). */
function envelopesOf(bytes: Uint8Array): Envelope[] {
  const env = decodeEnvelope(bytes);
  if (typeof env === 'string') return [];
  if (env.kind !== batchKind) return [env];
  const items = batchItems(env.body);
  if (typeof items === 'string') return [];
  return items.flatMap((item) => {
    const inner = decodeEnvelope(item);
    return typeof inner === 'string' || inner.kind === batchKind ? [] : [inner];
  });
}
