/**
 * docs/protocol.md cannot drift from the code: every hex block in it is a named example
 * (`<!-- example: name -->`), byte for byte what the code encodes for that example
 * (test/support/protocol-examples.ts makes them with the real encoders, DVV functions and router),
 * and each decodes to an envelope whose body fits the schema of its kind (src/protocol/schemas.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decode } from '../../src/protocol/codec.js';
import { decodeEnvelope } from '../../src/protocol/envelope.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { adminSubject, apiSubject, kindMatchesSubject, nodeOpSubject, readerPublishSubjects } from '../../src/protocol/subjects.js';
import { checkers, clientAnswerSchemas, clientRequestSchemas, jsonSchemaOf } from '../../src/protocol/schemas.js';
import { checkClientBody, checkDvvSet, decodeContext } from '../../src/protocol/validation.js';
import { repoRoot } from '../support/cluster.js';
import { hexLines, protocolExamples } from '../support/protocol-examples.js';

const doc = readFileSync(path.join(repoRoot, 'docs', 'protocol.md'), 'utf8');

function hexBlocks(): { name: string | undefined; hex: string }[] {
  const out: { name: string | undefined; hex: string }[] = [];
  const re = /(?:<!-- example: ([\w-]+) -->\n)?```hex\n([\s\S]*?)\n```/g;
  for (let m = re.exec(doc); m !== null; m = re.exec(doc)) out.push({ name: m[1], hex: m[2]! });
  return out;
}

const bytesOf = (hex: string) => new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

/** Checks one decoded envelope's body against its kind's schema; returns what was wrong, or null. */
function bodyProblem(bytes: Uint8Array): string | null {
  const env = decodeEnvelope(bytes);
  if (typeof env === 'string') return env;
  if (env.kind === 'batch') {
    if (!checkers.batch.Check(env.body)) return 'batch body';
    for (const item of env.body.items) {
      const problem = bodyProblem(item);
      if (problem) return `batch item: ${problem}`;
    }
    return null;
  }
  if (env.kind in clientRequestSchemas) {
    const checked = checkClientBody(env.kind, env.body, defaultLimits);
    return checked.ok ? null : checked.message;
  }
  if (env.kind in clientAnswerSchemas) {
    const check = checkers.answers[env.kind as keyof typeof checkers.answers];
    if (!check.Check(env.body)) return `${env.kind} body does not fit its schema`;
    const body = env.body as { context?: Uint8Array; state?: unknown };
    if (body.context !== undefined && !decodeContext(body.context, defaultLimits).ok) return 'the context is not one a node accepts';
    if (body.state !== undefined && body.state !== null && !checkDvvSet(body.state)) return 'the state is not a DVV set';
    return null;
  }
  return `no schema for kind ${env.kind}`;
}

describe('docs/protocol.md', () => {
  const examples = new Map(protocolExamples().map((e) => [e.name, e.bytes]));
  const blocks = hexBlocks();

  it('names every hex block, and shows every example once', () => {
    expect(blocks.filter((b) => b.name === undefined)).toEqual([]);
    expect(blocks.map((b) => b.name).sort()).toEqual([...examples.keys()].sort());
  });

  it('shows each example exactly as the code encodes it', () => {
    for (const block of blocks) {
      const bytes = examples.get(block.name!);
      expect(bytes, block.name).toBeDefined();
      expect(block.hex, block.name).toBe(hexLines(bytes!));
    }
  });

  it('has examples that decode and fit the schema of their kind', () => {
    for (const block of blocks) {
      if (block.name === 'version-two-request') continue;
      expect(bodyProblem(bytesOf(block.hex)), block.name).toBeNull();
    }
  });

  it('shows a version this node does not speak refused as the document says', () => {
    const request = blocks.find((b) => b.name === 'version-two-request')!;
    expect(decodeEnvelope(bytesOf(request.hex))).toBe('unsupported protocol version 2 (this node speaks 1)');
    const answer = decodeEnvelope(bytesOf(blocks.find((b) => b.name === 'version-two-answer')!.hex));
    expect(answer).toMatchObject({ v: 1, kind: 'error', reqId: '', to: '', body: { code: 'BAD_REQUEST' } });
    expect(doc).toContain('unsupported protocol version 2\n(this node speaks 1)');
  });

  it('decodes the siblings context as the document says', () => {
    const answer = decodeEnvelope(bytesOf(blocks.find((b) => b.name === 'get-answer-siblings')!.hex));
    if (typeof answer === 'string') throw new Error(answer);
    const body = answer.body as { values: Uint8Array[]; context: Uint8Array };
    expect(body.values.map((v) => Buffer.from(v).toString())).toEqual(['apple', 'pear']);
    expect(decode(body.context)).toEqual([
      ['n1/7f3a', 1],
      ['n2/c41d', 1],
    ]);
    expect(doc).toContain('`[["n1/7f3a", 1], ["n2/c41d", 1]]`');
  });

  it('lists every error code the protocol has', async () => {
    const { errorCodes } = await import('../../src/protocol/errors.js');
    for (const code of errorCodes) expect(doc, code).toContain(`\`${code}\``);
  });
});

describe('the schemas as JSON Schema', () => {
  it('writes bytes as msgpack-bin strings and keeps no refusal sentences', () => {
    const put = jsonSchemaOf(clientRequestSchemas['api.put']) as { properties: Record<string, unknown>; required: string[] };
    expect(put.properties.key).toEqual({ type: 'string', contentEncoding: 'msgpack-bin', minLength: 1 });
    expect(put.required.sort()).toEqual(['key', 'value']);
    expect(JSON.stringify(put)).not.toContain('errorMessage');
  });

  it('names the subjects the code uses: each operation on a subject of its own, directed ones too', () => {
    const c = '<cluster>';
    const n = '<nodeId>';
    // The subjects the client library and the nodes use (src/protocol/subjects.ts), in the table of §1.
    for (const subject of [apiSubject(c, '<op>'), nodeOpSubject(c, n, 'api', '<op>'), adminSubject(c, '<op>'), nodeOpSubject(c, n, 'admin', '<op>')]) {
      expect(doc, subject).toContain(`| \`${subject}\` |`);
    }
    // The read-only user's subjects, as the secured configuration grants them.
    for (const subject of readerPublishSubjects(c)) expect(subject.startsWith(`ringkv.${c}.`)).toBe(true);
    expect(doc).toContain(`\`${apiSubject(c, 'get')}\`, \`${apiSubject(c, 'status')}\``);
    // A put is taken on its own subject only.
    expect(kindMatchesSubject('api', 'api.put', apiSubject(c, 'put'))).toBe(true);
    expect(kindMatchesSubject('api', 'api.put', apiSubject(c, 'get'))).toBe(false);
  });
});
