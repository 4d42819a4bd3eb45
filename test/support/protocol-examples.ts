/**
 * The worked examples of docs/protocol.md, made by the code that makes real messages: envelopes by
 * encodeEnvelope, contexts and DVV sets by the DVV functions a node uses (update, join, the
 * coordinator core's readResult), refusals by the router itself. test/unit/protocol-doc.test.ts
 * checks that every hex block of the document is one of these, byte for byte, and that each decodes
 * and fits its schema; `npx tsx test/support/protocol-examples.ts` prints them as the document
 * shows them, for when the protocol changes on purpose.
 */
import { readResult } from '../../actors/coordinator.core.js';
import { type DvvSet, join, update } from '../../src/core/dvv.js';
import { encode } from '../../src/protocol/codec.js';
import { encodeBatch } from '../../src/protocol/batch.js';
import { encodeEnvelope, protocolVersion, type Envelope } from '../../src/protocol/envelope.js';
import { errorBody } from '../../src/protocol/errors.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import type { Transport } from '../../src/ports/transport.js';
import { createRouter } from '../../src/runtime/router.js';

export interface ProtocolExample {
  /** The name the document gives the example (`<!-- example: name -->` before its hex block). */
  name: string;
  bytes: Uint8Array;
}

const text = new TextEncoder();
const bin = (s: string) => text.encode(s);
const client = 'py-1';

const request = (kind: string, reqId: string, body: unknown, to = ''): Uint8Array => encodeEnvelope({ v: protocolVersion, kind, from: client, to, reqId, body });
const answer = (kind: string, from: string, reqId: string, body: unknown): Uint8Array => encodeEnvelope({ v: protocolVersion, kind, from, to: client, reqId, body });

/** What the router answers to these bytes on the api role (its real refusal). */
function refusal(bytes: Uint8Array): Uint8Array {
  const replies: Uint8Array[] = [];
  const transport = { reply: (_: string, b: Uint8Array) => replies.push(b) } as unknown as Transport;
  const route = createRouter({
    nodeId: 'n1',
    q: 64,
    limits: defaultLimits,
    transport,
    deliver: () => undefined,
    stats: { received: 0, droppedInvalid: 0, rejected: 0 },
    now: () => 0,
  });
  route({ role: 'api', replyTo: '_INBOX.example', bytes });
  if (replies.length !== 1) throw new Error(`the router answered ${replies.length} times`);
  return replies[0]!;
}

export function protocolExamples(): ProtocolExample[] {
  // Two clients wrote cart:1 at the same time without a context, through n1 and n2: two siblings.
  const a: DvvSet = update([], [], 'n1/7f3a', bin('apple'));
  const both: DvvSet = update(a, [], 'n2/c41d', bin('pear'));
  const read = readResult(both);
  // A put with the read's context supersedes both; n1 makes the new dot.
  const merged = update(both, join(both), 'n1/7f3a', bin('apple,pear'));
  const deleted = update(merged, join(merged), 'n2/c41d', null);

  const putRequest = request('api.put', '1', { key: bin('cart:1'), value: bin('apple'), timeoutMs: 5000 });
  const versionTwo = encode({ v: 2, kind: 'api.get', from: client, to: '', reqId: '9', body: { key: bin('cart:1') } });
  return [
    { name: 'put-request', bytes: putRequest },
    { name: 'put-answer', bytes: answer('api.put.ok', 'n1', '1', { context: encode(join(a)) }) },
    { name: 'get-request', bytes: request('api.get', '2', { key: bin('cart:1') }) },
    { name: 'get-answer-siblings', bytes: answer('api.get.ok', 'n2', '2', read) },
    { name: 'put-with-context-request', bytes: request('api.put', '3', { key: bin('cart:1'), value: bin('apple,pear'), context: read.context }) },
    { name: 'put-with-context-answer', bytes: answer('api.put.ok', 'n1', '3', { context: encode(join(merged)) }) },
    { name: 'del-request', bytes: request('api.del', '4', { key: bin('cart:1'), context: encode(join(merged)) }) },
    { name: 'del-answer', bytes: answer('api.del.ok', 'n2', '4', { context: encode(join(deleted)) }) },
    { name: 'local-get-request', bytes: request('api.local.get', '5', { key: bin('cart:1'), n: 3 }, 'n1') },
    { name: 'local-get-answer', bytes: answer('api.local.get.ok', 'n1', '5', { state: both }) },
    { name: 'status-request', bytes: request('api.status', '6', {}) },
    { name: 'error-unavailable', bytes: answer('error', 'n1', '7', errorBody('UNAVAILABLE', 'needed 2 of 3 replicas, 1 alive (n1)', { needed: 2, alive: 1 })) },
    { name: 'error-bad-request', bytes: refusal(request('api.put', '8', { key: bin('cart:1'), value: 'apple' })) },
    { name: 'version-two-request', bytes: versionTwo },
    { name: 'version-two-answer', bytes: refusal(versionTwo) },
    {
      name: 'batch-request',
      bytes: encodeBatch(client, 'n1', [request('api.local.get', '10', { key: bin('a') }, 'n1'), request('api.local.get', '11', { key: bin('b') }, 'n1')]),
    },
  ];
}

/** The hex as the document writes it: 32 bytes a line, bytes separated by spaces. */
export function hexLines(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex').match(/../g) ?? [];
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 32) lines.push(hex.slice(i, i + 32).join(' '));
  return lines.join('\n');
}

export type { Envelope };

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  for (const e of protocolExamples()) process.stdout.write(`<!-- example: ${e.name} -->\n\`\`\`hex\n${hexLines(e.bytes)}\n\`\`\`\n\n`);
}
