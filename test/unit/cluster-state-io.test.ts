// Where the node's cluster state comes from (src/runtime/cluster-state-io.ts), alone on the
// simulator's store, network and clock: the stored state, the ring of --members, or a seed's answer
// to a joiner, which meanwhile passes client requests on and tells admins it is not ready.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/core/prng.js';
import { type ClusterState, hasRing, initialState, joinerState } from '../../src/core/cluster-state.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork } from '../../src/adapters/sim/sim-network.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import { decodeEnvelope, encodeEnvelope, type Envelope, protocolVersion } from '../../src/protocol/envelope.js';
import type { Inbound } from '../../src/ports/transport.js';
import { clusterMetaName, initialClusterState, learnFromSeeds, saveClusterState } from '../../src/runtime/cluster-state-io.js';
import { recordingLog } from '../support/role-ports.js';

const config = (members: string[], seeds?: string[]) => ({ nodeId: 'n1', cluster: 'c', members, partitions: 8, ...(seeds ? { seeds } : {}) });

function ports() {
  const clock = new SimClock();
  const store = new SimStore(clock, new Prng(1), { commitDelayMinMs: 1, commitDelayMaxMs: 1 }).open();
  return { clock, store };
}

describe('cluster-state-io: the state a node starts from', () => {
  it('is the stored one first, else the ring of --members, else a joiner that knows only itself', async () => {
    const { clock, store } = ports();
    expect(await initialClusterState(config(['n1', 'n2']), store, 'n1')).toEqual(initialState(['n1', 'n2'], 8));
    expect(await initialClusterState(config([], ['n2']), store, 'n1')).toEqual(joinerState('n1', 8));
    const stored = initialState(['n1', 'n2', 'n3'], 8);
    const log = recordingLog();
    saveClusterState(store, log, stored);
    await clock.runUntil(5);
    expect(store.getMeta(clusterMetaName)).toEqual(stored);
    expect(await initialClusterState(config(['n1', 'n2']), store, 'n1')).toEqual(stored);
    expect(log.lines).toEqual([]);
  });

  it('refuses a malformed stored state, and a node given neither members nor seeds', async () => {
    const { clock, store } = ports();
    await expect(initialClusterState(config([]), store, 'n1')).rejects.toThrow('give --members (a new cluster) or --seeds (join one)');
    void store.putMeta(clusterMetaName, { members: 'nonsense' });
    await clock.runUntil(5);
    await expect(initialClusterState(config(['n1']), store, 'n1')).rejects.toThrow('the stored cluster state is malformed');
  });
});

describe('cluster-state-io: learning the cluster from a seed', () => {
  it('asks its seeds until one answers with a ring, passes client requests on and tells admins it is not ready', async () => {
    const clock = new SimClock();
    const network = new SimNetwork(clock, new Prng(1));
    const log = recordingLog();
    const transport = network.attach('n1');
    let handler: (msg: Inbound) => void = () => {};
    await transport.listen((msg) => handler(msg));
    const seedGot: { role: string; env: Envelope; replyTo?: string }[] = [];
    const seed = network.attach('n2');
    const ring = initialState(['n2', 'n3'], 8);
    let answering = false;
    await seed.listen((msg) => {
      const env = decodeEnvelope(msg.bytes) as Envelope;
      seedGot.push({ role: msg.role, env, ...(msg.replyTo ? { replyTo: msg.replyTo } : {}) });
      if (answering && env.kind === 'gossip.digest') seed.send('n1', 'gossip', encodeEnvelope({ v: protocolVersion, kind: 'gossip.digest', from: 'n2', to: 'n1', reqId: 'x', body: { heartbeats: {}, cluster: ring } }));
    });
    const replies: Envelope[] = [];
    const client = network.client('c1', (_to, bytes) => void replies.push(decodeEnvelope(bytes) as Envelope));
    let learned: ClusterState | undefined;
    void learnFromSeeds(joinerState('n1', 8), ['n1', 'n2'], { nodeId: 'n1', incarnation: 7, transport, clock, log, retryMs: 200, setHandler: (h) => (handler = h) }).then((s) => (learned = s));
    await clock.runUntil(450);
    // Three asks so far (0, 200, 400), each its join state; never to itself.
    const asks = seedGot.filter((m) => m.role === 'gossip');
    expect(asks.map((m) => m.env.reqId)).toEqual(['join.1', 'join.2', 'join.3']);
    expect(asks[0]!.env.body).toEqual({ heartbeats: { n1: [7, 0] }, cluster: joinerState('n1', 8) });
    client.request(encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'c1', to: '', reqId: 'g1', body: {} }), client.address(1), 'n1');
    client.request(encodeEnvelope({ v: protocolVersion, kind: 'api.cluster', from: 'c1', to: '', reqId: 'a1', body: {} }), client.address(2), 'n1', 'admin');
    await clock.runUntil(460);
    expect(seedGot.filter((m) => m.role === 'forward').map((m) => [m.env.reqId, m.replyTo])).toEqual([['g1', client.address(1)]]);
    expect(replies.map((r) => [r.kind, r.reqId, (r.body as { code: string }).code])).toEqual([['error', 'a1', 'NOT_READY']]);
    expect(learned).toBeUndefined();
    answering = true;
    await clock.runUntil(700);
    expect(learned && hasRing(learned)).toBe(true);
    expect(Object.keys(learned!.members).sort()).toEqual(['n1', 'n2', 'n3']);
    // Learned: no more asks.
    const asked = seedGot.filter((m) => m.role === 'gossip').length;
    await clock.runUntil(2000);
    expect(seedGot.filter((m) => m.role === 'gossip')).toHaveLength(asked);
  });

  it('refuses to start without a seed other than itself', async () => {
    const clock = new SimClock();
    const network = new SimNetwork(clock, new Prng(1));
    const deps = { nodeId: 'n1', incarnation: 1, transport: network.attach('n1'), clock, log: recordingLog(), retryMs: 200, setHandler: () => {} };
    await expect(learnFromSeeds(joinerState('n1', 8), ['n1'], deps)).rejects.toThrow('no seed to learn it from');
  });
});
