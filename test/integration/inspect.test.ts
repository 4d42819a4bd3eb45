import { testSealKey } from '../support/cluster-secret.js';
import { seal as sealMessage } from '../../src/protocol/seal.js';
/**
 * Inspection on a real nats-server: three nodes (createNode with NatsTransport and LmdbStore, in
 * this process so the tests can see each node's tap), asked over NATS like `ringkv inspect` and
 * `ringkv trace` ask them.
 *
 * Covers: a snapshot lists the node and replica actors; a traced put shows its coordinator's states
 * in order and the replicas on other nodes that answered; a traced get after a write at N=1 sends
 * read repair; following by actor; the tap is off again once sessions end; bad requests and the
 * session limit are answered with codes; inspect.correlate is taken only on the node-only
 * inspect-peer subject, never on the admin inspect subject, even sealed.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, NatsTransport } from '../../src/adapters/nats/nats-transport.js';
import { LmdbStore } from '../../src/adapters/lmdb/lmdb-store.js';
import { formatTrace } from '../../src/cli/inspect-command.js';
import { systemClock } from '../../src/ports/clock.js';
import { silentLog } from '../../src/ports/log.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { nodeSubject } from '../../src/protocol/subjects.js';
import { createNode, type RunningNode } from '../../src/runtime/create-node.js';
import { InspectClient, InspectError } from '../../src/runtime/inspect-client.js';
import { inspectSessionsMax, type InspectRecord } from '../../src/runtime/inspect-protocol.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';
import { waitFor } from '../support/wait-for.js';

const cluster = 'inspect';
const seal = testSealKey(cluster);
const ids = ['n1', 'n2', 'n3'];

interface LocalNode {
  id: string;
  nc: NatsConnection;
  store: LmdbStore;
  node: RunningNode;
  dir: string;
}

let nats: NatsServerHandle;
let nodes: LocalNode[] = [];
let nc: NatsConnection;
let inspector: InspectClient;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  nats = await startNatsServer();
  for (const id of ids) {
    const dir = tempDir(`ringkv-inspect-${id}-`);
    const conn = await connectNats(nats.url, `inspect-test-${id}`);
    const store = LmdbStore.open(dir, { sync: false });
    const node = await createNode(
      { nodeId: id, cluster, members: ids, requestTimeoutMs: 3000 },
      { transport: new NatsTransport({ nc: conn, cluster, nodeId: id, seal }), seal, store, clock: systemClock, log: silentLog, newEpoch: () => `e-${id}` },
    );
    nodes.push({ id, nc: conn, store, node, dir });
  }
  nc = await connect({ servers: nats.url, name: 'inspect-test' });
  inspector = new InspectClient(nc, cluster, seal);
}, 60_000);

afterAll(async () => {
  await nc?.close().catch(() => undefined);
  for (const n of nodes) {
    await n.node.stop().catch(() => undefined);
    await n.store.close().catch(() => undefined);
    await n.nc.close().catch(() => undefined);
    rmSync(n.dir, { recursive: true, force: true });
  }
  await nats?.stop();
});

function coordinatorStates(records: InspectRecord[]): string[] {
  // A request's records start with its start (the coordinator actor runs it as a core, named by its id).
  const spawn = records.find((r) => (r.kind === 'spawn' || r.kind === 'start') && r.machine === 'coordinator')!;
  const transitions = records.filter((r) => r.node === spawn.node && r.actor === spawn.actor && r.kind === 'transition').sort((a, b) => a.seq - b.seq);
  return [transitions[0]!.from!, ...transitions.map((r) => r.state!)];
}

describe('inspection over NATS', () => {
  it('answers a snapshot with the node actor, and its replica actors once they exist', async () => {
    await inspector.trace({ op: 'put', key: 'snap-key', value: 'v' });
    const snaps = await Promise.all(ids.map((id) => inspector.snapshot(id)));
    for (const snap of snaps) {
      const root = snap.actors.find((a) => a.id === snap.node)!;
      expect(root).toMatchObject({ machine: 'node', state: 'serving', status: 'active' });
      expect(root.parent).toBeUndefined();
      expect(root.context).toMatchObject({ nodeId: snap.node, cluster });
    }
    // N=3 on three nodes: every node holds a replica of the key's partition.
    for (const snap of snaps) {
      const replicas = snap.actors.filter((a) => a.machine === 'replica');
      expect(replicas.length).toBeGreaterThan(0);
      expect(replicas[0]).toMatchObject({ parent: snap.node, state: 'serving' });
      expect(snap.actors.find((a) => a.id === snap.node)!.children).toContain(replicas[0]!.id);
      // Context summaries never carry key or value bytes.
      expect(JSON.stringify(snap)).not.toContain('snap-key');
    }
    const one = await inspector.snapshot('n1', 'n1');
    expect(one.actors.map((a) => a.id)).toEqual(['n1']);
  });

  it("traces a put: the coordinator's states in order, and replicas on other nodes answering", async () => {
    const t = await inspector.trace({ op: 'put', key: 'traced', value: 'hello' });
    expect(t.answer).toMatchObject({ ok: true, kind: 'api.put.ok' });
    expect(t.unreached).toEqual([]);
    expect(coordinatorStates(t.records)).toEqual(['checking', 'coordinating', 'replicating', 'done']);
    const s = t.summary;
    expect(s.coordinator!.preferenceList).toHaveLength(3);
    expect(s.asked.sort()).toEqual([...ids].sort());
    expect(s.answered.length).toBeGreaterThanOrEqual(2);
    expect(s.clientAnswer).toMatchObject({ kind: 'api.put.ok' });
    // Replicas on at least one other node recorded the coordinator's replica.put.
    const remote = t.records.filter((r) => r.node !== s.coordinator!.node && r.machine === 'replica');
    expect(new Set(remote.map((r) => r.node)).size).toBeGreaterThanOrEqual(1);
    expect(remote.some((r) => r.kind === 'event' && (r.event as { type: string }).type === 'replica.put')).toBe(true);
    // Records of each node come in order.
    for (const id of ids) {
      const seqs = t.records.filter((r) => r.node === id).map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    const text = formatTrace(t, 'traced');
    expect(text).toContain('checking -> coordinating -> replicating -> done');
    expect(text).toContain(`coordinator      ${s.coordinator!.actor} on ${s.coordinator!.node}`);
  });

  it('traces a get after a write at N=1: the replicas that lacked it get read repair', async () => {
    const w = await inspector.trace({ op: 'put', key: 'lonely', value: 'only-one', n: 1, r: 1, w: 1 });
    expect(w.answer).toMatchObject({ ok: true });
    const t = await inspector.trace({ op: 'get', key: 'lonely' });
    expect(t.answer).toMatchObject({ ok: true, kind: 'api.get.ok' });
    expect(coordinatorStates(t.records)).toEqual(['checking', 'collecting', 'repairing', 'done']);
    expect(t.summary.readRepair!.length).toBeGreaterThanOrEqual(1);
    expect(t.summary.readRepair).not.toContain(w.summary.coordinator!.node);
    expect(formatTrace(t, 'lonely')).toMatch(/read repair +sent to /);
  });

  it('follows one actor, and the tap is off again when the session ends', async () => {
    const records: InspectRecord[] = [];
    const h = await inspector.follow('n2', { actors: ['n2'], durationMs: 10_000 }, { records: (m) => records.push(...m.records) });
    expect(nodes[1]!.node.inspect.tap.watching).toBe(true);
    await inspector.trace({ op: 'get', key: 'traced', via: 'n2', members: ['n1'] });
    const end = await h.stop();
    expect(end).toMatchObject({ reason: 'stopped' });
    expect(records.length).toBeGreaterThan(0);
    expect(new Set(records.map((r) => r.actor))).toEqual(new Set(['n2']));
    expect(records.some((r) => r.kind === 'event' && (r.event as { type: string }).type === 'api.get')).toBe(true);
    await sleep(50);
    for (const n of nodes) expect(n.node.inspect.tap.watching).toBe(false);
  });

  it('ends a session when its duration is over', async () => {
    const h = await inspector.follow('n1', { durationMs: 200 }, { records: () => {} });
    const end = await h.ended;
    expect(end).toMatchObject({ reason: 'expired' });
    expect(nodes[0]!.node.inspect.tap.watching).toBe(false);
  });

  it('grants no session to an unsigned request, nor to one sealed with another secret: UNAUTHENTICATED, counted', async () => {
    const subject = nodeSubject(cluster, 'n2', 'inspect');
    const follow = encodeEnvelope({ v: protocolVersion, kind: 'inspect.follow', from: 't', to: 'n2', reqId: '1', body: { session: 'x', durationMs: 5000 } });
    const before = nodes[1]!.node.inspect.stats.unauthenticated;
    const unsigned = await nc.request(subject, follow, { timeout: 2000 });
    expect(decodeEnvelope(unsigned.data)).toMatchObject({ kind: 'error', body: { code: 'UNAUTHENTICATED' } });
    const outsider = { ...testSealKey(cluster), clusterId: seal.clusterId };
    const forged = await nc.request(subject, sealMessage(outsider, subject, follow, Date.now()), { timeout: 2000 });
    expect(decodeEnvelope(forged.data)).toMatchObject({ kind: 'error', body: { code: 'UNAUTHENTICATED' } });
    const snapshot = await nc.request(subject, encodeEnvelope({ v: protocolVersion, kind: 'inspect.snapshot', from: 't', to: 'n2', reqId: '2', body: {} }), { timeout: 2000 });
    expect(decodeEnvelope(snapshot.data)).toMatchObject({ kind: 'error', body: { code: 'UNAUTHENTICATED' } });
    // Without the secret, the client gets the code too; nothing was opened.
    await expect(new InspectClient(nc, cluster).follow('n2', { durationMs: 5000 }, { records: () => {} })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(nodes[1]!.node.inspect.tap.sessionCount).toBe(0);
    expect(nodes[1]!.node.inspect.stats.unauthenticated - before).toBe(4);
    expect(nodes[1]!.node.stats.gate.unauthenticated['inspect/bad-mac']).toBeGreaterThanOrEqual(1);
  });

  it('takes inspect.correlate only node to node (inspect-peer): sealed on the admin inspect subject it changes no session', async () => {
    const session = 'correlate-test';
    const h = await inspector.follow('n2', { session, request: 'nobody', durationMs: 10_000 }, { records: () => {} });
    const tap = nodes[1]!.node.inspect.tap;
    const stats = nodes[1]!.node.inspect.stats;
    const correlate = (reqId: string) =>
      encodeEnvelope({ v: protocolVersion, kind: 'inspect.correlate', from: 'n1', to: 'n2', reqId: '', body: { session: session, origin: 'n1', reqId } });
    const before = stats.wrongRole;
    // What an admin holding the cluster secret can publish: the inspect subject, sealed for it.
    const onInspect = nodeSubject(cluster, 'n2', 'inspect');
    nc.publish(onInspect, sealMessage(seal, onInspect, correlate('forged'), Date.now()));
    await nc.flush();
    await waitFor('the forged correlate to be counted', async () => (stats.wrongRole > before ? true : undefined), 5_000, 20);
    expect(tap.correlationsOf(session)).toBe(0);
    // A member's, on the node-only inspect-peer subject, is taken.
    const onPeer = nodeSubject(cluster, 'n2', 'inspect-peer');
    nc.publish(onPeer, sealMessage(seal, onPeer, correlate('c1'), Date.now()));
    await nc.flush();
    await waitFor('the correlation', async () => (tap.correlationsOf(session) === 1 ? true : undefined), 5_000, 20);
    // Unsealed on inspect-peer: the member gate drops it before the inspect server sees it.
    nc.publish(onPeer, correlate('c2'));
    await nc.flush();
    await waitFor('the unsigned message to be counted', async () => ((nodes[1]!.node.stats.gate.unauthenticated['inspect-peer/unsigned'] ?? 0) >= 1 ? true : undefined), 5_000, 20);
    expect(tap.correlationsOf(session)).toBe(1);
    // An admin request on inspect-peer is not taken either.
    const snap = await nc.request(onPeer, sealMessage(seal, onPeer, encodeEnvelope({ v: protocolVersion, kind: 'inspect.snapshot', from: 't', to: 'n2', reqId: '9', body: {} }), Date.now()), { timeout: 500 }).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(snap).toBe('no answer');
    expect(stats.wrongRole).toBe(before + 2);
    await h.stop();
  });

  it('answers bad requests with BAD_REQUEST and refuses sessions beyond the limit', async () => {
    const subject = nodeSubject(cluster, 'n1', 'inspect');
    const sealed = (bytes: Uint8Array) => sealMessage(seal, subject, bytes, Date.now());
    const bad = await nc.request(
      subject,
      sealed(encodeEnvelope({ v: protocolVersion, kind: 'inspect.follow', from: 't', to: 'n1', reqId: '1', body: { session: 's', durationMs: -5 } })),
      { timeout: 2000 },
    );
    expect(decodeEnvelope(bad.data)).toMatchObject({ kind: 'error', body: { code: 'BAD_REQUEST' } });
    const unknown = await nc.request(subject, sealed(encodeEnvelope({ v: protocolVersion, kind: 'inspect.nope', from: 't', to: 'n1', reqId: '2', body: {} })), {
      timeout: 2000,
    });
    expect(decodeEnvelope(unknown.data)).toMatchObject({ kind: 'error', body: { code: 'BAD_REQUEST' } });
    const garbage = await nc.request(subject, sealed(new Uint8Array([0xc1, 0xff])), { timeout: 2000 });
    expect(decodeEnvelope(garbage.data)).toMatchObject({ kind: 'error', body: { code: 'BAD_REQUEST' } });

    const handles = [];
    for (let i = 0; i < inspectSessionsMax; i++) handles.push(await inspector.follow('n3', { durationMs: 10_000 }, { records: () => {} }));
    await expect(inspector.follow('n3', { durationMs: 10_000 }, { records: () => {} })).rejects.toMatchObject({ code: 'OVERLOADED' } satisfies Partial<InspectError>);
    await Promise.all(handles.map((h) => h.stop()));
    expect(nodes[2]!.node.inspect.tap.watching).toBe(false);
    // The node kept serving throughout.
    const t = await inspector.trace({ op: 'get', key: 'traced' });
    expect(t.answer.ok).toBe(true);
    for (const n of nodes) expect(n.node.inspect.tap.stats.observerErrors).toBe(0);
  });
});
