/**
 * createNode(): binds the node machine to its ports (DESIGN.md §2, §4). The machines decide; the
 * role modules perform what they decide, each with the ports it needs, and results come back to the
 * actors as events. This file wires the roles together and owns the node's lifecycle: load the
 * identity, learn the cluster, start the actors, listen, and stop. The same function builds
 * production nodes (NATS, LMDB, system clock) and simulated ones (SimNetwork, SimStore, SimClock).
 *
 * The roles (src/runtime): inbound-io (requests in), outbound-io (answers out), coordinator-io,
 * replica-io, handoff-io, transfer-io, anti-entropy-io, admin-io, epoch-io, exit-io, drain, ticks,
 * cluster-state-io (the seed bootstrap), inspect-server; node-machine binds them to the machines, and
 * node-shared holds what several of them share.
 */
import { type AnyActorRef, createActor } from 'xstate';
import { replicaActorId } from '../../actors/node-routes.js';
import { hasRing, ringOf } from '../core/cluster-state.js';
import { isDeparted } from '../core/departed.js';
import { partitionsReplicatedBy } from '../core/ring.js';
import { createAdminIo } from './admin-io.js';
import { createAaeIo } from './anti-entropy-io.js';
import { clusterMetaName, initialClusterState, learnFromSeeds } from './cluster-state-io.js';
import { createCoordinatorIo } from './coordinator-io.js';
import { createDrain } from './drain.js';
import { createEpochIo } from './epoch-io.js';
import { createExitIo } from './exit-io.js';
import { createHandoffIo } from './handoff-io.js';
import { hintSummary } from './hint-summary.js';
import { loadIdentity, markCleanStop } from './identity.js';
import { createDeliver, createIntake } from './inbound-io.js';
import { createInspectServer } from './inspect-server.js';
import type { NodeConfig, NodePorts, RunningNode } from './node-api.js';
import { nodeInput, nodeSettings, treeShape } from './node-input.js';
import { provideNodeMachine } from './node-machine.js';
import { createNodeShared, ringNow } from './node-shared.js';
import { createOutbound } from './outbound-io.js';
import { createReplicaIo } from './replica-io.js';
import { createRouter } from './router.js';
import { createTicks } from './ticks.js';
import { createTransferIo } from './transfer-io.js';
import { countTransitions } from './transition-count.js';
import { rateLimitedLog } from './log-limiter.js';
import { createReaper, type Reaper, reapDefaults, reapViewOf } from './reaper-io.js';
import { departureStatusOf } from './departure-status.js';

// The node's API, as before the split: importers keep importing it from here.
export type { AntiEntropyConfig, NodeConfig, NodePorts, RequestObserver, RunningNode } from './node-api.js';
export { coordinatorsMaxDefault, readRepairWaitMsDefault, requestTimeoutMsDefault } from './node-api.js';
export type { NodeStats } from './node-shared.js';
export { coordinatorBatchItemsMax } from './coordinator-io.js';
export { clusterMetaName } from './cluster-state-io.js';

