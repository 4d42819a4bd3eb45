/**
 * Subjects by role: the router takes a request kind only on the role of the subject it arrived on
 * (src/protocol/subjects.ts). An admin kind on a client subject, or a client kind on the admin
 * subject, is answered WRONG_SUBJECT and never reaches the node; anything but a coordinated request
 * (or a status) on the forward role (node traffic) is dropped and counted; a forwarded request is never forwarded
 * again, whatever its body says.
 */
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { encodeBatch } from '../../src/protocol/batch.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { adminKinds, clientKinds } from '../../src/protocol/messages.js';
import type { Role, Transport } from '../../src/ports/transport.js';
import { createRouter, type RouterStats } from '../../src/runtime/router.js';

const key = new TextEncoder().encode('k');
const value = new TextEncoder().encode('v');

const bodies: Record<string, unknown> = {
  'api.put': { key, value },
  'api.del': { key },
  'api.get': { key },
  'api.local.get': { key },
  'api.status': {},
  'api.hints': {},
  'api.transfers': {},
  'api.aae': { op: 'pause' },
  'api.cluster': { op: 'plan' },
  'api.backup': { dir: 'nightly' },
};

function setup() {
  const delivered: NodeEvent[] = [];
  const replies: Uint8Array[] = [];
  const transport = { reply: (_replyTo: string, bytes: Uint8Array) => replies.push(bytes) } as unknown as Transport;
  const stats: RouterStats = { received: 0, droppedInvalid: 0, rejected: 0 };
  const route = createRouter({ nodeId: 'n1', q: 64, limits: defaultLimits, transport, deliver: (e) => delivered.push(e), stats, now: () => 0 });
  const envelope = (kind: string, reqId = '1') => encodeEnvelope({ v: protocolVersion, kind, from: 'someone', to: '', reqId, body: bodies[kind] ?? {} });
  const request = (role: Role, kind: string) => route({ role, replyTo: '_INBOX.1', bytes: envelope(kind) });
  const codes = () => replies.map((r) => decodeEnvelope(r)).map((e) => (typeof e === 'string' ? e : (e.body as { code?: string }).code ?? e.kind));
  return { delivered, codes, request, route, envelope, stats };
}

describe('router: kinds by role', () => {
  it('takes every client kind on the client role and every admin kind on the admin role', () => {
    const { delivered, codes, request } = setup();
    for (const kind of clientKinds) request('api', kind);
    for (const kind of adminKinds) request('admin', kind);
    expect(codes()).toEqual([]);
    expect(delivered.map((e) => e.type)).toEqual([...clientKinds, ...adminKinds]);
  });

  it('refuses every admin kind on the client role with WRONG_SUBJECT, and the node never sees it', () => {
    const { delivered, codes, request, stats } = setup();
    for (const kind of adminKinds) request('api', kind);
    expect(codes()).toEqual(adminKinds.map(() => 'WRONG_SUBJECT'));
    expect(delivered).toEqual([]);
    expect(stats.wrongSubject).toBe(adminKinds.length);
    expect(stats.rejected).toBe(adminKinds.length);
  });

  it('refuses client kinds on the admin role, also inside a batch, item by item', () => {
    const { delivered, codes, request, route, envelope } = setup();
    request('admin', 'api.put');
    route({ role: 'api', replyTo: '_INBOX.2', bytes: encodeBatch('someone', '', [envelope('api.get', 'a'), envelope('api.cluster', 'b'), envelope('api.status', 'c')]) });
    expect(codes()).toEqual(['WRONG_SUBJECT', 'WRONG_SUBJECT']);
    expect(delivered.map((e) => e.type)).toEqual(['api.get', 'api.status']);
  });

  it('drops and counts anything but a coordinated request on the forward role, and never forwards one again', () => {
    const { delivered, codes, request, stats } = setup();
    for (const kind of ['api.cluster', 'api.local.get', 'api.hints', 'replica.put']) request('forward', kind);
    expect(codes()).toEqual([]);
    expect(delivered).toEqual([]);
    expect(stats.droppedInvalid).toBe(4);
    request('forward', 'api.get');
    request('api', 'api.get');
    expect(delivered.map((e) => [e.type, (e as { forwarded?: boolean }).forwarded])).toEqual([
      ['api.get', true],
      ['api.get', false],
    ]);
  });

  it('still answers an unknown kind with BAD_REQUEST', () => {
    const { codes, request } = setup();
    request('admin', 'api.explode');
    request('api', 'replica.put');
    expect(codes()).toEqual(['BAD_REQUEST', 'BAD_REQUEST']);
  });

  it('takes an operation only on the subject that names it (issue 28): api.put only on ...api.put', () => {
    const { delivered, codes, route, envelope, stats } = setup();
    const at = (role: Role, subject: string, bytes: Uint8Array) => route({ role, subject, replyTo: '_INBOX.1', bytes });
    at('api', 'ringkv.c.api.put', envelope('api.put', 'ok-1'));
    at('api', 'ringkv.c.node.n1.api.put', envelope('api.put', 'ok-2'));
    at('api', 'ringkv.c.node.n1.api.local.get', envelope('api.local.get', 'ok-3'));
    at('admin', 'ringkv.c.node.n1.admin.cluster', envelope('api.cluster', 'ok-4'));
    expect(delivered.map((e) => e.type)).toEqual(['api.put', 'api.put', 'api.local.get', 'api.cluster']);
    expect(codes()).toEqual([]);
    // A write on a read's subject, a delete on a put's, an operation on the bare node subject, an
    // admin operation on another's, and a put inside a batch sent on the get subject.
    at('api', 'ringkv.c.api.get', envelope('api.put'));
    at('api', 'ringkv.c.api.put', envelope('api.del'));
    at('api', 'ringkv.c.node.n1.api.get', envelope('api.del'));
    at('api', 'ringkv.c.node.n1.api', envelope('api.get'));
    at('api', 'ringkv.c.node.n1.api.local.get', envelope('api.get'));
    at('admin', 'ringkv.c.admin.hints', envelope('api.cluster'));
    at('api', 'ringkv.c.node.n1.api.get', encodeBatch('someone', '', [envelope('api.get', 'in-1'), envelope('api.put', 'in-2')]));
    expect(codes()).toEqual(Array.from({ length: 7 }, () => 'WRONG_SUBJECT'));
    expect(delivered.map((e) => e.type)).toEqual(['api.put', 'api.put', 'api.local.get', 'api.cluster', 'api.get']);
    expect(stats.wrongSubject).toBe(7);
  });
});
