/**
 * SimClient: a small client for the simulator that speaks the same envelopes as the NATS client
 * (src/client/client.ts): `api.put` / `api.get` / `api.del` with body {key, value?, context?, n?, r?,
 * w?, timeoutMs?}, answered by `api.put.ok {context}`, `api.get.ok {found, values, context}`, or
 * `error {code, message}`. Its own deadline runs on the SimClock; a request that gets no answer in
 * time ends as TIMEOUT, which means "unknown", never "failed".
 */
import type { Clock } from '../ports/clock.js';
import type { ApiClusterOk, ApiGetOk, ApiPutOk, ClusterOp, RequestOptions } from '../protocol/messages.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { SimClientEndpoint, SimNetwork } from '../adapters/sim/sim-network.js';

export type Outcome<T> = { ok: true; body: T } | { ok: false; code: string; message: string };

export interface SimRequestOptions extends RequestOptions {
  context?: Uint8Array;
  /** Send to this node instead of the queue group. */
  node?: string;
}

/** The client waits this much past the cluster's deadline so that a TIMEOUT answer can arrive. */
export const simReplyGraceMs = 100;
/** Requests of one client waiting for their answer. */
export const simClientInFlightMax = 1024;

interface Waiting {
  kind: string;
  resolve: (o: Outcome<unknown>) => void;
  timer: unknown;
}

export class SimClient {
  private seq = 0;
  private readonly waiting = new Map<string, Waiting>();
  private readonly endpoint: SimClientEndpoint;
  /** Answers that came for a request already answered or timed out (duplicates, late answers). */
  lateReplies = 0;

  constructor(
    network: SimNetwork,
    private readonly clock: Clock,
    readonly id: string,
    private readonly timeoutMs: number,
    private readonly observe?: (clientId: string, reqId: string, kind: string, outcome: Outcome<unknown>) => void,
  ) {
    this.endpoint = network.client(id, (replyTo, bytes) => this.onReply(replyTo, bytes));
  }

  get(key: Uint8Array, opts: SimRequestOptions = {}): Promise<Outcome<ApiGetOk>> {
    return this.request('get', { key, ...options(opts) }, opts.node) as Promise<Outcome<ApiGetOk>>;
  }

  put(key: Uint8Array, value: Uint8Array, opts: SimRequestOptions = {}): Promise<Outcome<ApiPutOk>> {
    const body: Record<string, unknown> = { key, value, ...options(opts) };
    if (opts.context !== undefined) body.context = opts.context;
    return this.request('put', body, opts.node) as Promise<Outcome<ApiPutOk>>;
  }

  del(key: Uint8Array, opts: SimRequestOptions = {}): Promise<Outcome<Record<string, never>>> {
    const body: Record<string, unknown> = { key, ...options(opts) };
    if (opts.context !== undefined) body.context = opts.context;
    return this.request('del', body, opts.node) as Promise<Outcome<Record<string, never>>>;
  }

  /**
   * An api.cluster request, as the admin client sends it (src/client/admin.ts): {op, node?}, on the
   * admin role, to one node (`via`) or to the admin queue group.
   */
  cluster(op: ClusterOp, node?: string, via?: string): Promise<Outcome<ApiClusterOk>> {
    const body: Record<string, unknown> = node === undefined ? { op } : { op, node };
    return this.request('cluster', body, via, false, 'admin') as Promise<Outcome<ApiClusterOk>>;
  }

  private request(op: string, body: Record<string, unknown>, node: string | undefined, deadlineInBody = true, role: 'api' | 'admin' = 'api'): Promise<Outcome<unknown>> {
    if (this.waiting.size >= simClientInFlightMax) throw new Error(`sim client ${this.id} has ${simClientInFlightMax} requests in flight`);
    const timeoutMs = typeof body.timeoutMs === 'number' ? body.timeoutMs : this.timeoutMs;
    if (deadlineInBody) body.timeoutMs = timeoutMs;
    const n = ++this.seq;
    const reqId = String(n);
    const kind = `api.${op}`;
    const replyTo = this.endpoint.address(n);
    const bytes = encodeEnvelope({ v: protocolVersion, kind, from: this.id, to: '', reqId, body });
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.finish(replyTo, { ok: false, code: 'TIMEOUT', message: `no answer within ${timeoutMs + simReplyGraceMs} ms` });
      }, timeoutMs + simReplyGraceMs);
      this.waiting.set(replyTo, { kind, resolve, timer });
      this.endpoint.request(bytes, replyTo, node, role);
    });
  }

  private onReply(replyTo: string, bytes: Uint8Array): void {
    const w = this.waiting.get(replyTo);
    if (!w) {
      this.lateReplies++;
      return;
    }
    const env = decodeEnvelope(bytes);
    if (typeof env === 'string') {
      this.finish(replyTo, { ok: false, code: 'INTERNAL', message: `bad answer: ${env}` });
    } else if (env.kind === 'error') {
      const e = env.body as { code?: unknown; message?: unknown };
      this.finish(replyTo, { ok: false, code: String(e.code), message: String(e.message) });
    } else if (env.kind !== `${w.kind}.ok`) {
      this.finish(replyTo, { ok: false, code: 'INTERNAL', message: `unexpected answer kind "${env.kind}" to ${w.kind}` });
    } else {
      this.finish(replyTo, { ok: true, body: env.body });
    }
  }

  private finish(replyTo: string, outcome: Outcome<unknown>): void {
    const w = this.waiting.get(replyTo);
    if (!w) return;
    this.waiting.delete(replyTo);
    this.clock.clearTimeout(w.timer);
    const reqId = replyTo.slice(replyTo.lastIndexOf('.') + 1);
    this.observe?.(this.id, reqId, w.kind, outcome);
    w.resolve(outcome);
  }
}

function options(o: SimRequestOptions): RequestOptions {
  const out: RequestOptions = {};
  if (o.n !== undefined) out.n = o.n;
  if (o.r !== undefined) out.r = o.r;
  if (o.w !== undefined) out.w = o.w;
  if (o.timeoutMs !== undefined) out.timeoutMs = o.timeoutMs;
  return out;
}

/** Sleep on simulated time. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(() => resolve(), ms));
}
