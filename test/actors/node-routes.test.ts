/**
 * The request path's routing as pure functions (actors/node-routes.ts): what the runtime's fast path
 * sends straight to a child, what it counts as late, and what it leaves to the node machine.
 */
import { describe, expect, it } from 'vitest';
import { type ChildRef, type RouteView, coordinatorFor, directRoute, localReadRoute, replicaId } from '../../actors/node-routes.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';

const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 16);
const view: RouteView = { nodeId: 'n1', ring, down: {}, quorumDefault: { n: 3, r: 2, w: 2 }, limits: defaultLimits };
const text = new TextEncoder();

function child(value: string, id?: string): ChildRef & { got: unknown[] } {
  const got: unknown[] = [];
  return { got, send: (e) => void got.push(e), getSnapshot: () => ({ status: 'active', value, context: { id } }) };
}

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
  it('sends a replica request to the replica of its partition once it exists, else to the node', () => {
    const replica = child('serving');
    const event: NodeEvent = { type: 'replica.get', from: 'n2', reqId: 'coordinator-0.1', body: { p: 3, key: text.encode('k') } };
    expect(directRoute(view, { [replicaId(3)]: replica }, event)).toEqual({ to: replica, event });
    expect(directRoute(view, { [replicaId(4)]: replica }, event)).toBeUndefined();
  });

  it('sends a replica answer to the coordinator serving its request, and calls any other answer late', () => {
    const busy = child('replicating', 'coordinator-2.7');
    const idle = child('idle', 'coordinator-5.3');
    const children = { 'coordinator-2': busy, 'coordinator-5': idle };
    const answer = (reqId: string): NodeEvent => ({ type: 'replica.put.ok', from: 'n2', reqId, body: {} });
    expect(directRoute(view, children, answer('coordinator-2.7'))).toEqual({ to: busy, event: answer('coordinator-2.7') });
    // The slot serves a later request, is idle, or never existed: the answer is late.
    expect(directRoute(view, children, answer('coordinator-2.6'))).toEqual({ late: true });
    expect(directRoute(view, children, answer('coordinator-5.3'))).toEqual({ late: true });
    expect(directRoute(view, children, answer('coordinator-9.1'))).toEqual({ late: true });
    expect(directRoute(view, children, answer('not-a-coordinator'))).toEqual({ late: true });
    expect(coordinatorFor(children, 'coordinator-2.7')).toBe(busy);
  });

  it('turns a client-driven read of an owned key into replica.local.get for its replica', () => {
    const key = keyWhere(true);
    const p = partitionOf(key, ring.q);
    const replica = child('serving');
    expect(directRoute(view, { [replicaId(p)]: replica }, localGet(key))).toEqual({
      to: replica,
      event: { type: 'replica.local.get', from: 'client', reqId: 'r1', replyTo: '_INBOX.1', p, key },
    });
    // No replica yet: the node machine spawns it.
    expect(directRoute(view, {}, localGet(key))).toBeUndefined();
  });

  it('leaves a read this node must refuse to the node machine, which answers it', () => {
    const key = keyWhere(false);
    const p = partitionOf(key, ring.q);
    expect(directRoute(view, { [replicaId(p)]: child('serving') }, localGet(key))).toBeUndefined();
    expect(localReadRoute(view, localGet(key) as never)).toMatchObject({ error: { code: 'NOT_OWNER' } });
    expect(localReadRoute(view, { key, options: { n: 99 } })).toMatchObject({ error: { code: 'BAD_REQUEST' } });
  });

  it('routes everything else through the node machine', () => {
    expect(directRoute(view, {}, { type: 'api.status', from: 'c', reqId: 'r', replyTo: 'x' })).toBeUndefined();
    expect(directRoute(view, {}, { type: 'member.down', nodeId: 'n2' })).toBeUndefined();
  });
});
