/**
 * What the node's roles share (DESIGN.md §4): one explicit object handed to every role module that
 * needs it, instead of variables of one closure. Each field says who writes it; everyone else reads
 * it at the moment of use (never a copy taken at start), since identity, root and stopping change
 * while the node runs.
 */
import type { AnyActorRef } from 'xstate';
import type { NodeEvent } from '../../actors/node.events.js';
import type { Ring } from '../core/ring.js';
import type { Log } from '../ports/log.js';
import type { Identity } from './identity.js';
import { type GateStats, newGateStats } from './member-gate.js';
import type { RouterStats } from './router.js';

export interface NodeStats extends RouterStats {
  /** What the member gate passed and dropped (ringkv_messages_unauthenticated_total). */
  gate: GateStats;
  lateAnswers: number;
  actionFailures: number;
  /** Objects whose stored copy failed its checksum (dropped; anti-entropy fetches them again). */
  objectsCorrupt: number;
  /** Reads of a key whose copy here is corrupt that this node refused to answer (the asker goes to another replica). */
  corruptReadsRefused: number;
}

export function newNodeStats(): NodeStats {
  return { received: 0, droppedInvalid: 0, rejected: 0, gate: newGateStats(), lateAnswers: 0, actionFailures: 0, objectsCorrupt: 0, corruptReadsRefused: 0 };
}

export interface NodeShared {
  readonly nodeId: string;
  /**
   * The node's identity: written only by the epoch role (epoch-io.ts) when it renews the epoch, so
   * every dot is made with `shared.identity.dotId` as it is at the write.
   */
  identity: Identity;
  /** The node actor: set by createNode once it has started; until then events go nowhere. */
  root: AnyActorRef | undefined;
  /** Set by drain (drain.ts): requests that would start new work here are refused (NOT_READY). */
  stopping: boolean;
  readonly stats: NodeStats;
  /** The node's log (its fields carry the node id). */
  readonly log: Log;
  /**
   * Hands an event to the node's actors (inbound-io.ts): set by createNode once that role is built.
   * Roles built before it (outbound's send to this node itself) reach it through here.
   */
  deliver: (event: NodeEvent) => void;
}

export function createNodeShared(identity: Identity, log: Log): NodeShared {
  return { nodeId: identity.nodeId, identity, root: undefined, stopping: false, stats: newNodeStats(), log, deliver: () => {} };
}

/**
 * Every action is I/O at the edge: a failure is logged and counted, and never crashes an actor.
 * Wraps once, when the machines are provided (node-machine.ts); nothing is made per call.
 */
export function safeAction<A extends unknown[]>(shared: NodeShared, name: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      shared.stats.actionFailures++;
      shared.log.error('action failed', { action: name, err });
    }
  };
}

/** The ring the node actor holds now, or `initial` before it has started. */
export function ringNow(shared: NodeShared, initial: Ring): Ring {
  return (shared.root?.getSnapshot().context as { ring?: Ring } | undefined)?.ring ?? initial;
}
