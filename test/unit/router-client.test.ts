/**
 * The router on the client API role: a request is validated before the node sees it, and whatever
 * a client sends, it gets one answer (a request or an error envelope) and the router keeps going.
 */
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import type { Transport } from '../../src/ports/transport.js';
import { createRouter, type RouterStats } from '../../src/runtime/router.js';

const key = new TextEncoder().encode('k');
const value = new TextEncoder().encode('v');

function setup() {
  const delivered: NodeEvent[] = [];
  const replies: { replyTo: string; bytes: Uint8Array }[] = [];
  const transport = { reply: (replyTo: string, bytes: Uint8Array) => replies.push({ replyTo, bytes }) } as unknown as Transport;
  const stats: RouterStats = { received: 0, droppedInvalid: 0, rejected: 0 };
  const route = createRouter({ nodeId: 'n1', q: 64, limits: defaultLimits, transport, deliver: (e) => delivered.push(e), stats, now: () => 0 });
  // api.backup is an admin operation: it arrives on the admin role.
  const request = (kind: string, body: unknown) =>
    route({ role: kind === 'api.backup' ? 'admin' : 'api', replyTo: '_INBOX.1', bytes: encodeEnvelope({ v: protocolVersion, kind, from: 'client-1', to: '', reqId: '1', body }) });
  const answered = () => replies.map((r) => decodeEnvelope(r.bytes)).map((e) => (typeof e === 'string' ? e : { kind: e.kind, code: (e.body as { code?: string }).code }));
  return { delivered, answered, request };
}

describe('router: client requests', () => {
  it('takes a nil context as no context: a blind write, not a crash', () => {
    const { delivered, answered, request } = setup();
    request('api.put', { key, value, context: null });
    request('api.del', { key, context: null });
    expect(answered()).toEqual([]);
    expect(delivered.map((e) => [e.type, (e as { context?: unknown }).context])).toEqual([
      ['api.put', []],
      ['api.del', []],
    ]);
  });

  it('answers a context that is not bytes, or not one ringkv issued, with BAD_REQUEST and goes on serving', () => {
    const { delivered, answered, request } = setup();
    request('api.put', { key, value, context: 42 });
    request('api.put', { key, value, context: new Uint8Array([0xc1]) });
    request('api.put', { key, value });
    expect(answered()).toEqual([
      { kind: 'error', code: 'BAD_REQUEST' },
      { kind: 'error', code: 'BAD_REQUEST' },
    ]);
    expect(delivered.map((e) => e.type)).toEqual(['api.put']);
  });

  it('passes an api.backup with a directory name on, and answers one without with BAD_REQUEST', () => {
    const { delivered, answered, request } = setup();
    request('api.backup', { dir: 'nightly' });
    request('api.backup', {});
    request('api.backup', { dir: '' });
    request('api.backup', { dir: 42 });
    request('api.backup', { dir: 'a\0b' });
    request('api.backup', { dir: 'x'.repeat(5000) });
    expect(answered()).toEqual(Array.from({ length: 5 }, () => ({ kind: 'error', code: 'BAD_REQUEST' })));
    expect(delivered).toEqual([{ type: 'api.backup', from: 'client-1', reqId: '1', replyTo: '_INBOX.1', dir: 'nightly' }]);
  });
});
