/**
 * The request budget (DESIGN.md §3): what a put and a get cost the nodes, in counts, held in CI.
 *
 * Three nodes in this process (createNode with NatsTransport and LmdbStore, as `ringkv node` builds
 * them) on a real nats-server. The test plays a busy client: each turn it sends 64 puts (or 64 gets),
 * one NATS message per node as RingkvClient batches them (client-driven coordination: a put to the
 * first node of its key's preference list, a get as api.local.get to the first R=2 replicas), and
 * waits for all 64 answers. The nodes' cost counters (src/protocol/cost-counters.ts) are read
 * around the measured turns and divided by the operations: messages, socket writes, store
 * transactions, transitions, encodes, decodes, seals and opens per put and per get.
 *
 * Counts, never times: they are the same on a quiet machine and on a loaded CI runner (up to how
 * NATS happens to cut a turn's messages into socket reads, which the budgets leave room for).
 * A change that adds a per-item encode, transition or message to the request path fails here;
 * raising a budget is a decision written in the commit that does it.
 *
 * The test's own encodes are made before the first reading, and it decodes the answers with a
 * decoder of its own, so the counters hold the nodes' work only.
 */
import { type NatsConnection } from '@nats-io/transport-node';
import { Unpackr } from 'msgpackr';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { connectNats, NatsTransport } from '../../src/adapters/nats/nats-transport.js';
import { initialState, ringOf } from '../../src/core/cluster-state.js';
import { partitionOf, preferenceList, type Ring } from '../../src/core/ring.js';
import { systemClock } from '../../src/ports/clock.js';
import { silentLog } from '../../src/ports/log.js';
import { encodeBatch } from '../../src/protocol/batch.js';
import { type CostCounts, costsSince, readCosts } from '../../src/protocol/cost-counters.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { nodeOpSubject } from '../../src/protocol/subjects.js';
import { createNode, type RunningNode } from '../../src/runtime/create-node.js';
import { testSealKey } from '../support/cluster-secret.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const cluster = 'budget';
const seal = testSealKey(cluster);
const ids = ['n1', 'n2', 'n3'];
const partitions = 64;
const perTurn = 64;
const turns = 16;
const value = new Uint8Array(100).fill(7);

/**
 * The budgets, per operation, summed over the three nodes. Set at what the request path reaches, with
 * room for how NATS cuts a turn into socket reads, and none for a new per-item cost: one more encode,
 * decode, transition or message per replica write adds at least 1 to its line (3 for a put: one per
 * replica). A line raised here says in its commit why.
 *
 * Where the put's counts come from (64 per turn, measured when these were set):
 * - encodes 3.2: the new state once at the coordinator (stored and sent as the same bytes), the
 *   client's context and its answer; a turn's replica.put requests to a replica go as one
 *   replica.puts, its acks as one replica.put.acks; the replicas store the bytes they were sent;
 * - decodes 7.2: the client's request and its context, the state's bytes at each other replica, and
 *   the stored state each of the three replicas merges with;
 * - transitions 0.4: one coordinator.batch per turn and one replica.batch and replica.committed per
 *   turn and node, nothing per request;
 * - messages 0.23 each way, socket writes 0.06, store transactions 0.1, seals and opens 0.2;
 * - bytes out 452, bytes in 578 (a 100-byte value; the client's request counts on the way in).
 * A get is two api.local.get (R=2): one decode of the request and one encode of the answer each
 * (the stored bytes go into it as they are), no transition, no store transaction, no seal.
 */
const putBudget: Partial<Record<keyof CostCounts, number>> = {
  messagesOut: 0.5,
  messagesIn: 0.5,
  bytesOut: 520,
  bytesIn: 650,
  publishTurns: 0.2,
  storeTxns: 0.25,
  transitions: 1,
  encodes: 4,
  decodes: 8,
  seals: 0.5,
  opens: 0.5,
};
const getBudget: Partial<Record<keyof CostCounts, number>> = {
  messagesOut: 0.2,
  messagesIn: 0.2,
  bytesOut: 450,
  bytesIn: 220,
  publishTurns: 0.1,
  storeTxns: 0,
  transitions: 0.1,
  encodes: 2.5,
  decodes: 2.5,
  seals: 0,
  opens: 0,
};

