/**
 * `ringkv inspect`, `ringkv trace` and `ringkv diagram`: watching the state machines (issue 9).
 *
 *   ringkv inspect <node> [--actor ID]             every live actor of a node (or one, in full)
 *   ringkv inspect <node> --follow [--actor ID] [--request REQID] [--client NAME] [--duration S]
 *                                                  stream its actors' events and transitions
 *   ringkv trace put <key> <value> | get <key> | del <key>
 *                                                  run one request with tracing on at every node
 *   ringkv diagram <machine|all> [--out DIR]       statecharts as Mermaid (diagram-command.ts)
 *
 * All of them print JSON with the global --json.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { RingkvError } from '../client/errors.js';
import type { InspectRecord, SnapshotAnswer, Summary } from '../runtime/inspect-protocol.js';
import type { InspectClient, TraceResult } from '../runtime/inspect-client.js';
import { registerDiagramCommand } from './diagram-command.js';
import { exitCodeForErrorCode, exitCodes } from './exit-codes.js';
import { formatJson, formatTable, toBase64 } from './output.js';

interface Globals {
  server?: string;
  cluster: string;
  json?: boolean;
}

/** The longest --duration of a follow, in seconds (the node's own maximum is the same). */
const followSecondsMax = 600;

function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    }
    return n;
  };
}

/** `node` is the node the command names, if any: when it does not answer, is it a member at all? */
async function withInspector<T>(g: Globals, fn: (client: InspectClient) => Promise<T>, node?: string): Promise<T> {
  const { connect } = await import('@nats-io/transport-node');
  const { InspectClient } = await import('../runtime/inspect-client.js');
  const { resolveServerUrl } = await import('../server/local-cluster.js');
  const { mergeNatsSettings, natsConnectionOptions } = await import('../adapters/nats/connection-options.js');
  const { natsConnectFailure } = await import('../client/connect-failure.js');
  // Credentials as for every connecting command: the flags, moved into the nats CLI's environment.
  const settings = mergeNatsSettings({ servers: resolveServerUrl(g.server) }, process.env);
  let nc;
  try {
    nc = await connect({ ...natsConnectionOptions(settings), name: 'ringkv-inspect', timeout: 3_000 });
  } catch (err) {
    throw natsConnectFailure(err, settings, '; start a cluster with npm start, or pass --server URL');
  }
  try {
    // With the secret (flag or environment, as a node finds it) requests are sealed; without it a
    // node refuses inspect sessions with UNAUTHENTICATED.
    const { findClusterSecret, sealKeyOf } = await import('../server/cluster-secret.js');
    const found = findClusterSecret(process.env);
    return await fn(new InspectClient(nc, g.cluster, found === undefined ? undefined : sealKeyOf(found.secret, g.cluster)));
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    if ((e.code === 'TIMEOUT' || e.code === 'NO_CLUSTER') && node !== undefined) await throwIfUnknown(nc, g.cluster, node);
    if (e.code === 'TIMEOUT' || e.code === 'NO_CLUSTER') throw new RingkvError('NO_CLUSTER', e.message ?? String(err));
    if (typeof e.code === 'string' && e.name !== 'RingkvError') throw new RingkvError(e.code as never, e.message ?? String(err));
    throw err;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** UNKNOWN_NODE (exit 7) when the cluster answers and has no member `node`, as every command says it. */
async function throwIfUnknown(nc: import('@nats-io/transport-node').NatsConnection, cluster: string, node: string): Promise<void> {
  const { RingkvClient } = await import('../client/client.js');
  const client = await RingkvClient.connect({ connection: nc, cluster, timeoutMs: 2_000 });
  let members: string[];
  try {
    members = (await client.status()).members.map((m) => m.nodeId);
  } catch {
    return; // nobody answers: NO_CLUSTER says it
  } finally {
    await client.close();
  }
  if (!members.includes(node)) throw new RingkvError('UNKNOWN_NODE', `cluster "${cluster}" has no member "${node}"; members: ${members.sort().join(', ')}`);
}

/** A one-line summary of a context summary: `key value, key [a, b]`, nested maps as k.sub. */
export function inlineSummary(s: Summary, prefix = ''): string {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) return `${prefix}${inlineValue(s)}`;
  return Object.entries(s)
    .map(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? inlineSummary(v, `${prefix}${k}.`) : `${prefix}${k} ${inlineValue(v)}`))
    .join(', ');
}

function inlineValue(v: Summary): string {
  if (Array.isArray(v)) return `[${v.map(inlineValue).join(' ')}]`;
  if (v !== null && typeof v === 'object') return `{${inlineSummary(v)}}`;
  return String(v);
}

