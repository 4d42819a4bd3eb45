/** Events of the replica machine: replica requests from coordinators, and store outcomes. */
import type { WriteOutcome } from '../src/core/replica-write.js';
import type { ReplicaCoordinateBody, ReplicaGetBody, ReplicaPutBody } from '../src/protocol/messages.js';

export type ReplicaAnswerKind = 'replica.coordinate.ok' | 'replica.put.ok';

export type ReplicaEvent =
  | { type: 'replica.coordinate'; from: string; reqId: string; body: ReplicaCoordinateBody }
  | { type: 'replica.put'; from: string; reqId: string; body: ReplicaPutBody }
  | { type: 'replica.get'; from: string; reqId: string; body: ReplicaGetBody }
  /** A client's local read (api.local.get), routed here by the node: answer the client directly. */
  | { type: 'replica.local.get'; from: string; reqId: string; replyTo: string; p: number; key: Uint8Array }
  /** The store committed a write (or decided it must not be made: outcome.ok false). */
  | { type: 'store.committed'; from: string; reqId: string; answer: ReplicaAnswerKind; outcome: WriteOutcome }
  /** The store could not commit: an I/O failure. Nothing was written. */
  | { type: 'store.failed'; from: string; reqId: string; message: string };
