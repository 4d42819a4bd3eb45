/**
 * The node's settings, from its configuration and the defaults, and the node machine's input built
 * from them (actors/node.machine.ts): what every child machine starts with.
 */
import { gossipRoundMsDefault, phiDefaults, phiThresholdDefault } from '../../actors/gossip.machine.js';
import { handoffDefaults } from '../../actors/handoff.machine.js';
import { antiEntropyDefaults } from '../../actors/anti-entropy.machine.js';
import { transferDefaults } from '../../actors/transfer.machine.js';
import { writesInFlightMaxDefault } from '../../actors/replica.machine.js';
import type { NodeInput } from '../../actors/node.machine.js';
import type { ClusterState } from '../core/cluster-state.js';
import type { Ring } from '../core/ring.js';
import { departedOf } from '../core/departed.js';
import { fanoutDefault, shapeProblem, type TreeShape } from '../core/merkle.js';
import { splitmix32 } from '../core/prng.js';
import { quorumDefault } from '../core/quorum.js';
import { fallbackWaitMsDefault } from '../core/targets.js';
import { defaultLimits, type Limits } from '../protocol/limits.js';
import { type AntiEntropyConfig, coordinatorsMaxDefault, type NodeConfig, readRepairWaitMsDefault, requestTimeoutMsDefault } from './node-api.js';

export interface NodeSettings {
  limits: Limits;
  /** The gossip round (and handoff and transfer tick); 0: no rounds. */
  roundMs: number;
  /** Anti-entropy's settings, defaults filled in. */
  aae: AntiEntropyConfig & typeof antiEntropyDefaults;
  /** Replicas per key. */
  n: number;
}

export function nodeSettings(config: NodeConfig): NodeSettings {
  return {
    limits: { ...defaultLimits, ...config.limits },
    roundMs: config.gossipRoundMs ?? gossipRoundMsDefault,
    aae: { ...antiEntropyDefaults, fanout: fanoutDefault, paused: false, ...config.antiEntropy },
    n: { ...quorumDefault, ...config.quorum }.n,
  };
}

/** The anti-entropy trees' shape: the store's segments, the configured fan-out. Throws if they do not fit. */
export function treeShape(segments: number, settings: NodeSettings): TreeShape {
  const shape: TreeShape = { segments, fanout: settings.aae.fanout };
  const shapeIssue = shapeProblem(shape);
  if (shapeIssue) throw new Error(`anti-entropy trees: ${shapeIssue}`);
  return shape;
}

export interface InputFacts {
  nodeId: string;
  /** The node's clock id: it seeds gossip's randomness when no seed is given. */
  dotId: string;
  cluster: ClusterState;
  ring: Ring;
  shape: TreeShape;
  incarnation: number;
  now: number;
  seed: number | undefined;
}

export function nodeInput(config: NodeConfig, settings: NodeSettings, facts: InputFacts): NodeInput {
  const { nodeId, ring, shape } = facts;
  const { n, roundMs, aae } = settings;
  return {
    nodeId,
    cluster: config.cluster,
    ring,
    quorumDefault: { ...quorumDefault, ...config.quorum },
    limits: settings.limits,
    requestTimeoutMs: config.requestTimeoutMs ?? requestTimeoutMsDefault,
    readRepairWaitMs: config.readRepairWaitMs ?? readRepairWaitMsDefault,
    fallbackWaitMs: config.fallbackWaitMs ?? fallbackWaitMsDefault,
    coordinatorsMax: config.coordinatorsMax ?? coordinatorsMaxDefault,
    writesInFlightMax: config.writesInFlightMax ?? writesInFlightMaxDefault,
    handoff: { nodeId, ...handoffDefaults, ...config.handoff, departed: departedOf(facts.cluster) },
    transfer: { ...transferDefaults, ...config.transfer, nodeId, ring, n, now: facts.now, seed: facts.seed ?? hashSeed(facts.dotId) },
    antiEntropy: {
      nodeId,
      ring,
      n,
      shape,
      exchangesMax: aae.exchangesMax,
      bytesPerSec: aae.bytesPerSec,
      requestTimeoutMs: aae.requestTimeoutMs,
      segmentsPerRequestMax: aae.segmentsPerRequestMax,
      batchesMax: aae.batchesMax,
      paused: aae.paused,
    },
    gossip: {
      nodeId,
      cluster: facts.cluster,
      n,
      // Larger in every later life of this node, so its new heartbeats beat the ones remembered.
      incarnation: facts.incarnation,
      seed: facts.seed ?? hashSeed(facts.dotId),
      phiThreshold: config.phiThreshold ?? phiThresholdDefault,
      // The detector's expectations scale with the round: detection takes about 5 rounds.
      phi: roundMs > 0 ? { ...phiDefaults, firstIntervalMs: roundMs, acceptablePauseMs: roundMs, minStdDeviationMs: roundMs / 2, ...config.phi } : { ...phiDefaults, ...config.phi },
    },
  };
}

/** A 32-bit seed from a string (the node's clock id), so each node draws its own sequence. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return splitmix32(h >>> 0);
}
