/**
 * Where the node's cluster state comes from and where it is kept (DESIGN.md §6): the stored state of
 * an earlier life, the ring of `--members`, or, for a node joining through `--seeds`, what a seed
 * tells it (the seed bootstrap). Saved under one meta entry each time the node machine changes it.
 */
import type { GossipBody } from '../../actors/gossip.events.js';
import { type ClusterState, hasRing, initialState, joinerState, mergeStates } from '../core/cluster-state.js';
import { partitionCountDefault } from '../core/ring.js';
import { checkClusterState, checkGossipBody } from '../protocol/validation.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import type { Inbound, Transport } from '../ports/transport.js';
import type { NodeConfig } from './node-api.js';

/** The meta entry that keeps this node's cluster state (members, committed ring, staged plan). */
export const clusterMetaName = 'cluster';

/**
 * The cluster state a node starts from: the stored one (a restart rejoins as the same member), else
 * the ring of `--members` (a new cluster: every member computes the same state), else a joiner's
 * state that knows only itself (it learns the rest from a seed).
 */
export async function initialClusterState(config: NodeConfig, store: Store, nodeId: string): Promise<ClusterState> {
  const q = config.partitions ?? partitionCountDefault;
  const stored = store.getMeta<unknown>(clusterMetaName);
  if (stored !== undefined) {
    if (checkClusterState(stored)) return stored;
    throw new Error('the stored cluster state is malformed');
  }
  if (config.members.length > 0) return initialState(config.members, q);
  if ((config.seeds ?? []).length > 0) return joinerState(nodeId, q);
  throw new Error('this node has no cluster state: give --members (a new cluster) or --seeds (join one)');
}

export interface LearnDeps {
  nodeId: string;
  incarnation: number;
  transport: Transport;
  clock: Clock;
  log: Log;
  retryMs: number;
  setHandler: (handler: (msg: Inbound) => void) => void;
}

/**
 * A fresh node's first contact (Dynamo §4.8.2, seeds): it sends its state (itself, join staged) to
 * its seeds until one answers with a state that holds a committed ring, and takes that over. Client
 * requests that reach it meanwhile go on to a seed, which answers them.
 */
export function learnFromSeeds(state: ClusterState, seeds: string[], deps: LearnDeps): Promise<ClusterState> {
  const { nodeId, transport, clock, log } = deps;
  const targets = seeds.filter((s) => s !== nodeId);
  if (targets.length === 0) return Promise.reject(new Error('this node has no ring yet and no seed to learn it from: give --seeds'));
  return new Promise((resolve) => {
    let current = state;
    let attempt = 0;
    let timer: unknown;
    const ask = () => {
      attempt++;
      // Seeds drop what is not sealed with their cluster's secret without a word: say what to check.
      if (attempt % 10 === 0) log.warn('no seed has answered yet: are the seeds up, and does this node have the cluster secret they were given?', { seeds: targets, attempts: attempt });
      const body: GossipBody = { heartbeats: { [nodeId]: [deps.incarnation, 0] }, cluster: current };
      for (const seed of targets) {
        transport.send(seed, 'gossip', encodeEnvelope({ v: protocolVersion, kind: 'gossip.digest', from: nodeId, to: seed, reqId: `join.${attempt}`, body }));
      }
      timer = clock.setTimeout(ask, deps.retryMs);
    };
    deps.setHandler((msg) => {
      if (msg.role === 'api') {
        if (msg.replyTo !== undefined) transport.forward(targets[0]!, msg.bytes, msg.replyTo);
        return;
      }
      // An admin request cannot be passed on (the forward role takes only reads and writes): it is
      // told this node is not ready rather than left to time out.
      if (msg.role === 'admin') {
        if (msg.replyTo !== undefined) answerNotReady(transport, nodeId, msg);
        return;
      }
      if (msg.role !== 'gossip') return;
      const env = decodeEnvelope(msg.bytes);
      if (typeof env === 'string' || !checkGossipBody(env.body)) return;
      const cluster = (env.body as GossipBody).cluster;
      if (!cluster) return;
      current = mergeStates(current, cluster);
      if (hasRing(current)) {
        clock.clearTimeout(timer);
        log.info('learned the cluster from a seed', { from: env.from, ringVersion: current.ring.version, members: Object.keys(current.members) });
        resolve(current);
      }
    });
    ask();
  });
}

function answerNotReady(transport: Transport, nodeId: string, msg: Inbound): void {
  const env = decodeEnvelope(msg.bytes);
  const to = typeof env === 'string' ? '' : env.from;
  const reqId = typeof env === 'string' ? '' : env.reqId;
  const body = { code: 'NOT_READY', message: `node ${nodeId} has not learned the ring from a seed yet` };
  transport.reply(msg.replyTo!, encodeEnvelope({ v: protocolVersion, kind: 'error', from: nodeId, to, reqId, body }));
}

/** Keeps the node machine's new cluster state (its saveClusterState action); a failure is logged, the state in memory stays. */
export function saveClusterState(store: Store, log: Log, cluster: ClusterState): void {
  store.putMeta(clusterMetaName, cluster).catch((err: unknown) => log.error('could not save the cluster state', { err }));
}
