/**
 * Observability of real node processes: two `runNodeProcess` processes (the code behind
 * `ringkv node`, run with tsx so that no build is needed) on a real nats-server, each with its HTTP
 * server on a free port.
 *
 * Covers: /livez and /readyz; /metrics parses as Prometheus text and its request counter and
 * latency histogram move after traffic; quorum failures are counted by code; $SRV.PING/INFO/STATS
 * list both nodes (what `nats micro ls` asks); a traced put across the two processes shows the
 * coordinator's states in order; the dashboard's JSON endpoints, and the page itself rendered by
 * headless Chromium (members table, ring, a screenshot showing the members' ring colours; skipped
 * where no chromium is installed); SIGTERM makes a node unready before it exits.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { InspectClient } from '../../src/runtime/inspect-client.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';
import { countNear, decodePng } from '../support/png.js';
import { testSealKey, testSecret } from '../support/cluster-secret.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const nodeProcessModule = pathToFileURL(path.join(repoRoot, 'src', 'server', 'node-process.ts')).href;
const cluster = 'observe';
const secret = testSecret();
const ids = ['n1', 'n2'];
const startTimeoutMs = 30_000;

interface Proc {
  id: string;
  child: ChildProcess;
  httpPort: number;
  output: () => string;
  exited: Promise<void>;
}

let nats: NatsServerHandle;
let dataRoot: string;
let procs: Proc[] = [];
let nc: NatsConnection;
let client: RingkvClient;

async function startNodeProcess(id: string): Promise<Proc> {
  const options = { nodeId: id, dataDir: path.join(dataRoot, id), members: ids, cluster, server: nats.url, n: 2, requestTimeoutMs: 2000, httpPort: 0, httpHost: '127.0.0.1' };
  const script = `const { runNodeProcess } = await import(${JSON.stringify(nodeProcessModule)});\nawait runNodeProcess(${JSON.stringify(options)});\nprocess.exit(0);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGKV_CLUSTER_SECRET: secret } });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + startTimeoutMs;
  while (!out.includes('"node serving"')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${id} did not start:\n${out}`);
    await sleep(50);
  }
  const port = Number(/"msg":"http serving"[^\n]*"port":(\d+)/.exec(out)?.[1]);
  return { id, child, httpPort: port, output: () => out, exited };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Debian's chromium, if installed: the dashboard's browser tests need it. */
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? (spawnSync('which', ['chromium']).stdout?.toString().trim() || undefined);