// The test's own decoder: decodes made with it are not the nodes' and are not counted.
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false });
const text = new TextEncoder();

interface LocalNode {
  id: string;
  nc: NatsConnection;
  store: LmdbStore;
  node: RunningNode;
  dir: string;
}

let nats: NatsServerHandle;
const nodes: LocalNode[] = [];
let client: NatsConnection;
let ring: Ring;

beforeAll(async () => {
  nats = await startNatsServer();
  ring = ringOf(initialState(ids, partitions));
  for (const id of ids) {
    const dir = tempDir(`ringkv-budget-${id}-`);
    const nc = await connectNats(nats.url, `budget-${id}`);
    const store = LmdbStore.open(dir, { sync: false });
    // No gossip, anti-entropy or reaping rounds: the window holds the requests' work and nothing else.
    const node = await createNode(
      { nodeId: id, cluster, members: ids, partitions, gossipRoundMs: 0, antiEntropy: { intervalMs: 0 }, reap: { intervalMs: 0 } },
      { transport: new NatsTransport({ nc, cluster, nodeId: id, seal }), seal, store, clock: systemClock, log: silentLog, newEpoch: () => `e-${id}` },
    );
    nodes.push({ id, nc, store, node, dir });
  }
  client = await connectNats(nats.url, 'budget-client');
}, 60_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  for (const n of nodes) {
    await n.node.stop().catch(() => undefined);
    await n.store.close().catch(() => undefined);
    await n.nc.close().catch(() => undefined);
    rmSync(n.dir, { recursive: true, force: true });
  }
  await nats?.stop();
});

interface Answer {
  kind: string;
  reqId: string;
  body: { context?: Uint8Array; state?: unknown; code?: string; message?: string };
}

/** One turn's requests, already encoded: one batch per node, and the answers they wait for. */
interface Turn {
  messages: { subject: string; bytes: Uint8Array }[];
  answers: number;
}

let inboxSeq = 0;

