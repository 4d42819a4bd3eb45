/**
 * In-memory ports for testing one role module of the node runtime alone (src/runtime/*-io.ts): the
 * simulator's clock, network and store, the node under test ("n1") on the network, a peer ("n2")
 * and a client ("c1") that record what reaches them, decoded, and a NodeShared for n1. Actors are
 * recorders here: a role module talks to an actor only through `send` (and the node actor's
 * snapshot), so a recorder shows exactly what the role told it.
 */
import type { AnyActorRef } from 'xstate';
import { Prng } from '../../src/core/prng.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork, type SimTransport } from '../../src/adapters/sim/sim-network.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import { decodeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import type { Log, LogFields } from '../../src/ports/log.js';
import type { Store } from '../../src/ports/store.js';
import type { Inbound, Role } from '../../src/ports/transport.js';
import type { Identity } from '../../src/runtime/identity.js';
import { createNodeShared, type NodeShared } from '../../src/runtime/node-shared.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: LogFields | undefined;
}

/** A Log that keeps its lines, so a test can see what a role logged. */
export function recordingLog(lines: LogLine[] = []): Log & { lines: LogLine[] } {
  const log = {
    lines,
    debug: (msg: string, fields?: LogFields) => void lines.push({ level: 'debug', msg, fields }),
    info: (msg: string, fields?: LogFields) => void lines.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: LogFields) => void lines.push({ level: 'warn', msg, fields }),
    error: (msg: string, fields?: LogFields) => void lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}

/** An actor stand-in that records the events it is sent. */
export function recorder<E = { type: string; [field: string]: unknown }>(snapshot?: () => unknown): AnyActorRef & { events: E[] } {
  const events: E[] = [];
  return { events, send: (e: E) => void events.push(e), getSnapshot: snapshot ?? (() => undefined) } as unknown as AnyActorRef & { events: E[] };
}

export interface Received {
  role: Role;
  env: Envelope;
  replyTo?: string;
}

export function identityOf(nodeId: string, epoch = 'e1'): Identity {
  return { nodeId, epoch, dotId: `${nodeId}.${epoch}`, isNewEpoch: true, clusterId: 'cluster-id-1' };
}

export interface RolePorts {
  clock: SimClock;
  network: SimNetwork;
  simStore: SimStore;
  store: Store;
  /** n1's transport (the node under test). */
  transport: SimTransport;
  /** What reached the peer n2, decoded. */
  peer: Received[];
  /** What reached the client c1's reply addresses, decoded, with the address. */
  client: { replyTo: string; env: Envelope }[];
  /** A reply address of c1. */
  replyTo: string;
  log: Log & { lines: LogLine[] };
  shared: NodeShared;
  /** Runs the simulated time forward (messages take 1 ms, commits 1-2 ms). */
  run(ms?: number): Promise<void>;
}

export async function rolePorts(opts: { segments?: number } = {}): Promise<RolePorts> {
  const clock = new SimClock();
  const network = new SimNetwork(clock, new Prng(1));
  const simStore = new SimStore(clock, new Prng(2), { commitDelayMinMs: 1, commitDelayMaxMs: 2, ...(opts.segments ? { segments: opts.segments } : {}) });
  const transport = network.attach('n1');
  await transport.listen(() => {});
  const peer: Received[] = [];
  const peerTransport = network.attach('n2');
  await peerTransport.listen((msg: Inbound) => {
    const env = decodeEnvelope(msg.bytes);
    if (typeof env === 'string') throw new Error(env);
    peer.push({ role: msg.role, env, ...(msg.replyTo !== undefined ? { replyTo: msg.replyTo } : {}) });
  });
  const client: { replyTo: string; env: Envelope }[] = [];
  const endpoint = network.client('c1', (replyTo, bytes) => {
    const env = decodeEnvelope(bytes);
    if (typeof env === 'string') throw new Error(env);
    client.push({ replyTo, env });
  });
  const log = recordingLog();
  const shared = createNodeShared(identityOf('n1'), log);
  const run = (ms = 20) => clock.runUntil(clock.now() + ms);
  return { clock, network, simStore, store: simStore.open(), transport, peer, client, replyTo: endpoint.address(1), log, shared, run };
}
