/**
 * Replica: the node's one replica actor (a vnode's write side, Dynamo §4.2 and §4.5). It applies
 * the writes coordinators ask of this node, for every partition it holds, and takes two events per
 * event-loop turn whatever the number of writes: replica.batch (the turn's replica.coordinate and
 * replica.put items) and replica.committed (the outcomes of one group commit). Its decisions are
 * pure functions over the batch (actors/replica.core.ts); the runtime performs what it decides
 * (commit: run the writes in the store's transaction of the turn; send: the answers).
 *
 * Reads (replica.get from a coordinator, api.local.get from a client) have nothing to decide: the
 * runtime answers them from the store without a transition (src/runtime/create-node.ts).
 *
 * Takes: replica.batch, replica.committed. Sends (through perform): commit {writes}, then per write
 * replica.coordinate.ok {state} | replica.put.ok | replica.error.
 *
 * Invariants: an ok is sent only after replica.committed, that is after the LMDB transaction that
 * holds the write has committed (Dynamo §4.5: a write is acknowledged once durable at W nodes). At
 * most writesInFlightMax writes wait for their commit; beyond that a write is answered OVERLOADED at
 * once rather than queued without bound.
 */
import { assign, setup } from 'xstate';
import { type CommitResult, type CommitWrite, type ReplicaLimits, type SendParams, answersOf, planBatch } from './replica.core.js';
import type { ReplicaEvent } from './replica.events.js';

export type { CommitResult, CommitWrite, ReplicaAnswerKind, ReplicaWriteItem, SendParams } from './replica.core.js';
export { writesInFlightMaxDefault } from './replica.core.js';

export type ReplicaInput = ReplicaLimits;

export interface ReplicaContext extends ReplicaInput {
  writesInFlight: number;
  /** What the last event decided, for perform (rebuilt by every event). */
  outbox: ReplicaOutput[];
}

/** What the runtime performs for one event, in order. */
export type ReplicaOutput = { type: 'commit'; writes: CommitWrite[] } | { type: 'send'; params: SendParams };

/** Reads the local state and answers the asking coordinator (replica.get). */
export interface ReadAndAnswerParams {
  from: string;
  reqId: string;
  p: number;
  key: Uint8Array;
}

/** A client's local read: read the local state and answer the client (api.local.get.ok). */
export interface ReadAndReplyParams {
  replyTo: string;
  from: string;
  reqId: string;
  p: number;
  key: Uint8Array;
}

/** One turn's writes: the store takes those within writesInFlightMax, the rest are refused at once. */
export function takeBatch(context: ReplicaContext, items: Extract<ReplicaEvent, { type: 'replica.batch' }>['items']): Pick<ReplicaContext, 'writesInFlight' | 'outbox'> {
  const { commit, refused } = planBatch(context, context.writesInFlight, items);
  const outbox: ReplicaOutput[] = refused.map((params) => ({ type: 'send', params }));
  if (commit.length > 0) outbox.push({ type: 'commit', writes: commit });
  return { writesInFlight: context.writesInFlight + commit.length, outbox };
}

/** One group commit's outcomes: the writes no longer wait, and each is answered. */
export function takeCommitted(context: ReplicaContext, results: readonly CommitResult[]): Pick<ReplicaContext, 'writesInFlight' | 'outbox'> {
  return { writesInFlight: Math.max(0, context.writesInFlight - results.length), outbox: answersOf(results).map((params) => ({ type: 'send', params })) };
}

export const replicaMachine = setup({
  types: {
    context: {} as ReplicaContext,
    events: {} as ReplicaEvent,
    input: {} as ReplicaInput,
  },
  actions: {
    // I/O, provided by the runtime: performs the outputs in order (the commit answers with
    // replica.committed once the group commit is done, or failed).
    perform: (_, _outputs: ReplicaOutput[]) => {},
  },
}).createMachine({
  id: 'replica',
  context: ({ input }) => ({ ...input, writesInFlight: 0, outbox: [] }),
  initial: 'serving',
  states: {
    serving: {
      on: {
        'replica.batch': {
          actions: [assign(({ context, event }) => takeBatch(context, event.items)), { type: 'perform', params: ({ context }) => context.outbox }],
        },
        'replica.committed': {
          actions: [assign(({ context, event }) => takeCommitted(context, event.results)), { type: 'perform', params: ({ context }) => context.outbox }],
        },
      },
    },
  },
});
