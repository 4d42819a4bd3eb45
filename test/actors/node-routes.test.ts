/**
 * The request path's routing as pure functions (actors/node-routes.ts): what the runtime's fast path
 * sends straight to a child, what goes into the coordinator's batch, and what it leaves to the node machine.
 */
import { describe, expect, it } from 'vitest';
import { type RouteView, clientRoute, directRoute, localReadRoute } from '../../actors/node-routes.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';

const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 16);
const view: RouteView = { nodeId: 'n1', ring, down: {}, quorumDefault: { n: 3, r: 2, w: 2 }, limits: defaultLimits };
const text = new TextEncoder();

/** A key whose preference list holds n1 (owned) or not (foreign). */
function keyWhere(owned: boolean): Uint8Array {
  for (let i = 0; ; i++) {
    const key = text.encode(`k${i}`);
    if (preferenceList(ring, partitionOf(key, ring.q), 3).includes('n1') === owned) return key;
  }
}

const localGet = (key: Uint8Array): NodeEvent => ({
  type: 'api.local.get',
  from: 'client',
  reqId: 'r1',
  replyTo: '_INBOX.1',
  key,
  options: {},
  forwarded: false,
  bytes: new Uint8Array(),
});

describe('directRoute', () => {
  it("puts replica writes into the replica's batch and answers replica reads in the runtime", () => {
    const get: NodeEvent = { type: 'replica.get', from: 'n2', reqId: 'coordinator-0.1', body: { p: 3, key: text.encode('k') } };
    expect(directRoute(view, get)).toEqual({ read: get });
    const put: NodeEvent = { type: 'replica.put', from: 'n2', reqId: 'coordinator-0.2', body: { p: 3, key: text.encode('k'), state: [] } };
    expect(directRoute(view, put)).toEqual({ replica: put });
    const coordinate: NodeEvent = { type: 'replica.coordinate', from: 'n1', reqId: 'coordinator-0.3', body: { p: 3, key: text.encode('k'), context: [], value: null } };
    expect(directRoute(view, coordinate)).toEqual({ replica: coordinate });
  });

  it('puts client requests and replica answers into the coordinator batch, whatever their request id', () => {
    const answer: NodeEvent = { type: 'replica.put.ok', from: 'n2', reqId: 'coordinator-7', body: {} };
    expect(directRoute(view, answer)).toEqual({ coordinator: answer });
    const forged: NodeEvent = { ...answer, reqId: 'not-a-coordinator' };
    expect(directRoute(view, forged)).toEqual({ coordinator: forged });
    const put: NodeEvent = { type: 'api.put', from: 'c', reqId: 'r', replyTo: 'x', key: text.encode('k'), options: {}, forwarded: false, bytes: new Uint8Array(), value: null, context: [] };
    expect(directRoute(view, put)).toEqual({ coordinator: put });
  });

  it('turns a client-driven read of an owned key into a local read of its partition', () => {
    const key = keyWhere(true);
    const p = partitionOf(key, ring.q);
    expect(directRoute(view, localGet(key))).toEqual({ localRead: { type: 'replica.local.get', from: 'client', reqId: 'r1', replyTo: '_INBOX.1', p, key } });
  });

  it('leaves a read this node must refuse to the node machine, which answers it', () => {
    const key = keyWhere(false);
    expect(directRoute(view, localGet(key))).toBeUndefined();
    expect(localReadRoute(view, localGet(key) as never)).toMatchObject({ error: { code: 'NOT_OWNER' } });
    expect(localReadRoute(view, { key, options: { n: 99 } })).toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });

  it('routes everything else through the node machine', () => {
    expect(directRoute(view, { type: 'api.status', from: 'c', reqId: 'r', replyTo: 'x' })).toBeUndefined();
    expect(directRoute(view, { type: 'member.down', nodeId: 'n2' })).toBeUndefined();
  });
});

describe('clientRoute', () => {
  const put = (key: Uint8Array, extra: Partial<{ forwarded: boolean; options: Record<string, unknown> }> = {}) =>
    ({ type: 'api.put', from: 'c', reqId: 'r', replyTo: 'x', key, options: {}, forwarded: false, bytes: new Uint8Array(), value: null, context: [], ...extra }) as never;

  it('coordinates a key this node is a target of, itself first among the targets', () => {
    const route = clientRoute(view, put(keyWhere(true)));
    if (!('coordinate' in route)) throw new Error(`expected coordinate, got ${JSON.stringify(route)}`);
    expect(route.coordinate.targets[0]).toEqual({ node: 'n1' });
    expect(route.coordinate.op).toBe('put');
    expect(route.coordinate.quorum).toEqual({ n: 3, r: 2, w: 2 });
  });

  it('forwards a key it is not a target of to the first target, once', () => {
    const key = keyWhere(false);
    const first = preferenceList(ring, partitionOf(key, ring.q), 3)[0];
    expect(clientRoute(view, put(key))).toEqual({ forward: first });
    expect(clientRoute(view, put(key, { forwarded: true }))).toMatchObject({ error: { code: 'NOT_OWNER' } });
  });

  it('refuses a bad quorum with BAD_REQUEST', () => {
    expect(clientRoute(view, put(keyWhere(true), { options: { w: 9 } }))).toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });
});

describe('requestQuorum', () => {
  it("caps the node's default R and W at the N a request asks for, and refuses only what the client asked", async () => {
    const { requestQuorum } = await import('../../actors/node-routes.js');
    expect(requestQuorum(view, { n: 1 })).toEqual({ n: 1, r: 1, w: 1 });
    expect(requestQuorum(view, { n: 1, r: 1 })).toEqual({ n: 1, r: 1, w: 1 });
    expect(requestQuorum(view, {})).toEqual({ n: 3, r: 2, w: 2 });
    expect(requestQuorum(view, { n: 1, w: 2 })).toMatch(/w must be at most n \(1\), got 2/);
  });
});
