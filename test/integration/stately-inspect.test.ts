/**
 * `ringkv node --stately-inspect <ws-url>`: a real node process streams its actors to a WebSocket
 * server, as it would to the Stately inspector. The server here is a plain `ws` server that keeps
 * what arrives; the test checks the inspector's protocol (@statelyai/inspect's JSON events): the
 * actors register with their machine definitions (so the inspector can draw them), snapshots carry
 * state values, events name their type, and no user key or value ever travels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { RingkvClient } from '../../src/client/client.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';
import { waitFor as waitForProbe } from '../support/wait-for.js';

const waitFor = (check: () => boolean, o: { timeoutMs: number }) => waitForProbe('inspector events', async () => (check() ? true : undefined), o.timeoutMs);

interface StatelyEvent {
  type: string;
  name?: string;
  sessionId: string;
  parentId?: string;
  definition?: string;
  snapshot?: { status?: string; value?: unknown; context?: unknown };
  event?: { type?: string };
  _version?: string;
}

let nats: NatsServerHandle;
let dataRoot: string;
let cluster: Cluster | undefined;
let wss: WebSocketServer;
const received: StatelyEvent[] = [];
const raw: string[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) =>
    ws.on('message', (data) => {
      const text = data.toString();
      raw.push(text);
      received.push(JSON.parse(text) as StatelyEvent);
    }),
  );
  const port = (wss.address() as { port: number }).port;
  nats = await startNatsServer();
  dataRoot = tempDir('ringkv-stately-');
  cluster = await startCluster({
    nodes: 1,
    natsUrl: nats.url,
    dataRoot: path.join(dataRoot, 'data'),
    cluster: 'stately',
    args: ['--n', '1', '--stately-inspect', `ws://127.0.0.1:${port}`],
  });
}, 90_000);

afterAll(async () => {
  await cluster?.stopAll();
  await nats?.stop();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

describe('--stately-inspect', () => {
  it('registers the node and its children with their machine definitions, then streams snapshots', async () => {
    await waitFor(() => ['gossip', 'transfer'].every((name) => received.some((e) => e.type === '@xstate.actor' && e.name === name)), { timeoutMs: 15_000 });
    const actors = received.filter((e) => e.type === '@xstate.actor');
    const byName = new Map(actors.map((a) => [a.name, a]));
    for (const name of ['node', 'coordinator', 'gossip', 'handoff', 'antiEntropy', 'transfer']) expect(byName.has(name), `registered: ${[...byName.keys()].join(', ')}`).toBe(true);
    const node = byName.get('node')!;
    // The definition is the machine config as JSON: what the inspector draws the statechart from.
    expect(JSON.parse(node.definition!)).toMatchObject({ id: 'node', states: expect.any(Object) });
    expect(byName.get('gossip')!.parentId).toBe(node.sessionId);
    for (const a of actors) expect(a._version).toMatch(/^\d+\.\d+/);
    // Gossip ticks every round: its snapshots keep coming, each with a state value.
    const gossip = byName.get('gossip')!;
    const isTick = (e: StatelyEvent) => e.type === '@xstate.snapshot' && e.sessionId === gossip.sessionId && e.event?.type === 'gossip.tick';
    await waitFor(() => received.some(isTick), { timeoutMs: 10_000 });
    const snap = received.find(isTick)!;
    expect(snap.snapshot!.status).toBe('active');
    expect(snap.snapshot!.value).toBeDefined();
    expect(snap.snapshot!.context).toMatchObject({ nodeId: 'n1' });
  });

  it("streams a client request's events to the coordinator and its replica, without the key or the value", async () => {
    const client = await RingkvClient.connect({ servers: nats.url, cluster: 'stately', timeoutMs: 3000, coordination: 'cluster' });
    try {
      const before = received.length;
      await client.putString('a-secret-key-1f3c', 'a-secret-value-9d2e');
      expect((await client.getString('a-secret-key-1f3c')).values).toEqual(['a-secret-value-9d2e']);
      const coordinator = received.find((e) => e.type === '@xstate.actor' && e.name === 'coordinator')!;
      await waitFor(() => received.slice(before).some((e) => e.type === '@xstate.event' && e.sessionId === coordinator.sessionId), { timeoutMs: 10_000 });
      const event = received.slice(before).find((e) => e.type === '@xstate.event' && e.sessionId === coordinator.sessionId)!;
      expect(event.event!.type).toBe('coordinator.batch');
      // The node's one replica actor registered at start; the put reaches it as its turn's batch.
      const replica = received.find((e) => e.type === '@xstate.actor' && e.name === 'replica')!;
      expect(replica).toBeDefined();
      await waitFor(() => received.slice(before).some((e) => e.type === '@xstate.event' && e.sessionId === replica.sessionId && e.event!.type === 'replica.batch'), { timeoutMs: 10_000 });
      expect(raw.join('\n')).not.toContain('a-secret');
    } finally {
      await client.close();
    }
  });
});
