/**
 * The inspection tap on the node's coordinator actor, which runs requests as cores, not actors: its
 * traced batches become records of an actor named by each request's id, so that a followed request
 * reads as a spawned coordinator's did (start, states checking -> ... -> done, sends, answers) and
 * `ringkv trace` summarizes it; the requests before and after it are not in the session; the node's
 * routing of a request (received, forwarded) is in the node's records; peers are told of the
 * request's id before its replica messages leave.
 */
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import { type CoordinatorOutput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { ClientReadEvent } from '../../actors/node.events.js';
import type { RouteView } from '../../actors/node-routes.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { summarizeTrace } from '../../src/runtime/inspect-client.js';
import type { InspectRecord } from '../../src/runtime/inspect-protocol.js';
import { InspectTap } from '../../src/runtime/inspect-tap.js';

const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 16);
const view: RouteView = { nodeId: 'n1', ring, down: {}, quorumDefault: { n: 3, r: 2, w: 2 }, limits: defaultLimits };
const text = new TextEncoder();

function keyWhere(owned: boolean): Uint8Array {
  for (let i = 0; ; i++) {
    const key = text.encode(`k${i}`);
    if (preferenceList(ring, partitionOf(key, ring.q), 3).includes('n1') === owned) return key;
  }
}

function start() {
  const sent: { to: string; kind: string; reqId: string }[] = [];
  const correlated: unknown[][] = [];
  const tap = new InspectTap({ nodeId: 'n1', clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} }, correlate: (...a) => void correlated.push(a) });
  const perform = (outputs: CoordinatorOutput[]) => {
    for (const o of outputs) {
      // The order the runtime keeps: the trace of a step before the messages it sends.
      if (o.type === 'trace' || o.type === 'routed') tap.coordinatorTrace(o);
      if (o.type === 'send') sent.push(o.params);
      if (o.type === 'sendAll') sent.push(...o.params);
    }
  };
  const actor = createActor(coordinatorMachine.provide({ actions: { perform: (_, p: CoordinatorOutput[]) => perform(p) } }), {
    input: { nodeId: 'n1', coordinatorsMax: 100, requestTimeoutMs: 1000, readRepairWaitMs: 20, fallbackWaitMs: 300 },
  });
  tap.attach(actor);
  actor.start();
  const batch = (items: CoordinatorItem[]) => actor.send({ type: 'coordinator.batch', items, now: 0, view, traced: tap.watching });
  return { tap, sent, correlated, batch };
}

const get = (reqId: string, key: Uint8Array): ClientReadEvent => ({ type: 'api.get', from: 'client', reqId, replyTo: `_INBOX.${reqId}`, key, options: {}, forwarded: false, bytes: new Uint8Array() });

describe('InspectTap: the coordinator actor', () => {
  it('follows one request from its start to done, as a request actor of its own, and nothing of the others', () => {
    const { tap, sent, correlated, batch } = start();
    const key = keyWhere(true);
    const records: InspectRecord[] = [];
    const serve = (reqId: string) => {
      sent.length = 0;
      batch([get(reqId, key)]);
      const id = sent[0]!.reqId;
      batch(sent.map((s) => ({ type: 'replica.get.ok', from: s.to, reqId: id, body: { state: null } })));
      return id;
    };
    serve('a');
    tap.follow({ session: 's', request: 'b', peers: ['n1', 'n2'], durationMs: 10_000, sampleEvery: 1 }, { records: (m) => records.push(...m.records), end: () => {} });
    const b = serve('b');
    serve('c');
    tap.stop('s');

    expect(b).toBe('coordinator-2');
    const mine = records.filter((r) => r.actor === b);
    expect(mine[0]).toMatchObject({ kind: 'start', machine: 'coordinator', input: { id: b, client: { reqId: 'b' } } });
    expect(mine.at(-1)).toMatchObject({ kind: 'done', state: 'done' });
    expect(records.every((r) => r.actor === b || r.actor === 'n1')).toBe(true);
    expect(JSON.stringify(records)).not.toContain('coordinator-3');
    // The peer is told of the request's id (its replicas then follow its messages).
    expect(correlated).toEqual([['n2', 's', 'n1', b]]);
    const s = summarizeTrace(records, 'b');
    expect(s.receivedBy).toEqual(['n1']);
    expect(s.coordinator).toMatchObject({ node: 'n1', actor: b, op: 'get' });
    // All three answered in one batch: after R, the third ends the wait for late answers at once.
    expect(s.states).toEqual(['checking', 'collecting', 'repairing', 'done']);
    expect(s.asked.sort()).toEqual(preferenceList(ring, partitionOf(key, ring.q), 3).sort());
    expect(s.answered).toHaveLength(3);
    expect(s.clientAnswer).toMatchObject({ kind: 'api.get.ok' });
  });

  it('shows a request this node passes on as received and forwarded, with no coordinator', () => {
    const { tap, batch } = start();
    const records: InspectRecord[] = [];
    tap.follow({ session: 's', request: 'f', durationMs: 10_000, sampleEvery: 1 }, { records: (m) => records.push(...m.records), end: () => {} });
    batch([get('f', keyWhere(false)), get('g', keyWhere(false))]);
    tap.stop('s');
    const s = summarizeTrace(records, 'f');
    expect(s.receivedBy).toEqual(['n1']);
    expect(s.forwards).toHaveLength(1);
    expect(s.coordinator).toBeUndefined();
  });

  it('costs a batch nothing while no session is open: no trace in its outputs', () => {
    const outputs: CoordinatorOutput[][] = [];
    const actor = createActor(coordinatorMachine.provide({ actions: { perform: (_, p: CoordinatorOutput[]) => void outputs.push(p) } }), {
      input: { nodeId: 'n1', coordinatorsMax: 100, requestTimeoutMs: 1000, readRepairWaitMs: 20, fallbackWaitMs: 300 },
    }).start();
    const tap = new InspectTap({ nodeId: 'n1', clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} } });
    tap.attach(actor);
    actor.send({ type: 'coordinator.batch', items: [get('x', keyWhere(true))], now: 0, view, traced: tap.watching });
    expect(outputs[0]!.some((o) => o.type === 'trace' || o.type === 'routed')).toBe(false);
  });
});
