/**
 * What sealing costs (issue 17, item 6): seal + open of one NATS message, per message size, beside
 * what the same bytes cost to pack and unpack as MessagePack. A node seals each message it sends to
 * a peer once (one envelope, or one batch of many) and the peer opens it once.
 *
 *   npx tsx src/protocol/seal-bench.ts [rounds]
 *
 * Sizes: a lone small envelope (a replica ack), a typical small batch, and batches of 64 KiB and
 * 256 KiB (batchBytesMax). Rounds are interleaved and the median is printed, µs per message.
 * `id check` is what the member gate adds per sealed message since issue 28: the replay guard's
 * lookup of the seal's id (src/core/replay-guard.ts), over 8 senders with interleaved counters.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { encodeBatch } from './batch.js';
import { clusterIdOf } from './cluster-id.js';
import { decode, encode } from './codec.js';
import { encodeEnvelope, protocolVersion } from './envelope.js';
import { openSealed, seal, sealWindowMs } from './seal.js';
import { ReplayGuard } from '../core/replay-guard.js';
import { nodeSubject } from './subjects.js';

const rounds = Number(process.argv[2] ?? 7);
const secret = randomBytes(32);
const key = { clusterId: clusterIdOf(secret, 'bench'), secret };
const subject = nodeSubject('bench', 'n2', 'replica');

function envelopeOf(valueBytes: number, i: number): Uint8Array {
  return encodeEnvelope({ v: protocolVersion, kind: 'replica.put', from: 'n1', to: 'n2', reqId: `r${i}`, body: { p: i % 64, key: randomBytes(16), state: [[`n1/abcd1234`, i, [randomBytes(valueBytes)]]] } });
}

function batchOf(totalBytes: number, valueBytes: number): Uint8Array {
  const items: Uint8Array[] = [];
  let bytes = 0;
  for (let i = 0; bytes < totalBytes; i++) {
    const e = envelopeOf(valueBytes, i);
    items.push(e);
    bytes += e.length;
  }
  return encodeBatch('n1', 'n2', items);
}

const cases: [string, Uint8Array][] = [
  ['one replica ack (small envelope)', encodeEnvelope({ v: protocolVersion, kind: 'replica.put.ok', from: 'n2', to: 'n1', reqId: 'r1', body: { p: 3 } })],
  ['batch of 16 puts, 100-byte values', batchOf(16 * 170, 100)],
  ['batch of 64 KiB', batchOf(64 * 1024, 100)],
  ['batch of 256 KiB', batchOf(256 * 1024, 100)],
];

function time(iterations: number, fn: () => void): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return ((performance.now() - start) * 1000) / iterations;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = new Map<string, { seal: number[]; open: number[]; msgpack: number[]; bytes: number }>();
for (const [name, payload] of cases) results.set(name, { seal: [], open: [], msgpack: [], bytes: payload.length });
const idCheck: number[] = [];
const senders = Array.from({ length: 8 }, (_, i) => `sender-${i}`);
for (let r = 0; r < rounds; r++) {
  for (const [name, payload] of cases) {
    const iterations = Math.max(50, Math.floor(2_000_000 / (payload.length + 200)));
    const res = results.get(name)!;
    const now = Date.now();
    // Each round opens one sealed message many times: the bench times the mac, not the id check.
    const sealed = seal(key, subject, payload, now);
    res.seal.push(time(iterations, () => seal(key, subject, payload, now)));
    res.open.push(
      time(iterations, () => {
        if (!openSealed(key, subject, sealed, now).ok) throw new Error('seal did not open');
      }),
    );
    const value = decode(payload);
    res.msgpack.push(time(Math.max(20, iterations / 4), () => decode(encode(value))));
  }
  const guard = new ReplayGuard(0, sealWindowMs);
  const now = Date.now();
  let counter = 0;
  idCheck.push(
    time(1_000_000, () => {
      counter++;
      if (guard.admit(senders[counter & 7]!, counter, now, now) !== 'fresh') throw new Error('refused a fresh id');
    }),
  );
}
console.log('µs per message (median of %d rounds)', rounds);
console.log(['message', 'bytes', 'seal', 'open', 'seal+open', 'msgpack pack+unpack'].join('\t'));
for (const [name, res] of results) {
  const s = median(res.seal);
  const o = median(res.open);
  console.log([name, res.bytes, s.toFixed(2), o.toFixed(2), (s + o).toFixed(2), median(res.msgpack).toFixed(2)].join('\t'));
}
console.log('id check (replay guard, per sealed message): %s µs', median(idCheck).toFixed(3));
