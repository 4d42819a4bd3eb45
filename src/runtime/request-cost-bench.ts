/**
 * What one request costs a node in CPU, split so that xstate's share shows (issue 8: "measure
 * xstate's cost per request"):
 *
 *   npx tsx src/runtime/request-cost-bench.ts [requests] [only cases whose name contains this]
 *
 * - node, api.get / api.put: one node (N=R=W=1) through its router, node machine, coordinator and
 *   replica, with in-memory ports (src/runtime/loop-ports.ts), 64 requests in flight;
 * - node, replica.get from a peer: the client-driven read's work on a replica node (router, node
 *   machine, replica actor, store read, encoded answer), no coordinator;
 * - coordinator actor alone, get (three replica answers) and put (local commit, one replica ack):
 *   createActor, start, the events, idle, with no-op I/O; and one actor reused for every request
 *   (coordinator.start, the events), as the node's coordinator slots do;
 * - the same coordinator logic as plain functions (targets, merges, quorum checks, the answer), so
 *   that the difference is what the actor machinery itself costs;
 * - the coordinator core (actors/coordinator.core.ts): startRequest and step for the same events,
 *   effects as data and not performed: what the per-request protocol costs once it is no actor.
 * Rounds are interleaved and the median is printed.
 */
import { createActor } from 'xstate';
import { type CoordinatorInput, coordinatorMachine, readResult } from '../../actors/coordinator.machine.js';
import type { CoordinatorEvent } from '../../actors/coordinator.events.js';
import { type CoreEvent, startRequest, step } from '../../actors/coordinator.core.js';
import { type DvvSet, join, sync, update } from '../core/dvv.js';
import { silentLog } from '../ports/log.js';
import { encode } from '../protocol/codec.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { createNode } from './create-node.js';
import { clock, LoopTransport, MemoryStore } from './loop-ports.js';

const text = new TextEncoder();
const value = text.encode('v'.repeat(100));
const state: DvvSet = update([], [], 'n2/e1', value);

function coordinatorInput(op: 'get' | 'put', i: number): CoordinatorInput {
  return {
    op,
    id: `coordinator-${i % 128}.${i}`,
    nodeId: 'n1',
    client: { replyTo: `_INBOX.${i}`, from: 'bench', reqId: String(i), kind: op === 'get' ? 'api.get' : 'api.put' },
    partition: 5,
    key: text.encode(`user${i}`),
    preferenceList: ['n1', 'n2', 'n3'],
    targets: [{ node: 'n1' }, { node: 'n2' }, { node: 'n3' }],
    localHints: [],
    quorum: { n: 3, r: 2, w: 2 },
    primariesNeeded: 0,
    sloppy: true,
    timeoutMs: 5000,
    readRepairWaitMs: 50,
    context: [],
    value,
  };
}

const quietCoordinator = coordinatorMachine.provide({ actions: { send: () => {}, sendAll: () => {}, answerClient: () => {} } });

function answersFor(op: 'get' | 'put', input: CoordinatorInput): CoordinatorEvent[] {
  return op === 'get'
    ? (['n1', 'n2', 'n3'] as const).map((from) => ({ type: 'replica.get.ok', from, reqId: input.id, body: { state } }))
    : [
        { type: 'replica.coordinate.ok', from: 'n1', reqId: input.id, body: { state } },
        { type: 'replica.put.ok', from: 'n2', reqId: input.id, body: {} },
      ];
}

/** A new coordinator actor per request (createActor, start, the answers). */
function coordinatorActor(op: 'get' | 'put', requests: number): number {
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const input = coordinatorInput(op, i);
    const actor = createActor(quietCoordinator, { input, clock });
    actor.start();
    for (const e of answersFor(op, input)) actor.send(e);
    if (actor.getSnapshot().value !== 'idle') throw new Error(`the ${op} coordinator did not finish`);
    actor.stop();
  }
  return ((performance.now() - started) * 1000) / requests;
}

/** One coordinator actor serving every request in turn (coordinator.start, the answers), as a node's slot does. */
function coordinatorReused(op: 'get' | 'put', requests: number): number {
  const actor = createActor(quietCoordinator, { input: coordinatorInput(op, -1), clock });
  actor.start();
  for (const e of answersFor(op, coordinatorInput(op, -1))) actor.send(e);
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const input = coordinatorInput(op, i);
    actor.send({ type: 'coordinator.start', input });
    for (const e of answersFor(op, input)) actor.send(e);
    if (actor.getSnapshot().value !== 'idle') throw new Error(`the ${op} coordinator did not finish`);
  }
  const us = ((performance.now() - started) * 1000) / requests;
  actor.stop();
  return us;
}

