// Requests in (src/runtime/inbound-io.ts), alone: the intake lets only members' messages through to
// the current handler, and deliver hands each node event to what takes it (the fast route into the
// coordinator's or the replica's batch, or to the reads, else the node actor), refusing new work
// while the node drains.
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { Prng } from '../../src/core/prng.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork } from '../../src/adapters/sim/sim-network.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import type { Inbound } from '../../src/ports/transport.js';
import { createDeliver, createIntake } from '../../src/runtime/inbound-io.js';
import { createNodeShared } from '../../src/runtime/node-shared.js';
import type { ReplicaIo } from '../../src/runtime/replica-io.js';
import { claimInitial } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { testSealKey } from '../support/cluster-secret.js';
import { identityOf, recorder, recordingLog } from '../support/role-ports.js';

const sealKey = testSealKey('c');
const envelope = (kind: string, from: string) => encodeEnvelope({ v: protocolVersion, kind, from, to: 'n1', reqId: '1', body: {} });

describe('inbound-io: the intake', () => {
  it("passes members' sealed messages to the current handler, drops the rest, and switches handlers", async () => {
    const clock = new SimClock();
    const network = new SimNetwork(clock, new Prng(1));
    const shared = createNodeShared(identityOf('n1'), recordingLog());
    const intake = createIntake({ shared, seal: sealKey, cluster: 'c', clock });
    await network.attach('n1', { key: sealKey, cluster: 'c' }).listen(intake.admit);
    const member = network.attach('n2', { key: sealKey, cluster: 'c' });
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

function setup(owners: string[] = ['n1']) {
  const shared = createNodeShared(identityOf('n1'), recordingLog());
  const coordinator: CoordinatorItem[] = [];
  const answers: AnswerParams[] = [];
  const seen: string[] = [];
  const replica: string[] = [];
  const view = { nodeId: 'n1', ring: claimInitial(owners, 8), down: {}, quorumDefault: { n: 1, r: 1, w: 1 }, limits: defaultLimits };
  const root = recorder(() => ({ context: view, children: {} }));
  const requests = {
    received: (op: string, from: string, reqId: string) => void seen.push(`${op} ${from} ${reqId}`),
    answered() {},
    forwarded() {},
  };
  const replicaIo = {
    enqueue: (item: { type: string; reqId: string }) => void replica.push(`enqueue ${item.type} ${item.reqId}`),
    readAndAnswer: (p: { from: string; reqId: string; p: number }) => void replica.push(`readAndAnswer ${p.from} ${p.reqId} p${p.p}`),
    readAndReply: (p: { from: string; reqId: string; replyTo: string }) => void replica.push(`readAndReply ${p.from} ${p.reqId} ${p.replyTo}`),
  } as unknown as Pick<ReplicaIo, 'enqueue' | 'readAndAnswer' | 'readAndReply'>;
  const deliver = createDeliver({ shared, requests, toCoordinator: (item) => void coordinator.push(item), replica: replicaIo, answerClient: (p) => void answers.push(p) });
  return { shared, deliver, coordinator, answers, seen, replica, root };
}

const key = new Uint8Array([1]);
const put = { type: 'api.put', from: 'c1', reqId: 'p1', replyTo: 'inbox.1', key, value: new Uint8Array([2]), context: [], options: {} } as unknown as NodeEvent;
const get = { type: 'api.get', from: 'c1', reqId: 'g1', replyTo: 'inbox.1', key, options: {} } as unknown as NodeEvent;
const localGet = { type: 'api.local.get', from: 'c1', reqId: 'l1', replyTo: 'inbox.2', key, options: {} } as unknown as NodeEvent;
const replicaGet = { type: 'replica.get', from: 'n2', reqId: 'x', body: { p: 3, key } } as unknown as NodeEvent;
const replicaPut = { type: 'replica.put', from: 'n2', reqId: 'y', body: { p: 3, key, state: [] } } as unknown as NodeEvent;
const sent = (root: unknown) => (root as { events: unknown[] }).events;

describe('inbound-io: deliver', () => {
  it('counts client requests, and takes nothing before the node actor has started', () => {
    const { deliver, coordinator, replica, seen } = setup();
    deliver(put);
    deliver(replicaPut);
    expect(seen).toEqual(['put c1 p1']);
    expect(coordinator).toEqual([]);
    expect(replica).toEqual([]);
  });

  it("routes the request path straight: client requests and replica answers into the coordinator's batch, writes into the replica's, reads to the store", () => {
    const { shared, deliver, coordinator, replica, root } = setup();
    shared.root = root;
    const answer = { type: 'replica.get.ok', from: 'n2', reqId: 'g1', body: { state: null } } as unknown as NodeEvent;
    deliver(put);
    deliver(get);
    deliver(answer);
    deliver(replicaPut);
    deliver(replicaGet);
    deliver(localGet);
    expect(coordinator).toEqual([put, get, answer]);
    expect(replica).toEqual(['enqueue replica.put y', 'readAndAnswer n2 x p3', 'readAndReply c1 l1 inbox.2']);
    expect(sent(root)).toEqual([]);
  });

  it('sends the rest to the node actor: events that need a decision of the node, such as a local read this node must refuse', () => {
    const { shared, deliver, coordinator, replica, root } = setup(['n2']);
    shared.root = root;
    const tick = { type: 'gossip.tick', now: 5 } as NodeEvent;
    deliver(tick);
    deliver(localGet);
    expect(sent(root)).toEqual([tick, localGet]);
    expect(coordinator).toEqual([]);
    expect(replica).toEqual([]);
  });

  it('refuses new puts, deletes and coordinated gets with NOT_READY while the node drains, and still takes replica traffic', () => {
    const { shared, deliver, coordinator, answers, replica, root } = setup();
    shared.root = root;
    shared.stopping = true;
    deliver(put);
    deliver(get);
    deliver(replicaGet);
    expect(coordinator).toEqual([]);
    expect(answers.map((a) => [a.to, a.reqId, a.kind, (a.body as { code: string }).code])).toEqual([
      ['c1', 'p1', 'error', 'NOT_READY'],
      ['c1', 'g1', 'error', 'NOT_READY'],
    ]);
    expect(replica).toEqual(['readAndAnswer n2 x p3']);
  });
});
