/** Events of the replica machine: one turn's writes, and the outcomes of their group commit. */
import type { CommitResult, ReplicaWriteItem } from './replica.core.js';

export type { ReplicaAnswerKind } from './replica.core.js';

export type ReplicaEvent =
  /** The writes coordinators asked of this node in one event-loop turn, in arrival order. */
  | { type: 'replica.batch'; items: ReplicaWriteItem[] }
  /** The store's group commit of writes this actor passed on: their outcomes, or the failure of each. */
  | { type: 'replica.committed'; results: CommitResult[] };