export function formatSnapshot(snap: SnapshotAnswer, width?: number): string {
  const depth = new Map<string, number>();
  const rows = snap.actors.map((a) => {
    const d = a.parent === undefined ? 0 : (depth.get(a.parent) ?? 0) + 1;
    depth.set(a.id, d);
    return [`${'  '.repeat(d)}${a.id}`, a.machine, a.status === 'active' ? a.state : `${a.state} (${a.status})`, inlineSummary(a.context)];
  });
  const omitted = snap.omitted > 0 ? `\n${snap.omitted} more actor(s) not listed\n` : '';
  const opts: { header: string[]; width?: number } = { header: ['ACTOR', 'MACHINE', 'STATE', 'CONTEXT'] };
  if (width !== undefined) opts.width = width;
  return `node ${snap.node}: ${snap.actors.length + snap.omitted} actor(s)\n\n${formatTable(rows, opts)}${omitted}`;
}

function eventText(e: Summary | undefined): string {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return String(e);
  const parts = [String(e.type)];
  if (e.from !== undefined) parts.push(`from ${String(e.from)}`);
  if (e.p !== undefined) parts.push(`p${String(e.p)}`);
  if (e.ok === false) parts.push('not ok');
  if (e.code !== undefined) parts.push(String(e.code));
  if (e.actorId !== undefined) parts.push(String(e.actorId));
  return parts.join(' ');
}

function paramsText(p: Summary | undefined): string {
  const list = Array.isArray(p) ? p : p === undefined || p === null ? [] : [p];
  if (list.length === 0) return Array.isArray(p) ? '(nothing)' : '';
  const byKind = new Map<string, string[]>();
  const other: string[] = [];
  for (const item of list) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
    const partition = typeof item.p === 'number' ? ` p${item.p}` : '';
    const kind = typeof item.kind === 'string' ? item.kind : typeof item.write === 'string' ? `${item.write} write${partition}` : partition.trim();
    // Store actions name the asker (from) rather than a destination: the answer goes there.
    const to = typeof item.to === 'string' ? item.to : typeof item.from === 'string' ? item.from : '';
    const code = `${typeof item.code === 'string' ? ` ${item.code}` : ''}${typeof item.hint === 'string' ? ` (hint for ${item.hint})` : ''}${Array.isArray(item.hints) ? ` (hints for ${item.hints.join(', ')})` : ''}`;
    if (kind !== '' || to !== '') byKind.set(kind + code, [...(byKind.get(kind + code) ?? []), to]);
    else other.push(inlineSummary(item));
  }
  const parts = [...byKind].map(([kind, tos]) => `${kind}${tos.some(Boolean) ? ` to ${tos.filter(Boolean).join(', ')}` : ''}`.trim());
  return [...parts, ...other].join('; ');
}

/** One record as a line of text (without time and node, which the caller adds). */
export function recordText(r: InspectRecord): string {
  switch (r.kind) {
    case 'spawn':
    case 'start': {
      const i = (r.input ?? {}) as Record<string, Summary>;
      // start: the coordinator actor started a request (requests are cores in it, not actors).
      const verb = r.kind === 'start' ? 'started' : 'spawned';
      if (r.machine === 'coordinator') {
        const client = (i.client ?? {}) as Record<string, Summary>;
        const op = typeof client.kind === 'string' ? client.kind.replace(/^api\./, '') : String(i.op);
        const targets = Array.isArray(i.targets)
          ? i.targets.map((t) => (t && typeof t === 'object' && !Array.isArray(t) ? `${String(t.node)}${t.hintFor ? ` (for ${String(t.hintFor)})` : ''}` : String(t))).join(', ')
          : asList(i.alive);
        return `${verb}: ${op} for ${String(client.from)} #${String(client.reqId)}, partition ${String(i.partition)}, preference list ${asList(i.preferenceList)}, asks ${targets}`;
      }
      return `${verb} ${r.machine}${r.input ? `: ${inlineSummary(r.input)}` : ''}`;
    }
    case 'event':
      return `<- ${eventText(r.event)}${r.source && r.source !== r.actor ? ` (via ${r.source})` : ''}`;
    case 'transition':
      return `${r.from || '(start)'} -> ${r.state ?? ''}  on ${eventText(r.event)}`;
    case 'action': {
      const p = paramsText(r.params);
      return `${r.action ?? 'action'}${p ? ` ${p}` : ''}`;
    }
    case 'done':
      return `finished in ${r.state ?? ''}`;
  }
}

