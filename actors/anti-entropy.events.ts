/**
 * Events of the anti-entropy machine and of its exchanges. Messages from peers arrive validated by
 * the router, with `bytes`, the size of their envelope (exchanges pace themselves by it). Local
 * reads and merges are answered by the runtime with `reqId`, the exchange's current request id.
 */
import type {
  AaeErrorBody,
  AaeObject,
  AaeOp,
  AaePutBody,
  AaePutOk,
  AaeSegmentBody,
  AaeSegmentOk,
  AaeTreeBody,
  AaeTreeOk,
} from '../src/protocol/aae-messages.js';
import type { Ring } from '../src/core/ring.js';

/** A peer's request: served by the anti-entropy machine through the runtime. */
export type AaeRequestEvent =
  | { type: 'aae.tree'; from: string; reqId: string; body: AaeTreeBody; bytes: number }
  | { type: 'aae.segment'; from: string; reqId: string; body: AaeSegmentBody; bytes: number }
  | { type: 'aae.put'; from: string; reqId: string; body: AaePutBody; bytes: number };

/** A peer's answer to one of our exchange's requests. */
export type AaeAnswerEvent =
  | { type: 'aae.tree.ok'; from: string; reqId: string; body: AaeTreeOk; bytes: number }
  | { type: 'aae.segment.ok'; from: string; reqId: string; body: AaeSegmentOk; bytes: number }
  | { type: 'aae.put.ok'; from: string; reqId: string; body: AaePutOk; bytes: number }
  | { type: 'aae.error'; from: string; reqId: string; body: AaeErrorBody; bytes: number };

/** The runtime's answers to an exchange's local reads and merges. */
export type AaeLocalEvent =
  /** This node's tree of the partition, every level from the root, 8 bytes per hash. */
  | { type: 'aae.local.tree'; reqId: string; levels: Uint8Array[] }
  /**
   * This node's keys in the first of the asked segments, with their object hashes: as many whole
   * segments as fit in one message (at least one). `bytes`: their size.
   */
  | { type: 'aae.local.entries'; reqId: string; segments: number[]; keys: Uint8Array[]; hashes: Uint8Array; bytes: number }
  /**
   * The peer's objects are merged and committed (`repaired`: keys that changed here); `objects`: our
   * states of the keys the peer wants, read after the merge (complete false: not all of them fit).
   */
  | { type: 'aae.local.merged'; reqId: string; repaired: number; objects: AaeObject[]; complete: boolean; bytes: number }
  /** The store failed a read or a commit. */
  | { type: 'aae.local.failed'; reqId: string; message: string };

export type ExchangeEvent = AaeAnswerEvent | AaeLocalEvent;

export type AntiEntropyEvent =
  /** A round is due (runtime schedule); the node adds the members it believes down. */
  | { type: 'aae.tick'; down?: string[] }
  | AaeRequestEvent
  | AaeAnswerEvent
  | AaeLocalEvent
  /** `ringkv aae`: status, pause or resume, from a client, to be answered. */
  | { type: 'api.aae'; from: string; reqId: string; replyTo: string; op: AaeOp }
  /** A newer committed ring (membership): exchanges follow the partitions this node now replicates. */
  | { type: 'ring.changed'; ring: Ring }
  | { type: 'xstate.done.actor.*'; actorId: string; output?: unknown };
