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
 * - the node's coordinator actor alone (actors/coordinator.machine.ts), get (three replica answers)
 *   and put (the local dot made, its commit, one replica ack), with no-op I/O: requests routed,
 *   started and stepped one per batch (a quiet node) and 64 per batch (a busy one);
 * - the same coordinator logic as plain functions (targets, merges, quorum checks, the answer), so
 *   that the difference is what the actor machinery itself costs;
 * - the coordinator core (actors/coordinator.core.ts): startRequest and step for the same events,
 *   effects as data and not performed: what the per-request protocol costs once it is no actor.
 * Rounds are interleaved and the median is printed.
 */
import { createActor } from 'xstate';
import { coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { CoordinatorItem } from '../../actors/coordinator.events.js';
import { type CoordinatorInput, type CoreEvent, readResult, startRequest, step } from '../../actors/coordinator.core.js';
import type { ClientReadEvent, ClientWriteEvent } from '../../actors/node.events.js';
import type { RouteView } from '../../actors/node-routes.js';
import { claimInitial } from '../core/ring.js';
import { defaultLimits } from '../protocol/limits.js';
import { type DvvSet, join, sync, update } from '../core/dvv.js';
import { silentLog } from '../ports/log.js';
import { encode } from '../protocol/codec.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { createNode } from './create-node.js';
import { clock, LoopTransport, loopSeal, MemoryStore } from './loop-ports.js';

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
    // A five-node ring: two spares, so every request also arms its fallback wait.
    spares: ['n4', 'n5'],
    fallbackWaitMs: 300,
    quorum: { n: 3, r: 2, w: 2 },
    primariesNeeded: 0,
    sloppy: true,
    timeoutMs: 5000,
    readRepairWaitMs: 50,
    context: [],
    value,
  };
}

function answersFor(op: 'get' | 'put', input: CoordinatorInput): CoreEvent[] {
  return op === 'get'
    ? (['n1', 'n2', 'n3'] as const).map((from) => ({ type: 'replica.get.ok', from, reqId: input.id, body: { state } }))
    : [
        { type: 'replica.coordinate.made', from: 'n1', reqId: input.id, body: { state } },
        { type: 'replica.coordinate.ok', from: 'n1', reqId: input.id, body: { state } },
        { type: 'replica.put.ok', from: 'n2', reqId: input.id, body: {} },
      ];
}

function answerFor(op: 'get' | 'put', reqId: string, k: number): CoreEvent {
  if (op === 'get') return { type: 'replica.get.ok', from: (['n1', 'n2', 'n3'] as const)[k]!, reqId, body: { state } };
  if (k === 0) return { type: 'replica.coordinate.made', from: 'n1', reqId, body: { state } };
  if (k === 1) return { type: 'replica.coordinate.ok', from: 'n1', reqId, body: { state } };
  return { type: 'replica.put.ok', from: 'n2', reqId, body: {} };
}

const view: RouteView = { nodeId: 'n1', ring: claimInitial(['n1', 'n2', 'n3'], 8), down: {}, quorumDefault: { n: 3, r: 2, w: 2 }, limits: defaultLimits };

/**
 * The node's long-lived coordinator actor (actors/coordinator.machine.ts) with no-op I/O, taking
 * `inBatch` client requests per coordinator.batch and their answers a batch per round of answers,
 * as a node under that load would: what the actor and its core cost per request.
 */
function coordinatorActorBatched(op: 'get' | 'put', requests: number, inBatch: number): number {
  const actor = createActor(coordinatorMachine.provide({ actions: { perform: () => {} } }), {
    input: { nodeId: 'n1', coordinatorsMax: 4096, requestTimeoutMs: 5000, readRepairWaitMs: 50, fallbackWaitMs: 300 },
    clock,
  });
  actor.start();
  const batch = (items: CoordinatorItem[]) => actor.send({ type: 'coordinator.batch', items, now: 0, view, traced: false });
  let seq = actor.getSnapshot().context.seq;
  const started = performance.now();
  for (let i = 0; i < requests; i += inBatch) {
    const reqs: CoordinatorItem[] = [];
    for (let j = i; j < Math.min(requests, i + inBatch); j++) reqs.push(clientRequest(op, j));
    batch(reqs);
    // The answers the requests wait for (three each), one batch per round of answers.
    for (let k = 0; k < 3; k++) {
      const answers: CoreEvent[] = [];
      for (let j = 0; j < reqs.length; j++) answers.push(answerFor(op, `coordinator-${seq + j + 1}`, k));
      batch(answers);
    }
    seq += reqs.length;
  }
  const us = ((performance.now() - started) * 1000) / requests;
  const left = actor.getSnapshot().context.requests;
  // A get waits for read repair (no answer left out here, so it ends with the third answer).
  if (left.size !== 0) throw new Error(`the ${op} coordinator left ${left.size} requests unfinished`);
  actor.stop();
  return us;
}

function clientRequest(op: 'get' | 'put', i: number): ClientReadEvent | ClientWriteEvent {
  const base = { from: 'bench', reqId: String(i), replyTo: `_INBOX.${i}`, key: keyOnN1(i), options: {}, forwarded: false, bytes: new Uint8Array() };
  return op === 'get' ? { ...base, type: 'api.get' } : { ...base, type: 'api.put', value, context: [] };
}

/** Keys of partitions n1 replicates, as the bench's requests would reach it (every node is a target at N=3 of 3). */
function keyOnN1(i: number): Uint8Array {
  return text.encode(`user${i}`);
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
    for (const e of answersFor(op, input)) {
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
    { transport, seal: loopSeal(), store: new MemoryStore(), clock, log: silentLog, newEpoch: () => 'bench' },
  );
  const cases: Record<string, (round: number) => Promise<number> | number> = {
    'node: api.get (coordinator)': (r) => nodeRequests(transport, 'api.get', requests, `g${r}`),
    'node: api.put (coordinator)': (r) => nodeRequests(transport, 'api.put', requests, `p${r}`),
    'node: replica.get from a peer': () => peerReads(transport, requests),
    'coordinator actor, 1 per batch: get': () => coordinatorActorBatched('get', requests, 1),
    'coordinator actor, 1 per batch: put': () => coordinatorActorBatched('put', requests, 1),
    'coordinator actor, 64 per batch: get': () => coordinatorActorBatched('get', requests, 64),
    'coordinator actor, 64 per batch: put': () => coordinatorActorBatched('put', requests, 64),
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
