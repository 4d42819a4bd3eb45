// Requests in (src/runtime/inbound-io.ts), alone: the intake lets only members' messages through to
// the current handler, and deliver hands each node event to the actor that takes it (the fast route
// to a child or into the coordinator's batch, else the node actor), refusing new work while the node
// drains.
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { coordinatorActorId, replicaId } from '../../actors/node-routes.js';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { Prng } from '../../src/core/prng.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork } from '../../src/adapters/sim/sim-network.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import type { Inbound } from '../../src/ports/transport.js';
import { createDeliver, createIntake } from '../../src/runtime/inbound-io.js';
import { createNodeShared } from '../../src/runtime/node-shared.js';
import { testSealKey } from '../support/cluster-secret.js';
import { identityOf, recorder, recordingLog } from '../support/role-ports.js';

const key = testSealKey('c');
const envelope = (kind: string, from: string) => encodeEnvelope({ v: protocolVersion, kind, from, to: 'n1', reqId: '1', body: {} });

describe('inbound-io: the intake', () => {
  it("passes members' sealed messages to the current handler, drops the rest, and switches handlers", async () => {
    const clock = new SimClock();
    const network = new SimNetwork(clock, new Prng(1));
    const shared = createNodeShared(identityOf('n1'), recordingLog());
    const intake = createIntake({ shared, seal: key, cluster: 'c', clock });
    await network.attach('n1', { key, cluster: 'c' }).listen(intake.admit);
    const member = network.attach('n2', { key, cluster: 'c' });
    const outsider = network.attach('n3');
    const first: Inbound[] = [];
    const second: Inbound[] = [];
    // Before any handler is set, admitted messages go nowhere (the node is not ready for them).
    member.send('n1', 'gossip', envelope('gossip.digest', 'n2'));
    await clock.runUntil(10);
    intake.setHandler((msg) => void first.push(msg));
    member.send('n1', 'gossip', envelope('gossip.digest', 'n2'));
    outsider.send('n1', 'gossip', envelope('gossip.digest', 'n3'));
    await clock.runUntil(20);
    intake.setHandler((msg) => void second.push(msg));
    member.send('n1', 'replica', envelope('replica.get', 'n2'));
    await clock.runUntil(30);
    expect(first.map((m) => [m.role, m.member])).toEqual([['gossip', true]]);
    expect(second.map((m) => [m.role, m.member])).toEqual([['replica', true]]);
    expect(shared.stats.gate.authenticated).toBe(3);
    expect(shared.stats.gate.unauthenticated).toEqual({ 'gossip/unsigned': 1 });
  });
});

function setup() {
  const shared = createNodeShared(identityOf('n1'), recordingLog());
  const coordinator: CoordinatorItem[] = [];
  const answers: AnswerParams[] = [];
  const seen: string[] = [];
  const replica = recorder();
  const root = recorder(() => ({ context: { ring: undefined }, children: { [replicaId(3)]: replica, [coordinatorActorId]: recorder() } }));
  const requests = {
    received: (op: string, from: string, reqId: string) => void seen.push(`${op} ${from} ${reqId}`),
    answered() {},
    forwarded() {},
  };
  const deliver = createDeliver({ shared, requests, toCoordinator: (item) => void coordinator.push(item), answerClient: (p) => void answers.push(p) });
  return { shared, deliver, coordinator, answers, seen, replica, root };
}

const put = { type: 'api.put', from: 'c1', reqId: 'p1', replyTo: 'inbox.1', key: new Uint8Array([1]), value: new Uint8Array([2]), context: [] } as unknown as NodeEvent;
const get = { type: 'api.get', from: 'c1', reqId: 'g1', replyTo: 'inbox.1', key: new Uint8Array([1]) } as unknown as NodeEvent;

describe('inbound-io: deliver', () => {
  it('counts client requests, and takes nothing before the node actor has started', () => {
    const { deliver, coordinator, seen } = setup();
    deliver(put);
    expect(seen).toEqual(['put c1 p1']);
    expect(coordinator).toEqual([]);
  });

  it("routes the request path straight: client requests and replica answers into the coordinator's batch, a replica's requests to its replica", () => {
    const { shared, deliver, coordinator, replica, root } = setup();
    shared.root = root;
    const answer = { type: 'replica.get.ok', from: 'n2', reqId: 'g1', body: { state: null } } as unknown as NodeEvent;
    const replicaGet = { type: 'replica.get', from: 'n2', reqId: 'x', body: { p: 3, key: new Uint8Array([1]) } } as unknown as NodeEvent;
    deliver(put);
    deliver(get);
    deliver(answer);
    deliver(replicaGet);
    expect(coordinator).toEqual([put, get, answer]);
    expect(replica.events).toEqual([replicaGet]);
    expect((root as unknown as { events: unknown[] }).events).toEqual([]);
  });

  it('sends the rest to the node actor: events that need a decision of the node, or a replica that does not exist here', () => {
    const { shared, deliver, coordinator, root } = setup();
    shared.root = root;
    const tick = { type: 'gossip.tick', now: 5 } as NodeEvent;
    const elsewhere = { type: 'replica.get', from: 'n2', reqId: 'x', body: { p: 4, key: new Uint8Array([1]) } } as unknown as NodeEvent;
    deliver(tick);
    deliver(elsewhere);
    expect((root as unknown as { events: unknown[] }).events).toEqual([tick, elsewhere]);
    expect(coordinator).toEqual([]);
  });

  it('refuses new puts, deletes and coordinated gets with NOT_READY while the node drains, and still takes replica traffic', () => {
    const { shared, deliver, coordinator, answers, replica, root } = setup();
    shared.root = root;
    shared.stopping = true;
    deliver(put);
    deliver(get);
    const replicaGet = { type: 'replica.get', from: 'n2', reqId: 'x', body: { p: 3, key: new Uint8Array([1]) } } as unknown as NodeEvent;
    deliver(replicaGet);
    expect(coordinator).toEqual([]);
    expect(answers.map((a) => [a.to, a.reqId, a.kind, (a.body as { code: string }).code])).toEqual([
      ['c1', 'p1', 'error', 'NOT_READY'],
      ['c1', 'g1', 'error', 'NOT_READY'],
    ]);
    expect(replica.events).toEqual([replicaGet]);
  });
});
