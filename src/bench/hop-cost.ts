/**
 * What one message hop costs on this machine, apart from any work done with the message: the floor
 * under every latency at 1 in flight (issue 8). Run it on the machine the bench ran on:
 *
 *   npx tsx src/bench/hop-cost.ts [round trips, default 5000]
 *
 * It starts a nats-server on a free loopback port and a responder process, then measures, one round
 * trip in flight at a time, the p50 of:
 * - tcp: a TCP echo between two processes (two process-to-process transfers, no NATS);
 * - nats: a NATS request answered by another process (client → nats-server → responder →
 *   nats-server → client: four transfers). A ringkv get is one of these per replica asked (in
 *   parallel); a ringkv put is two in sequence (client → coordinator, coordinator → replicas and
 *   back) plus the replicas' commits;
 * - nats, same process: the responder in the asking process (still four transfers through the server).
 * A JetStream KV get is answered by the nats-server itself (two transfers: client → server → client),
 * and a JetStream put is one client round trip plus a Raft round between the servers over their own
 * TCP routes: a design where storage nodes are NATS clients pays two transfers more per leg.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { natsConnectionOptions } from '../adapters/nats/connection-options.js';
import { freePort } from './free-port.js';

const subject = 'hop-cost.echo';
const payload = new Uint8Array(150);

/** The bench's own loopback nats-server has no auth: only its URL, parsed as every process parses one. */
function ownServer(url: string) {
  return natsConnectionOptions({ servers: url });
}

function p50(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Responder mode: answer every request on `subject` with its own bytes, and echo TCP on a port. */
async function respond(url: string, tcpPort: number): Promise<void> {
  const nc = await connect(ownServer(url));
  nc.subscribe(subject, { callback: (_err, m) => void m.respond(m.data) });
  await nc.flush();
  net
    .createServer((s) => {
      s.setNoDelay(true);
      s.on('data', (d) => s.write(d));
    })
    .listen(tcpPort, '127.0.0.1', () => process.stdout.write('ready\n'));
}

async function tcpRoundTrips(port: number, count: number): Promise<number[]> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      socket.once('data', () => resolve());
      socket.write(payload);
    });
    samples.push(performance.now() - started);
  }
  socket.destroy();
  return samples;
}

async function natsRoundTrips(url: string, subj: string, count: number): Promise<number[]> {
  const nc = await connect(ownServer(url));
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await nc.request(subj, payload, { timeout: 5000 });
    samples.push(performance.now() - started);
  }
  await nc.close();
  return samples;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 5000);
  const natsPort = await freePort();
  const tcpPort = await freePort();
  const url = `nats://127.0.0.1:${natsPort}`;
  const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort)], { stdio: 'ignore' });
  const stopAll: (() => void)[] = [() => server.kill('SIGKILL')];
  try {
    await waitForPort(natsPort);
    const self = fileURLToPath(import.meta.url);
    const responder = spawn(process.execPath, [...process.execArgv, self, 'respond', url, String(tcpPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    stopAll.push(() => responder.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      responder.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      responder.once('exit', (code) => reject(new Error(`the responder exited (${code})`)));
    });
    // The same-process responder answers on its own subject.
    const local = await connect(ownServer(url));
    local.subscribe(`${subject}.local`, { callback: (_err, m) => void m.respond(m.data) });
    await local.flush();
    stopAll.push(() => void local.close());

    const warm = Math.min(500, count);
    await tcpRoundTrips(tcpPort, warm);
    await natsRoundTrips(url, subject, warm);
    const tcp = p50(await tcpRoundTrips(tcpPort, count));
    const nats = p50(await natsRoundTrips(url, subject, count));
    const natsLocal = p50(await natsRoundTrips(url, `${subject}.local`, count));
    const us = (ms: number) => `${Math.round(ms * 1000)} µs`.padStart(9);
    process.stdout.write(`${count} round trips each, 1 in flight, p50 (${new Date().toISOString()})\n`);
    process.stdout.write(`tcp echo, another process           ${us(tcp)}  (2 transfers: ${us(tcp / 2)} each)\n`);
    process.stdout.write(`nats request, another process       ${us(nats)}  (4 transfers: ${us(nats / 4)} each)\n`);
    process.stdout.write(`nats request, same process          ${us(natsLocal)}  (4 transfers through the server)\n`);
  } finally {
    for (const stop of stopAll.reverse()) stop();
  }
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (process.argv[2] === 'respond') await respond(process.argv[3]!, Number(process.argv[4]));
else {
  await main();
  process.exit(0);
}