export async function createNode(config: NodeConfig, ports: NodePorts): Promise<RunningNode> {
  const { transport, store, clock } = ports;
  // Warnings and errors at most once per message text per 10 s (log-limiter.ts): nothing that arrives can fill the log.
  const log = rateLimitedLog(ports.log.child({ node: config.nodeId }), () => clock.now());
  const shared = createNodeShared(await loadIdentity(store, config.nodeId, ports.newEpoch, ports.seal.clusterId), log);
  const { nodeId, stats } = shared;
  // Every inbound message goes through the intake: to the seed bootstrap first when this node still
  // has to learn the cluster, then to the router.
  const intake = createIntake({ shared, seal: ports.seal, cluster: config.cluster, clock });
  const settings = nodeSettings(config);
  const { roundMs, n } = settings;
  const incarnation = clock.now();
  let listening = false;
  let clusterState = await initialClusterState(config, store, nodeId);
  if (!hasRing(clusterState)) {
    await transport.listen(intake.admit);
    listening = true;
    const retryMs = Math.max(200, Math.min(roundMs, 1000));
    clusterState = await learnFromSeeds(clusterState, config.seeds ?? [], { nodeId, incarnation, transport, clock, log, retryMs, setHandler: intake.setHandler });
  }
  await store.putMeta(clusterMetaName, clusterState);
  const ring = ringOf(clusterState);
  const shape = treeShape(store.segmentCount, settings);
  const currentRing = () => ringNow(shared, ring);

  // The roles, each given the ports and the shared state it needs.
  const inspect = createInspectServer({ nodeId, transport, clock, log });
  // The reaper is made below (it needs the epoch role); status answers ask it through this.
  let reaper: Reaper | undefined;
  const out = createOutbound({
    shared,
    transport,
    requests: ports.requests,
    memory: ports.memory,
    durability: ports.durability,
    tombstones: () => reaper?.status(),
    departure: () => departureStatusOf(shared.root, store.hintCount(), clock.now()),
  });
  const coordinator = createCoordinatorIo({ shared, clock, tap: inspect.tap, out });
  const epoch = createEpochIo({ shared, store, clock, newEpoch: ports.newEpoch });
  // A turn's sends leave before its group commit: the other replicas store a coordinated write's
  // state while this node commits it (DESIGN.md §3), instead of one commit later.
  if (transport.flush) store.beforeCommit?.(() => transport.flush!());
  const replica = createReplicaIo({
    nodeId,
    store,
    transport,
    log,
    limits: settings.limits,
    now: () => clock.now(),
    dotId: () => shared.identity.dotId,
    actor: () => shared.root?.getSnapshot().children[replicaActorId] as AnyActorRef | undefined,
    send: out.send,
    answerClient: out.answerClient,
    renewEpoch: epoch.renewEpochNow,
    tap: inspect.tap,
    stats,
    ...(ports.requests ? { requests: ports.requests } : {}),
  });
  const deliver = createDeliver({ shared, requests: ports.requests, toCoordinator: coordinator.toCoordinator, replica, answerClient: out.answerClient });
  shared.deliver = deliver;
  const handoff = createHandoffIo({ nodeId, store, clock, log, send: out.send });
  const aae = createAaeIo({
    nodeId,
    store,
    shape,
    transport,
    clock,
    log,
    settings: { intervalMs: settings.aae.intervalMs, bytesPerSec: settings.aae.bytesPerSec, exchangesMax: settings.aae.exchangesMax },
    partitions: () => partitionsReplicatedBy(currentRing(), nodeId, n),
    deliver: (event) => deliver(event),
    answerClient: out.answerClient,
    machineState: () => {
      const snap = (shared.root?.getSnapshot().children.antiEntropy as AnyActorRef | undefined)?.getSnapshot() as { value: string; context: { running: string[]; queue: unknown[] } } | undefined;
      return { paused: snap?.value === 'paused', running: snap?.context.running.length ?? 0, queued: snap?.context.queue.length ?? 0 };
    },
  });
  epoch.watchCorruption();
  const transfer = createTransferIo({ nodeId, store, log, beforeDrop: epoch.renewEpochBeforeDrop });
  reaper = createReaper({
    nodeId,
    store,
    transport,
    clock,
    log,
    n,
    settings: { ...reapDefaults, ...config.reap },
    beforeDrop: epoch.renewEpochBeforeDrop,
    view: () => reapViewOf(shared.root?.getSnapshot()),
  });
  const exit = createExitIo({ clock, log, roundMs, leftToHandOver: () => transfer.leftToHandOver(currentRing(), n) });
  const admin = createAdminIo({ shared, store, clock, backup: ports.backup, answerClient: out.answerClient, deliveries: handoff.deliveries, transfers: transfer });
  const machine = provideNodeMachine(shared, { store, deliver, out, coordinator, replica, handoff, aae, transfer, admin, exit });

  const facts = { nodeId, dotId: shared.identity.dotId, cluster: clusterState, ring, shape, incarnation, now: clock.now(), seed: ports.seed };
  const actor = createActor(machine, { input: nodeInput(config, settings, facts), clock, id: nodeId, ...(ports.inspect ? { inspect: ports.inspect } : {}) });
  countTransitions(actor);
  actor.subscribe({
    error: (err) => log.error('node actor failed', { err }),
  });
  inspect.tap.attach(actor);
  actor.start();
  shared.root = actor;

  const route = createRouter({ nodeId, q: ring.q, limits: settings.limits, transport, deliver, stats, now: () => clock.now(), log, reap: reaper.handle });
  intake.setHandler((msg) => (msg.role === 'inspect' || msg.role === 'inspect-peer' ? inspect.handle(msg) : route(msg)));
  if (!listening) await transport.listen(intake.admit);
  const ticks = createTicks({ clock, deliver, roundMs, aaeIntervalMs: settings.aae.intervalMs });
  ticks.start();
  reaper.start();
  const status = clusterState.members[nodeId]?.status;
  log.info('node serving', { epoch: shared.identity.epoch, newEpoch: shared.identity.isNewEpoch, partitions: ring.q, members: Object.keys(clusterState.members), status, ringVersion: clusterState.ring.version });
  // A node that already left (or was removed) in an earlier life does not serve again. One that
  // stopped after it marked itself exiting but before it had handed over what landed on it in its
  // last round (found by the simulator: `ringkv sim --seed 20 --nodes 5 --ops 60 --faults swarm`,
  // a crash in that window) hands that over first.
  if (isDeparted(status)) exit.exitAfterHandOver(`this node is ${status}: it left the cluster in an earlier life`, status === 'exiting', true);

  return {
    get identity() {
      return shared.identity;
    },
    stats,
    actor,
    inspect,
    aae: aae.view,
    hints: () => hintSummary(nodeId, store, clock.now(), handoff.deliveries),
    exited: exit.exited,
    transfers: () => {
      const snap = (shared.root?.getSnapshot().children.transfer as AnyActorRef | undefined)?.getSnapshot() as { context?: { running: string[]; waiting: unknown[] } } | undefined;
      return { ...transfer.totals, running: snap?.context?.running.length ?? 0, waiting: snap?.context?.waiting.length ?? 0 };
    },
    tombstones: () => reaper!.status(),
    drain: createDrain({ shared, transport, clock }),
    async stop() {
      ticks.stop();
      reaper!.stop();
      inspect.tap.close();
      await transport.close();
      actor.stop();
      await markCleanStop(store, shared.identity);
    },
  };
}