function runChromium(args: string[]): Promise<string> {
  const base = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars', '--virtual-time-budget=3000'];
  return new Promise((resolve, reject) =>
    execFile(chromium!, [...base, ...args], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

async function get(p: Proc, urlPath: string): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(`http://127.0.0.1:${p.httpPort}${urlPath}`);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the Prometheus text format (0.0.4): throws on any line it does not accept. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(m[3]);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    // NaN in any case: Prometheus parses floats like Go's ParseFloat, and prom-client writes "Nan".
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  expect(types.size).toBeGreaterThan(0);
  return samples;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function scrapeAll(): Promise<Sample[]> {
  const all: Sample[] = [];
  for (const p of procs) all.push(...parsePrometheus((await get(p, '/metrics')).text));
  return all;
}

beforeAll(async () => {
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-observe-');
  procs = await Promise.all(ids.map(startNodeProcess));
  nc = await connect({ servers: nats.url, name: 'observe-test' });
  // Through the API queue group: one node coordinates each request and nothing is hedged, so the
  // request counters below move by exactly the requests made.
  client = await RingkvClient.connect({ servers: nats.url, cluster, timeoutMs: 2000, coordination: 'cluster' });
}, 90_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  for (const p of procs) {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await nats?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

describe('node processes: health, metrics, discovery, trace', () => {
  it('answers /livez and /readyz once serving, and lists its paths on /', async () => {
    for (const p of procs) {
      expect(await get(p, '/livez')).toMatchObject({ status: 200, text: 'ok\n' });
      expect(await get(p, '/readyz')).toMatchObject({ status: 200, text: 'ok\n' });
      expect((await get(p, '/')).text).toContain('/metrics');
      expect((await get(p, '/nope')).status).toBe(404);
    }
  });

  it('serves Prometheus text whose request counter and latency histogram move after traffic', async () => {
    const first = await get(procs[0]!, '/metrics');
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain/);
    const before = await scrapeAll();
    const puts = 10;
    for (let i = 0; i < puts; i++) await client.putString(`m-${i}`, `v${i}`);
    for (let i = 0; i < puts; i++) expect((await client.getString(`m-${i}`)).values).toEqual([`v${i}`]);
    const after = await scrapeAll();
    expect(sum(after, 'ringkv_requests_total', { op: 'put', outcome: 'ok' }) - sum(before, 'ringkv_requests_total', { op: 'put', outcome: 'ok' })).toBe(puts);
    expect(sum(after, 'ringkv_requests_total', { op: 'get', outcome: 'ok' }) - sum(before, 'ringkv_requests_total', { op: 'get', outcome: 'ok' })).toBe(puts);
    expect(sum(after, 'ringkv_request_duration_seconds_count', { op: 'put' }) - sum(before, 'ringkv_request_duration_seconds_count', { op: 'put' })).toBe(puts);
    expect(sum(after, 'ringkv_request_duration_seconds_bucket', { op: 'put', le: '+Inf' })).toBeGreaterThanOrEqual(puts);
    expect(sum(after, 'ringkv_actors', { machine: 'node' })).toBe(procs.length);
    expect(sum(after, 'ringkv_actors', { machine: 'replica' })).toBeGreaterThan(0);
    expect(sum(after, 'ringkv_router_received_total')).toBeGreaterThan(sum(before, 'ringkv_router_received_total'));
    for (const s of after.filter((x) => x.name.startsWith('ringkv_'))) expect(ids).toContain(s.labels.node);
  });

  it('counts quorum failures by code', async () => {
    const before = await scrapeAll();
    // N=2 R=3 cannot be had: BAD_REQUEST from the node. N=3 on two nodes: UNAVAILABLE.
    await expect(client.putString('q', 'v', { n: 3, w: 3 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const after = await scrapeAll();
    expect(sum(after, 'ringkv_quorum_failures_total', { code: 'UNAVAILABLE' }) - sum(before, 'ringkv_quorum_failures_total', { code: 'UNAVAILABLE' })).toBe(1);
    expect(sum(after, 'ringkv_requests_total', { outcome: 'UNAVAILABLE' }) - sum(before, 'ringkv_requests_total', { outcome: 'UNAVAILABLE' })).toBe(1);
  });

  it('counts client-driven reads (api.local.get) as gets, path "replica", and nothing as "other"; rates are counters', async () => {
    const driven = await RingkvClient.connect({ servers: nats.url, cluster, timeoutMs: 2000 });
    try {
      await driven.putString('driven', 'v');
      const before = await scrapeAll();
      const reads = 5;
      for (let i = 0; i < reads; i++) expect((await driven.getString('driven')).values).toEqual(['v']);
      expect(driven.stats.clientDrivenReads).toBeGreaterThanOrEqual(reads);
      const after = await scrapeAll();
      const delta = (labels: Record<string, string>) => sum(after, 'ringkv_requests_total', labels) - sum(before, 'ringkv_requests_total', labels);
      // R=2 replicas answer each client-driven get.
      expect(delta({ op: 'get', path: 'replica', outcome: 'ok' })).toBeGreaterThanOrEqual(2 * driven.stats.clientDrivenReads - 2);
      expect(delta({ op: 'get', path: 'replica', outcome: 'ok' })).toBeGreaterThan(0);
      expect(sum(after, 'ringkv_requests_total', { op: 'other' })).toBe(0);
      // The dashboard's data shows them under get.
      const m = JSON.parse((await get(procs[0]!, '/api/metrics')).text) as { requests: { op: string; path?: string; count: number }[] };
      expect(m.requests.filter((r) => r.op === 'get').reduce((a, r) => a + r.count, 0)).toBeGreaterThan(0);
    } finally {
      await driven.close();
    }
    const text = (await get(procs[0]!, '/metrics')).text;
    expect(text).toContain('# TYPE ringkv_hints_delivered_bytes_total counter');
    expect(text).not.toMatch(/^# TYPE ringkv_\w*per_second gauge/m);
  });

  it('answers $SRV.PING, $SRV.INFO and $SRV.STATS for every node (nats micro ls)', async () => {
    const collect = async (subject: string) => {
      const answers: Record<string, unknown>[] = [];
      const it = await nc.requestMany(subject, new Uint8Array(), { maxWait: 1000, maxMessages: ids.length });
      for await (const m of it) answers.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
      return answers;
    };
    const pings = await collect('$SRV.PING.ringkv');
    expect(pings).toHaveLength(ids.length);
    expect(pings.map((p) => (p.metadata as { node: string }).node).sort()).toEqual(ids);
    // The epoch each node runs with now (it logs it when it starts serving).
    for (const p of pings) {
      const meta = p.metadata as { node: string; epoch: string };
      const proc = procs.find((x) => x.id === meta.node)!;
      const serving = proc.output().split('\n').filter((l) => l.includes('"node serving"')).at(-1)!;
      expect(meta.epoch).toBe((JSON.parse(serving) as { epoch: string }).epoch);
    }
    for (const p of pings) expect(p).toMatchObject({ type: 'io.nats.micro.v1.ping_response', name: 'ringkv', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    const infos = await collect('$SRV.INFO');
    expect(infos.filter((i) => i.name === 'ringkv')).toHaveLength(ids.length);
    expect((infos[0]!.endpoints as { name: string }[]).map((e) => e.name)).toEqual(['api', 'node-api', 'admin', 'node-admin', 'inspect']);
    const stats = await collect('$SRV.STATS.ringkv');
    const total = stats.reduce((a, s) => a + (s.endpoints as { name: string; num_requests: number }[]).find((e) => e.name === 'api')!.num_requests, 0);
    expect(total).toBeGreaterThan(20);
    for (const s of stats) expect(Date.parse(s.started as string)).toBeLessThanOrEqual(Date.now());
    // One instance by its id.
    const one = await nc.request(`$SRV.PING.ringkv.${pings[0]!.id as string}`, new Uint8Array(), { timeout: 1000 });
    expect(JSON.parse(new TextDecoder().decode(one.data))).toMatchObject({ id: pings[0]!.id });
  });

  it("traces a put across the two processes: the coordinator's states in order, the other node's replica answering", async () => {
    const inspector = new InspectClient(nc, cluster, testSealKey(cluster, secret));
    const t = await inspector.trace({ op: 'put', key: 'traced', value: 'x' });
    expect(t.answer, JSON.stringify(t.answer)).toMatchObject({ ok: true });
    const c = t.summary.coordinator!;
    const states = t.records.filter((r) => r.node === c.node && r.actor === c.actor && r.kind === 'transition').map((r) => r.state);
    expect([t.summary.states[0], ...states]).toEqual(['checking', 'coordinating', 'replicating', 'done']);
    const other = ids.find((id) => id !== c.node)!;
    expect(t.summary.answered.map((a) => a.node).sort()).toEqual([...ids].sort());
    expect(t.records.some((r) => r.node === other && r.machine === 'replica' && r.kind === 'action' && r.action === 'send')).toBe(true);
    const inspectSessions = sum(await scrapeAll(), 'ringkv_inspect_sessions');
    expect(inspectSessions).toBe(0);
  });

  it('serves the dashboard page and its JSON endpoints', async () => {
    const p = procs[0]!;
    const page = await get(p, '/dashboard');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    // Self-contained: no script or stylesheet from anywhere else.
    expect(page.text).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org\/2000\/svg")/);
    const status = JSON.parse((await get(p, '/api/status')).text) as { nodeId: string; members: { nodeId: string; partitions: number[] }[]; partitions: number; health: { ready: boolean } };
    expect(status.nodeId).toBe('n1');
    expect(status.members.map((m) => m.nodeId).sort()).toEqual(ids);
    expect(status.members.reduce((a, m) => a + m.partitions.length, 0)).toBe(status.partitions);
    expect(status.health.ready).toBe(true);
    const actors = JSON.parse((await get(p, '/api/actors')).text) as { actors: { machine: string }[] };
    expect(actors.actors.some((a) => a.machine === 'node')).toBe(true);
    const m = JSON.parse((await get(p, '/api/metrics')).text) as { requests: { op: string; count: number }[]; buckets: unknown[] };
    expect(m.requests.filter((r) => r.op === 'put').reduce((a, r) => a + r.count, 0)).toBeGreaterThan(0);
    expect(m.buckets.length).toBeGreaterThan(0);
  });

  it.skipIf(chromium === undefined)('renders in headless Chromium: the members table and the ring', async () => {
    const url = `http://127.0.0.1:${procs[0]!.httpPort}/dashboard`;
    const dom = await runChromium(['--dump-dom', url]);
    expect(dom).toContain('data-ready="true"');
    for (const id of ids) expect(dom).toContain(`data-node="${id}"`);
    expect(dom.match(/class="partition"/g)?.length).toBe(64);
    expect(dom).toContain('ringkv cluster observe');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-shot-'));
    try {
      const file = path.join(dir, 'dashboard.png');
      await runChromium(['--window-size=1280,900', `--screenshot=${file}`, url]);
      const img = decodePng(readFileSync(file));
      expect([img.width, img.height]).toEqual([1280, 900]);
      // The ring draws each member's partitions in its colour: the first two members' colours
      // (#58a6ff, #3fb950) must both cover a visible area.
      expect(countNear(img, [0x58, 0xa6, 0xff])).toBeGreaterThan(300);
      expect(countNear(img, [0x3f, 0xb9, 0x50])).toBeGreaterThan(300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops on SIGTERM, unready first', async () => {
    const p = procs[1]!;
    p.child.kill('SIGTERM');
    await p.exited;
    expect(p.child.exitCode).toBe(0);
    expect(p.output()).toContain('"msg":"stopped"');
    await expect(get(p, '/livez')).rejects.toThrow();
  });
});
