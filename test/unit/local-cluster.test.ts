import { describe, expect, it } from 'vitest';
import { exitCodeForError, exitCodeForErrorCode, exitCodes, isNatsUnreachable } from '../../src/cli/exit-codes.js';
import { formatIdList, formatTable, fromBase64, renderValue, toBase64 } from '../../src/cli/output.js';
import { isLoopbackHost, natsAddress, natsUrlDefault, resolveServerUrl } from '../../src/server/local-cluster.js';

describe('resolveServerUrl: --server, else NATS_URL, else nats://127.0.0.1:4222', () => {
  it('prefers the flag over the environment', () => {
    expect(resolveServerUrl('nats://flag:1', { NATS_URL: 'nats://env:2' })).toBe('nats://flag:1');
  });

  it('uses NATS_URL when there is no flag', () => {
    expect(resolveServerUrl(undefined, { NATS_URL: 'nats://env:2' })).toBe('nats://env:2');
  });

  it('falls back to the loopback default', () => {
    expect(resolveServerUrl(undefined, {})).toBe('nats://127.0.0.1:4222');
    expect(natsUrlDefault).toBe('nats://127.0.0.1:4222');
  });

  it('treats empty or blank values as absent', () => {
    expect(resolveServerUrl('', { NATS_URL: 'nats://env:2' })).toBe('nats://env:2');
    expect(resolveServerUrl('  ', { NATS_URL: '' })).toBe(natsUrlDefault);
  });
});

describe('natsAddress and isLoopbackHost', () => {
  it('reads host and port the way the nats tooling accepts them', () => {
    expect(natsAddress('nats://127.0.0.1:4222')).toEqual({ host: '127.0.0.1', port: 4222 });
    expect(natsAddress('nats://localhost')).toEqual({ host: 'localhost', port: 4222 });
    expect(natsAddress('example.com:5222')).toEqual({ host: 'example.com', port: 5222 });
    expect(natsAddress('nats://[::1]:4333,nats://other:4222')).toEqual({ host: '::1', port: 4333 });
  });

  it('knows the loopback addresses', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.1', 'nats.example.com', '0.0.0.0']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('CLI exit codes', () => {
  it('maps each error code to its documented exit code', () => {
    const expected: Record<string, number> = {
      BAD_REQUEST: 2,
      TOO_LARGE: 2,
      NO_CLUSTER: 3,
      UNAVAILABLE: 5,
      TIMEOUT: 6,
      TOO_MANY_SIBLINGS: 7,
      NOT_OWNER: 7,
      OVERLOADED: 7,
      INTERNAL: 7,
      NATS_AUTH: 8,
      NATS_PERMISSION: 12,
      WRONG_SUBJECT: 12,
    };
    for (const [code, exit] of Object.entries(expected)) expect(exitCodeForErrorCode(code), code).toBe(exit);
    expect(exitCodeForErrorCode('SOMETHING_NEW')).toBe(exitCodes.unexpected);
  });

  it('keeps the documented numbers', () => {
    expect(exitCodes).toEqual({ ok: 0, unexpected: 1, usage: 2, noCluster: 3, notFound: 4, unavailable: 5, timeout: 6, serverError: 7, natsAuth: 8, clusterSecret: 9, clusterMismatch: 10, nodeLeft: 11, forbidden: 12 });
    for (const code of ['NO_SECRET', 'BAD_SECRET', 'UNAUTHENTICATED']) expect(exitCodeForError(Object.assign(new Error(code), { code }))).toBe(9);
    expect(exitCodeForError(Object.assign(new Error('stray'), { code: 'CLUSTER_MISMATCH' }))).toBe(10);
  });

  it('maps thrown errors by their code, and NATS connection failures to 3', () => {
    const ringkvError = Object.assign(new Error('too few replicas'), { code: 'UNAVAILABLE', needed: 2, alive: 1 });
    expect(exitCodeForError(ringkvError)).toBe(5);

    const refused = Object.assign(new Error('connection refused'), { name: 'ConnectionError' });
    expect(isNatsUnreachable(refused)).toBe(true);
    expect(exitCodeForError(refused)).toBe(3);
    expect(exitCodeForError(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }))).toBe(3);

    // An errno code that is not a ringkv code is not mistaken for one.
    expect(exitCodeForError(Object.assign(new Error('disk'), { code: 'EACCES' }))).toBe(1);
    expect(exitCodeForError(new TypeError('bug'))).toBe(1);
    expect(exitCodeForError('a string')).toBe(1);
  });
});

describe('CLI output helpers', () => {
  it('aligns columns and indents the later lines of a multi-line cell', () => {
    expect(formatTable([['value', 'a'], ['context', 'b\nc']])).toBe('value    a\ncontext  b\n         c\n');
    expect(formatTable([], { header: ['A', 'BB'] })).toBe('A  BB\n');
    expect(formatTable([])).toBe('');
  });

  it('wraps the last column to the width', () => {
    const out = formatTable([['n1', '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14']], { width: 24 });
    for (const line of out.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(24);
    expect(out.split('\n')[1]!.startsWith('    ')).toBe(true);
  });

  it('renders UTF-8 as text and anything else as base64', () => {
    expect(renderValue(new TextEncoder().encode('{"a":1}'))).toEqual({ encoding: 'utf8', data: '{"a":1}' });
    expect(renderValue(new Uint8Array([0xff, 0xfe]))).toEqual({ encoding: 'base64', data: '//4=' });
  });

  it('round-trips contexts through base64 and rejects what is not base64', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252]);
    expect(fromBase64(toBase64(bytes))).toEqual(bytes);
    expect(fromBase64('not base64!')).toBeUndefined();
    expect(fromBase64('A')).toBeUndefined();
  });

  it('writes runs of partition ids as ranges', () => {
    expect(formatIdList([3, 0, 1, 2, 8, 10, 11, 12, 5, 6])).toBe('0-3, 5, 6, 8, 10-12');
    expect(formatIdList([])).toBe('');
  });
});
