/**
 * What a node is given and what it gives back (DESIGN.md §2, §4): its configuration, its ports, the
 * running node its owner holds, and the defaults. createNode (create-node.ts) re-exports all of it,
 * so importers keep importing from there; the role modules import from here, so that no role
 * imports the module that wires it.
 */
import type { ReapSettings, ReapStatus } from './reaper-io.js';
import type { AnyActorRef, InspectionEvent, Observer } from 'xstate';
import type { PhiOptions } from '../core/phi.js';
import type { HandoffInput } from '../../actors/handoff.machine.js';
import type { TransferInput } from '../../actors/transfer.machine.js';
import type { Quorum } from '../core/quorum.js';
import type { Limits } from '../protocol/limits.js';
import type { ApiBackupOk, ApiHintsOk, DurabilityMode, ProcessMemory } from '../protocol/messages.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import type { Transport } from '../ports/transport.js';
import type { SealKey } from '../protocol/seal.js';
import { operatorDefaults } from '../core/defaults.js';
import type { Identity } from './identity.js';
import type { InspectServer } from './inspect-server.js';
import type { AaeView } from './anti-entropy-io.js';
import type { TransferTotals } from './transfer-io.js';
import type { NodeStats } from './node-shared.js';

export interface NodeConfig {
  nodeId: string;
  cluster: string;
  /**
   * The members of a new cluster (`--members`): a node with no stored cluster state forms the ring
   * of exactly these nodes (the same on each of them). Ignored once a cluster state is stored.
   */
  members: string[];
  /**
   * Members to join through (`--seeds`): a node with no stored cluster state and no members learns
   * the cluster from a seed and stages its own join (Riak's `cluster join`); commit takes it in.
   */
  seeds?: string[];
  partitions?: number;
  quorum?: Partial<Quorum>;
  limits?: Partial<Limits>;
  requestTimeoutMs?: number;
  readRepairWaitMs?: number;
  /** How long a request waits for a target before a spare of the extended preference list is asked too. */
  fallbackWaitMs?: number;
  coordinatorsMax?: number;
  writesInFlightMax?: number;
  /** How often a node gossips with one peer; 0 turns gossip (and failure detection) off. */
  gossipRoundMs?: number;
  /** Phi above which a member is judged down (8: about one false suspicion in 10^8). */
  phiThreshold?: number;
  phi?: Partial<PhiOptions>;
  handoff?: Partial<Omit<HandoffInput, 'nodeId'>>;
  antiEntropy?: Partial<AntiEntropyConfig>;
  /** Ownership transfer (limits, batches, byte rate); defaults in transferDefaults. */
  transfer?: Partial<Omit<TransferInput, 'nodeId' | 'ring' | 'n' | 'now'>>;
  /** Tombstone reaping (src/runtime/reaper-io.ts); defaults in reapDefaults. */
  reap?: Partial<ReapSettings>;
}

/** Anti-entropy (Merkle exchanges, Dynamo §4.7); defaults in antiEntropyDefaults. */
export interface AntiEntropyConfig {
  /** A round of exchanges starts at most this often; 0: never (no anti-entropy). */
  intervalMs: number;
  /** The node's anti-entropy traffic, both directions of its exchanges, in bytes per second. */
  bytesPerSec: number;
  /** Exchanges running at once on this node. */
  exchangesMax: number;
  /** Fan-out of the trees; the segment count is the store's. */
  fanout: number;
  /** How long a peer has to answer one step of an exchange. */
  requestTimeoutMs: number;
  /** Start paused (`ringkv aae resume` starts it). */
  paused: boolean;
}

export interface NodePorts {
  /**
   * Given the same seal key (src/protocol/seal.ts) as `seal`, or the node's own messages are
   * dropped by every member it sends them to.
   */
  transport: Transport;
  /** The cluster's id and secret: every inbound message meets the member gate with it first. */
  seal: SealKey;
  store: Store;
  clock: Clock;
  log: Log;
  /** A fresh epoch for a node without data: random in production, seeded in simulation. */
  newEpoch: () => string;
  /** Seeds the node's protocol randomness (the choice of gossip peers). */
  seed?: number;
  /** Told about each client request this node handles (metrics); must not throw. */
  requests?: RequestObserver;
  /** The process's memory, reported in api.status answers (absent in simulation: no process to measure). */
  memory?: () => ProcessMemory;
  /** What an ack means with this node's store, reported in api.status answers. */
  durability?: DurabilityMode;
  /**
   * An inspection observer given to createActor, so that it sees every actor from its start (the
   * Stately inspector, `--stately-inspect`). Absent by default: xstate then builds no inspection
   * events at all, and the inspection tap subscribes only while someone follows.
   */
  inspect?: Observer<InspectionEvent>;
  /**
   * Copies the store into a backup directory (`ringkv backup`; src/server/backup.ts). Absent where
   * there is nothing on disk to copy (simulation): api.backup is then refused with BAD_REQUEST.
   */
  backup?: (dir: string, identity: Identity) => Promise<ApiBackupOk>;
}

/** Client requests as this node sees them: the hooks behind request counts and latencies. */
export interface RequestObserver {
  /** A client request reached this node's root actor (op: put, del, get, status). */
  received(op: string, from: string, reqId: string): void;
  /** This node answered a client request: kind `api.<op>.ok`, or `error` with its code. */
  answered(from: string, reqId: string, kind: string, code: string | undefined): void;
  /** This node passed a client request on to another node, which answers it. */
  forwarded(from: string, reqId: string, to: string): void;
}

export interface RunningNode {
  identity: Identity;
  stats: NodeStats;
  actor: AnyActorRef;
  /** The inspection tap and its server (the `inspect` role). */
  inspect: InspectServer;
  /** Anti-entropy counters per partition (what `ringkv aae` shows; metrics read them too). */
  aae: AaeView;
  /** Pending hints by target and the delivery rate (what `ringkv hints` shows; metrics read it too). */
  hints(): ApiHintsOk;
  /** Resolves (with the reason) when this node has left the cluster or was removed: stop it then. */
  exited: Promise<string>;
  /** Ownership transfer totals since start, and the partition transfers running and waiting now (metrics). */
  transfers(): TransferTotals;
  /** Tombstones kept and reaped (what `ringkv status` shows per node; metrics read it too). */
  tombstones(): ReapStatus;
  /**
   * The first half of a graceful stop: leave the api queue group (NATS sends its requests to the
   * other nodes), answer every new put, delete or coordinated get with NOT_READY (not applied: the
   * client asks the key's next node), keep serving replica traffic and client-driven reads, and
   * wait until every request this node coordinates has been answered, at most `waitMsMax`.
   * Resolves with what was still in flight then (0 normally) and how long it waited.
   */
  drain(waitMsMax: number): Promise<{ inFlight: number; waitedMs: number }>;
  stop(): Promise<void>;
}

export const requestTimeoutMsDefault: number = operatorDefaults.requestTimeoutMs;
export const readRepairWaitMsDefault = 50;
export const coordinatorsMaxDefault = 4096;