function asList(x: Summary | undefined): string {
  return Array.isArray(x) ? x.map(String).join(', ') : String(x);
}

function clockTime(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}

export function formatRecords(records: InspectRecord[], opts: { relative?: boolean } = {}): string {
  if (records.length === 0) return '';
  const t0 = records[0]!.t;
  const rows = records.map((r) => [opts.relative ? `+${r.t - t0} ms` : clockTime(r.t), r.node, r.actor, recordText(r)]);
  return formatTable(rows);
}

export function formatTrace(t: TraceResult, key: string): string {
  const s = t.summary;
  const answer = t.answer.ok ? t.answer.kind : `error ${t.answer.code}: ${t.answer.message}`;
  const lines: string[][] = [];
  lines.push(['received by', s.receivedBy.length > 0 ? s.receivedBy.join(' then ') : '(no node recorded it)']);
  for (const f of s.forwards) lines.push(['forwarded', `${f.node} -> ${f.to} (${f.node} is not on the preference list)`]);
  if (s.coordinator) {
    const c = s.coordinator;
    const q = c.quorum as Record<string, Summary> | null;
    lines.push(['coordinator', `${c.actor} on ${c.node}, partition ${String(c.partition)}`]);
    lines.push(['preference list', `${c.preferenceList.join(', ')}${q ? `  (N=${String(q.n)} R=${String(q.r)} W=${String(q.w)})` : ''}`]);
    if (s.skipped.length > 0) lines.push(['skipped', `${s.skipped.join(', ')} (believed down)`]);
    for (const f of s.fallbacks) lines.push(['fallback', `${f.node} stands in for ${f.for} and keeps a hint for it`]);
    if (s.hintsKeptLocally.length > 0) lines.push(['hints kept', `by ${c.node} for ${s.hintsKeptLocally.join(', ')}`]);
    lines.push(['asked', s.asked.join(', ') || '(none)']);
    lines.push(['answered', s.answered.map((a) => `${a.node} +${a.afterMs} ms${a.code ? ` ${a.code}` : ''}`).join(', ') || '(none)']);
    if (s.notAnswered.length > 0) lines.push(['not heard', `${s.notAnswered.join(', ')} (answered after the coordinator finished, or not at all)`]);
    if (s.clientAnswer) lines.push(['answer', `${s.clientAnswer.kind}${s.clientAnswer.code ? ` ${s.clientAnswer.code}` : ''} at +${s.clientAnswer.afterMs} ms`]);
    if (s.readRepair) lines.push(['read repair', s.readRepair.length > 0 ? `sent to ${s.readRepair.join(', ')}` : 'none needed']);
    lines.push(['states', s.states.join(' -> ')]);
  } else {
    lines.push(['coordinator', '(none recorded: the request was answered before a coordinator ran, or its node was not traced)']);
  }
  if (t.unreached.length > 0) lines.push(['not traced', `${t.unreached.join(', ')} (no answer to the trace request)`]);
  if (t.dropped > 0) lines.push(['dropped', `${t.dropped} record(s) over the rate limit`]);
  const head = `trace ${t.op} ${JSON.stringify(key)} (request ${t.reqId}): ${answer} in ${t.latencyMs.toFixed(1)} ms\n\n`;
  return `${head}${formatTable(lines.map(([a, b]) => [`  ${a}`, b!]))}\n${formatRecords(t.records, { relative: true })}`;
}

