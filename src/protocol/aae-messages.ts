/**
 * Anti-entropy messages (Dynamo §4.7; actors/exchange.machine.ts runs them). One exchange compares
 * two replicas' Merkle trees of one partition and repairs what differs. Directed subjects, role aae:
 *
 *   aae.tree {p, shape, level, nodes, hashes}        the asker's hashes of some nodes of one level
 *     -> aae.tree.ok {level, nodes, children}        for each node that differs here: our F children
 *   aae.segment {p, shape, segments, keys, hashes}   the asker's keys of some differing segments,
 *                                                    each with its object hash
 *     -> aae.segment.ok {objects, want, complete}    our [key, state] of what the asker lacks or
 *                                                    holds differently; the keys we want from it;
 *                                                    complete false: some objects did not fit, ask
 *                                                    for these segments again
 *   aae.put {p, objects}                             states to sync into ours (a DVV merge, never
 *     -> aae.put.ok {repaired}                       an overwrite); answered after commit
 *   any of them -> aae.error {code, message}         refused: paused, or another tree shape
 *
 * Hashes travel as bytes, 8 per hash big-endian (src/core/merkle.ts hashesToBytes). Client API:
 * api.aae {op: status | pause | resume} to one node (its directed api subject) answers api.aae.ok.
 */
import type { DvvSet } from '../core/dvv.js';

/** [segments, fanout] of the asker's trees: both sides must have the same shape. */
export type AaeShape = [segments: number, fanout: number];

export interface AaeTreeBody {
  p: number;
  shape: AaeShape;
  level: number;
  /** Node indices on `level`, ascending. */
  nodes: number[];
  /** The asker's hash of each node, 8 bytes each. */
  hashes: Uint8Array;
}

export interface AaeTreeOk {
  level: number;
  /** The asked nodes whose hashes differ here, ascending. */
  nodes: number[];
  /** For each of them, its F children's hashes here (level + 1), 8 bytes each. */
  children: Uint8Array;
}

export interface AaeSegmentBody {
  p: number;
  shape: AaeShape;
  /** Segment indices, ascending. */
  segments: number[];
  /** Every key the asker holds in those segments, and its object hash (8 bytes each). */
  keys: Uint8Array[];
  hashes: Uint8Array;
}

export type AaeObject = [key: Uint8Array, state: DvvSet];

export interface AaeSegmentOk {
  objects: AaeObject[];
  want: Uint8Array[];
  complete: boolean;
}

export interface AaePutBody {
  p: number;
  objects: AaeObject[];
}

export interface AaePutOk {
  /** Keys whose state changed here. */
  repaired: number;
}

export interface AaeErrorBody {
  code: string;
  message: string;
}

export const aaeRequestKinds = ['aae.tree', 'aae.segment', 'aae.put'] as const;
export const aaeAnswerKinds = ['aae.tree.ok', 'aae.segment.ok', 'aae.put.ok', 'aae.error'] as const;
export type AaeRequestKind = (typeof aaeRequestKinds)[number];
export type AaeAnswerKind = (typeof aaeAnswerKinds)[number];

/** Soft size of one message's keys or objects: at least one always goes, larger ones alone. */
export const aaeMessageBytesMax = 256 * 1024;
/** Keys, objects or wanted keys in one message, at most. */
export const aaeItemsMax = 16_384;

export const aaeOps = ['status', 'pause', 'resume'] as const;
export type AaeOp = (typeof aaeOps)[number];

export interface ApiAaeBody {
  op: AaeOp;
}

/** What one node knows of anti-entropy on one partition it holds. */
export interface AaePartitionStats {
  p: number;
  /** When this node last finished an exchange of p (Clock ms), or null. */
  lastExchangeAt: number | null;
  /** Exchanges of p this node ran to the end / that failed (timeout, refused, store failure). */
  exchanges: number;
  failed: number;
  /** Keys of p whose state anti-entropy changed on this node (as asker or as peer). */
  keysRepaired: number;
  /** Bytes of aae envelopes about p this node sent (as asker or as peer). */
  bytesSent: number;
}

export interface ApiAaeOk {
  nodeId: string;
  paused: boolean;
  /** Exchanges running now, and waiting in this round. */
  running: number;
  queued: number;
  intervalMs: number;
  bytesPerSec: number;
  exchangesMax: number;
  partitions: AaePartitionStats[];
}

/** A rough encoded size of a DVV set, to fill a message up to aaeMessageBytesMax. */
export function stateBytes(state: DvvSet): number {
  let n = 2;
  for (const [id, , vals] of state) {
    n += id.length + 12;
    for (const v of vals) n += v === null ? 1 : v.length + 5;
  }
  return n;
}