/** The coordinator's decisions without an actor: what the protocol logic itself costs. */
function coordinatorPlain(op: 'get' | 'put', requests: number): number {
  const started = performance.now();
  let sink = 0;
  for (let i = 0; i < requests; i++) {
    const input = coordinatorInput(op, i);
    const sends = input.targets.map((t) => ({ to: t.node, kind: op === 'get' ? 'replica.get' : 'replica.put', reqId: input.id, body: { p: input.partition, key: input.key } }));
    sink += sends.length;
    if (op === 'get') {
      let merged: DvvSet = [];
      const answers: Record<string, DvvSet | null> = {};
      for (const from of ['n1', 'n2', 'n3']) {
        answers[from] = state;
        merged = sync(merged, state);
        if (Object.keys(answers).length === input.quorum.r) sink += readResult(merged).values.length;
      }
    } else {
      const acked = ['n1', 'n2'];
      if (acked.length >= input.quorum.w) sink += encode(join(state)).length;
    }
  }
  if (sink < 0) throw new Error('unreachable');
  return ((performance.now() - started) * 1000) / requests;
}

/** The coordinator core: startRequest, then step for each answer; the effects are counted, not performed. */
function coordinatorCore(op: 'get' | 'put', requests: number): number {
  const started = performance.now();
  let sink = 0;
  for (let i = 0; i < requests; i++) {
    const input = coordinatorInput(op, i);
    let { request, effects } = startRequest(input, i);
    sink += effects.length;
    for (const e of answersFor(op, input) as CoreEvent[]) {
      ({ request, effects } = step(request, e, i));
      sink += effects.length;
    }
    if (request.state !== 'done' && request.state !== 'repairing') throw new Error(`the ${op} core did not answer`);
  }
  if (sink < 0) throw new Error('unreachable');
  return ((performance.now() - started) * 1000) / requests;
}

async function nodeRequests(transport: LoopTransport, kind: 'api.get' | 'api.put', requests: number, round: string): Promise<number> {
  const bodies = Array.from({ length: requests }, (_, i) =>
    encodeEnvelope({
      v: protocolVersion,
      kind,
      from: 'bench',
      to: 'n1',
      reqId: `${round}-${i}`,
      body: kind === 'api.put' ? { key: text.encode(`${round}-${i}`), value, n: 1, r: 1, w: 1 } : { key: text.encode(`${round}-${i}`), n: 1, r: 1 },
    }),
  );
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const replyTo = `r.${round}.${i}`;
      await new Promise<void>((resolve) => {
        transport.waiting.set(replyTo, resolve);
        transport.handler!({ role: 'api', bytes: bodies[i]!, replyTo });
      });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return ((performance.now() - started) * 1000) / requests;
}

function peerReads(transport: LoopTransport, requests: number): number {
  const bodies = Array.from({ length: 256 }, (_, i) =>
    encodeEnvelope({ v: protocolVersion, kind: 'replica.get', from: 'n2', to: 'n1', reqId: `coordinator-1.${i}`, body: { p: i % 8, key: text.encode(`warm-${i}`) } }),
  );
  const started = performance.now();
  for (let i = 0; i < requests; i++) transport.handler!({ role: 'replica', bytes: bodies[i % bodies.length]! });
  return ((performance.now() - started) * 1000) / requests;
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20_000);
  const rounds = 7;
  const transport = new LoopTransport();
  const node = await createNode(
    { nodeId: 'n1', cluster: 'bench', members: ['n1'], partitions: 8, readRepairWaitMs: 0, gossipRoundMs: 0, antiEntropy: { intervalMs: 0 } },
    { transport, store: new MemoryStore(), clock, log: silentLog, newEpoch: () => 'bench' },
  );
  const cases: Record<string, (round: number) => Promise<number> | number> = {
    'node: api.get (coordinator)': (r) => nodeRequests(transport, 'api.get', requests, `g${r}`),
    'node: api.put (coordinator)': (r) => nodeRequests(transport, 'api.put', requests, `p${r}`),
    'node: replica.get from a peer': () => peerReads(transport, requests),
    'coordinator actor: get': () => coordinatorActor('get', requests),
    'coordinator actor: put': () => coordinatorActor('put', requests),
    'coordinator actor reused: get': () => coordinatorReused('get', requests),
    'coordinator actor reused: put': () => coordinatorReused('put', requests),
    'coordinator as functions: get': () => coordinatorPlain('get', requests),
    'coordinator as functions: put': () => coordinatorPlain('put', requests),
    'coordinator core: get': () => coordinatorCore('get', requests),
    'coordinator core: put': () => coordinatorCore('put', requests),
  };
  const only = process.argv[3];
  const names = Object.keys(cases).filter((n) => only === undefined || n.includes(only));
  const results = new Map<string, number[]>(names.map((n) => [n, []]));
  await nodeRequests(transport, 'api.put', requests, 'warm');
  for (let round = 0; round < rounds; round++) {
    // The order rotates from round to round, so that no case always follows the costliest one.
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + round) % names.length]!;
      results.get(name)!.push(await cases[name]!(round));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(`${requests} requests per case and round, median of ${rounds} rounds (µs of this process's time per request)\n`);
  for (const name of names) process.stdout.write(`${name.padEnd(32)} ${median(results.get(name)!).toFixed(1).padStart(7)} µs\n`);
  await node.stop();
}

await main();