/** Sends one turn (every message in one go) and resolves with every answer once all have come. */
async function runTurn(turn: Turn): Promise<Answer[]> {
  const inbox = `_INBOX.budget.${inboxSeq++}`;
  const answers: Answer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${answers.length} of ${turn.answers} answers came`)), 10_000);
    const sub = client.subscribe(inbox, {
      callback: (_err, msg) => {
        const env = unpackr.unpack(msg.data) as Answer & { body: { items?: Uint8Array[] } };
        const items = env.kind === 'batch' ? env.body.items!.map((b) => unpackr.unpack(b) as Answer) : [env];
        answers.push(...items);
        if (answers.length >= turn.answers) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        }
      },
    });
  });
  await client.flush();
  for (const m of turn.messages) client.publish(m.subject, m.bytes, { reply: inbox });
  await done;
  return answers;
}

function keyOf(i: number): Uint8Array {
  return text.encode(`budget-key-${i}`);
}

/** Each request to the nodes it goes to, one batch per node (what RingkvClient's request mux sends in a turn). */
function turnOf(requests: { kind: string; key: Uint8Array; body: Record<string, unknown>; to: string[] }[]): Turn {
  const perNode = new Map<string, Uint8Array[]>();
  let answers = 0;
  requests.forEach((r, i) => {
    for (const to of r.to) {
      const bytes = encodeEnvelope({ v: protocolVersion, kind: r.kind, from: 'budget-client', to, reqId: `${i}.${to}`, body: { key: r.key, ...r.body } });
      perNode.set(to, [...(perNode.get(to) ?? []), bytes]);
      answers++;
    }
  });
  // A turn holds one operation: its subject names it (a directed client subject per operation).
  const op = requests[0]!.kind.slice('api.'.length);
  const messages = [...perNode].map(([to, items]) => ({
    subject: nodeOpSubject(cluster, to, 'api', op),
    bytes: items.length === 1 ? items[0]! : encodeBatch('budget-client', to, items),
  }));
  return { messages, answers };
}

function targetsOf(key: Uint8Array, count: number): string[] {
  return preferenceList(ring, partitionOf(key, partitions), 3).slice(0, count);
}

function putTurn(first: number, contexts: Map<number, Uint8Array>): Turn {
  return turnOf(
    Array.from({ length: perTurn }, (_, j) => {
      const i = first + j;
      const key = keyOf(i);
      const context = contexts.get(i);
      return { kind: 'api.put', key, body: { value, ...(context ? { context } : {}) }, to: targetsOf(key, 1) };
    }),
  );
}

function getTurn(first: number): Turn {
  return turnOf(Array.from({ length: perTurn }, (_, j) => ({ kind: 'api.local.get', key: keyOf(first + j), body: {}, to: targetsOf(keyOf(first + j), 2) })));
}

function expectOk(answers: Answer[], kind: string): void {
  const bad = answers.filter((a) => a.kind !== kind);
  expect(bad.map((a) => `${a.kind} ${a.body.code ?? ''} ${a.body.message ?? ''}`)).toEqual([]);
}

/** Per operation: the counts between two readings divided by the operations done. */
function perOperation(before: CostCounts, ops: number): Record<string, number> {
  const d = costsSince(before);
  const out: Record<string, number> = {};
  for (const name of ['messagesOut', 'messagesIn', 'bytesOut', 'bytesIn', 'publishTurns', 'storeTxns', 'storeWrites', 'transitions', 'encodes', 'decodes', 'seals', 'opens'] as const) {
    out[name] = Math.round((d[name] / ops) * 100) / 100;
  }
  return out;
}

function expectWithin(measured: Record<string, number>, budget: Partial<Record<keyof CostCounts, number>>): void {
  const over = Object.entries(budget)
    .filter(([name, max]) => measured[name]! > max!)
    .map(([name, max]) => `${name} ${measured[name]} > ${max}`);
  expect(over, `per operation: ${JSON.stringify(measured)}`).toEqual([]);
}

describe('the request budget: what a put and a get cost three nodes, 64 per turn', () => {
  const contexts = new Map<number, Uint8Array>();

  it('a put (an update with its context: N=3, W=2) stays within its budget', async () => {
    // The keys are written once before the window, so that the measured puts are updates of keys
    // the replicas hold (the bench's update workload), each with the context of its last write.
    for (let t = 0; t < turns; t++) {
      const answers = await runTurn(putTurn(t * perTurn, contexts));
      expectOk(answers, 'api.put.ok');
      for (const a of answers) contexts.set(t * perTurn + Number(a.reqId.split('.')[0]), a.body.context!);
    }
    const prepared = Array.from({ length: turns }, (_, t) => putTurn(t * perTurn, contexts));
    // Let the last writes' peer acks and commits finish before the first reading.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = readCosts();
    for (const turn of prepared) expectOk(await runTurn(turn), 'api.put.ok');
    // The third replica's write (W=2 answers without it) lands after the answer: wait for it too.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const measured = perOperation(before, turns * perTurn);
    console.log('per put:', JSON.stringify(measured));
    expect(measured.storeWrites, 'every put is stored on its three replicas').toBeGreaterThanOrEqual(3);
    expectWithin(measured, putBudget);
  }, 60_000);

  it('a get (client-driven, api.local.get to R=2 replicas) stays within its budget', async () => {
    const prepared = Array.from({ length: turns }, (_, t) => getTurn(t * perTurn));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = readCosts();
    for (const turn of prepared) {
      const answers = await runTurn(turn);
      expectOk(answers, 'api.local.get.ok');
      expect(answers.every((a) => a.body.state !== null)).toBe(true);
    }
    const measured = perOperation(before, turns * perTurn);
    console.log('per get:', JSON.stringify(measured));
    expectWithin(measured, getBudget);
  }, 60_000);
});