export function registerInspectCommands(program: Command): void {
  const globals = (cmd: Command) => cmd.optsWithGlobals<Globals>();
  const width = () => (process.stdout.isTTY ? process.stdout.columns : undefined);

  program
    .command('inspect')
    .description("show a node's live actors (state, context summary, children), or follow their events and transitions")
    .argument('<node>', 'node id')
    .option('--actor <id>', 'only this actor (e.g. coordinator-7, replica, or the node id for the root)')
    .option('--follow', 'stream events and transitions until Ctrl-C or --duration')
    .option('--request <reqId>', 'with --follow: only what a client request causes (its coordinator, replicas, forwards)')
    .option('--client <name>', "with --request: the client's name, when several clients reuse request ids")
    .option('--duration <seconds>', `with --follow: stop after this long (at most ${followSecondsMax})`, positiveInt('duration', followSecondsMax), 60)
    .option('--sample <k>', 'with --follow and no filter: follow one in k requests and events', positiveInt('sample'), 1)
    .action(
      async (
        node: string,
        o: { actor?: string; follow?: boolean; request?: string; client?: string; duration: number; sample: number },
        cmd: Command,
      ) => {
        const g = globals(cmd);
        if (!o.follow) {
          if (o.request !== undefined) cmd.error('error: --request needs --follow', { exitCode: exitCodes.usage });
          const snap = await withInspector(g, (c) => c.snapshot(node, o.actor), node);
          if (o.actor !== undefined && snap.actors.length === 0) {
            process.stderr.write(`node ${node} has no actor ${o.actor}\n`);
            process.exitCode = exitCodes.notFound;
            return;
          }
          if (g.json) process.stdout.write(formatJson(snap));
          else if (o.actor !== undefined) process.stdout.write(formatJson(snap.actors[0]));
          else process.stdout.write(formatSnapshot(snap, width()));
          return;
        }
        await withInspector(g, async (c) => {
          const request: Parameters<InspectClient['follow']>[1] = { durationMs: o.duration * 1000, sampleEvery: o.sample };
          if (o.actor !== undefined) request.actors = [o.actor];
          if (o.request !== undefined) request.request = o.request;
          if (o.client !== undefined) request.client = o.client;
          let lastDropped = 0;
          const handle = await c.follow(node, request, {
            records: (m) => {
              for (const r of m.records) process.stdout.write(g.json ? JSON.stringify(r) + '\n' : `${clockTime(r.t)}  ${r.actor}  ${recordText(r)}\n`);
              if (m.dropped > lastDropped && !g.json) process.stderr.write(`(${m.dropped - lastDropped} record(s) dropped by the rate limit)\n`);
              lastDropped = m.dropped;
            },
          });
          if (!g.json) process.stderr.write(`following node ${node} for ${o.duration} s; Ctrl-C stops\n`);
          const interrupted = new Promise<'interrupted'>((resolve) => process.once('SIGINT', () => resolve('interrupted')));
          const first = await Promise.race([handle.ended, interrupted]);
          const end = first === 'interrupted' ? await handle.stop() : first;
          if (g.json) return;
          process.stderr.write(end ? `session ended (${end.reason}): ${end.sent} record(s), ${end.dropped} dropped\n` : 'session ended\n');
        }, node);
      },
    );

  const trace = program
    .command('trace')
    .description("run one request with tracing on at every node and print its path through each node's actors");
  const traceOptions = (cmd: Command, write: boolean) => {
    cmd.option('--via <node>', 'send the request to this node instead of the API queue group');
    cmd.option('--n <n>', 'replicas', positiveInt('n'));
    cmd.option('--r <r>', 'read quorum', positiveInt('r'));
    if (write) cmd.option('--w <w>', 'write quorum', positiveInt('w'));
    cmd.option('--timeout-ms <ms>', 'deadline of the request', positiveInt('timeout-ms'));
    return cmd;
  };
  interface TraceOptions {
    via?: string;
    n?: number;
    r?: number;
    w?: number;
    timeoutMs?: number;
  }
  const runTrace = async (cmd: Command, op: 'put' | 'get' | 'del', key: string, value: string | undefined, o: TraceOptions) => {
    const g = globals(cmd);
    const result = await withInspector(g, (c) => {
      const req: Parameters<InspectClient['trace']>[0] = { op, key };
      if (value !== undefined) req.value = value;
      if (o.via !== undefined) req.via = o.via;
      for (const f of ['n', 'r', 'w', 'timeoutMs'] as const) if (o[f] !== undefined) req[f] = o[f];
      return c.trace(req);
    });
    if (g.json) {
      const answer = result.answer.ok ? { ...result.answer, body: jsonSafe(result.answer.body) } : result.answer;
      process.stdout.write(formatJson({ ...result, answer }));
    } else process.stdout.write(formatTrace(result, key));
    if (!result.answer.ok) process.exitCode = exitCodeForErrorCode(result.answer.code);
  };
  traceOptions(trace.command('put').description('trace a put').argument('<key>').argument('<value>'), true).action(
    (key: string, value: string, o: TraceOptions, cmd: Command) => runTrace(cmd, 'put', key, value, o),
  );
  traceOptions(trace.command('get').description('trace a get').argument('<key>'), false).action((key: string, o: TraceOptions, cmd: Command) =>
    runTrace(cmd, 'get', key, undefined, o),
  );
  traceOptions(trace.command('del').description('trace a delete (of what a get reads first, like ringkv del)').argument('<key>'), true).action(
    (key: string, o: TraceOptions, cmd: Command) => runTrace(cmd, 'del', key, undefined, o),
  );

  registerDiagramCommand(program);
}

/** Bytes in an answer body (values, contexts) as base64, for --json. */
function jsonSafe(v: unknown): unknown {
  if (v instanceof Uint8Array) return toBase64(v);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}
