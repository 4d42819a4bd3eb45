/**
 * What nats-server's `allow_responses` costs a responder, against the inbox-family permission the
 * secured configuration gives nodes (src/server/secure-nats.ts says why it does not use it):
 *
 *   npx tsx src/bench/reply-permission-cost.ts [requests per run, default 40000]
 *
 * It starts a nats-server on a free loopback port with one requester user (replies in its own inbox
 * family) and three responder users, then runs the same request/reply load (100-byte payloads, 128
 * in flight, one process) against each responder:
 * - `inbox-family`: may publish into the requester's family (`_INBOX_a.>`), what nodes get;
 * - `responses-1`: `allow_responses: true`-like, one response per request received (max 1);
 * - `responses-100-5m`: up to 100 responses per request for 5 minutes, what batched answers and
 *   streamed inspect records would need. nats-server keeps each reply subject until it has had its
 *   `max` answers or expired, and past 4096 kept it scans them all on every delivery.
 * Each run is printed as requests per second.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { findNatsServer } from '../server/local-cluster.js';
import { freePort, waitForPort } from './free-port.js';

const inFlight = 128;
const payload = new Uint8Array(100);
const responders = {
  'inbox-family': `publish: { allow: ["_INBOX_a.>"] }`,
  'responses-1': `publish: { deny: [">"] }, allow_responses: { max: 1 }`,
  'responses-100-5m': `publish: { deny: [">"] }, allow_responses: { max: 100, expires: "5m" }`,
} as const;

function config(): string {
  const users = [
    `{ user: a, password: a, permissions: { publish: { allow: ["req.>"] }, subscribe: { allow: ["_INBOX_a.>"] } } }`,
    ...Object.entries(responders).map(([name, perms]) => `{ user: "${name}", password: p, permissions: { subscribe: { allow: ["req.>"] }, ${perms} } }`),
  ];
  return `authorization { users = [\n  ${users.join('\n  ')}\n] }\n`;
}

async function run(url: string, responder: string, total: number): Promise<number> {
  const subject = `req.${responder}`;
  const requester = await connect({ servers: url, user: 'a', pass: 'a', inboxPrefix: '_INBOX_a' });
  const answerer = await connect({ servers: url, user: responder, pass: 'p' });
  answerer.subscribe(subject, { callback: (err, m) => void (err ? undefined : m.respond(m.data)) });
  await answerer.flush();
  let sent = 0;
  let done = 0;
  const startedAt = performance.now();
  await new Promise<void>((resolve, reject) => {
    const one = (): void => {
      if (sent >= total) return;
      sent++;
      requester.request(subject, payload, { timeout: 10_000 }).then(() => {
        if (++done === total) resolve();
        else one();
      }, reject);
    };
    for (let i = 0; i < inFlight; i++) one();
  });
  const perSecond = (total * 1000) / (performance.now() - startedAt);
  await requester.close();
  await answerer.close();
  return perSecond;
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 40_000);
  const bin = findNatsServer();
  if (bin === undefined) throw new Error('nats-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'reply-permission-cost-'));
  const conf = join(dir, 'nats-server.conf');
  writeFileSync(conf, config());
  const port = await freePort();
  const server = spawn(bin, ['-c', conf, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    if (!(await waitForPort(port, 5_000))) throw new Error('the nats-server did not start');
    const url = `127.0.0.1:${port}`;
    for (const responder of Object.keys(responders)) {
      const perSecond = await run(url, responder, total);
      process.stdout.write(`${responder.padEnd(18)} ${total} requests, ${inFlight} in flight: ${Math.round(perSecond)}/s\n`);
    }
  } finally {
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
