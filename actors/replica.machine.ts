/**
 * Replica: one per partition this node holds (a vnode, Dynamo §4.2). It applies the writes and
 * reads of that partition against the local store.
 *
 * Takes: replica.coordinate (a client write: make the new dot), replica.put (sync another replica's
 * state), replica.get (answer the local state), replica.local.get (a client's local read, Dynamo
 * §6.4: answer the client directly); store.committed / store.failed from the store.
 * Sends: replica.coordinate.ok {state}, replica.put.ok, replica.get.ok {state}, replica.error;
 * api.local.get.ok {state} to a client.
 *
 * Invariants: an ok is sent only after store.committed, that is after the LMDB transaction that
 * holds the write has committed (Dynamo §4.5: a write is acknowledged once durable at W nodes).
 * At most writesInFlightMax writes wait for their commit; beyond that the replica answers
 * OVERLOADED at once rather than queueing without bound.
 */
import { assign, setup } from 'xstate';
import type { ReplicaWrite } from '../src/core/replica-write.js';
import type { ReplicaAnswerKind, ReplicaEvent } from './replica.events.js';

export interface ReplicaInput {
  partition: number;
  siblingsMax: number;
  /** A key's stored size a client write may not take it past (limits.ts keyStoredBytesMax). */
  storedBytesMax?: number;
  writesInFlightMax: number;
}

export interface ReplicaContext extends ReplicaInput {
  writesInFlight: number;
}

export interface CommitWriteParams {
  from: string;
  reqId: string;
  p: number;
  key: Uint8Array;
  write: ReplicaWrite;
  answer: ReplicaAnswerKind;
  /** Down primaries to keep hints for, committed with the object. */
  hints: string[];
}

export interface SendParams {
  to: string;
  kind: string;
  reqId: string;
  body: unknown;
}

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

export const writesInFlightMaxDefault = 1024;

/** A write that finds writesInFlightMax writes waiting is refused at once with OVERLOADED. */
const refuseWhenOverloaded = {
  guard: 'isOverloaded' as const,
  actions: {
    type: 'send' as const,
    params: ({ event, context }: { event: { from: string; reqId: string }; context: ReplicaContext }) => overloaded(event.from, event.reqId, context.writesInFlightMax),
  },
};

export const replicaMachine = setup({
  types: {
    context: {} as ReplicaContext,
    events: {} as ReplicaEvent,
    input: {} as ReplicaInput,
  },
  actions: {
    // I/O, provided by the runtime: run the write in a store transaction, then send this actor
    // store.committed or store.failed.
    commitWrite: (_, _params: CommitWriteParams) => {},
    // I/O, provided by the runtime: read the local state and send replica.get.ok to the asker.
    readAndAnswer: (_, _params: ReadAndAnswerParams) => {},
    // I/O, provided by the runtime: read the local state and answer a client's local read.
    readAndReply: (_, _params: ReadAndReplyParams) => {},
    // I/O, provided by the runtime: send one envelope.
    send: (_, _params: SendParams) => {},
    countWriteStarted: assign({ writesInFlight: ({ context }) => context.writesInFlight + 1 }),
    countWriteDone: assign({ writesInFlight: ({ context }) => Math.max(0, context.writesInFlight - 1) }),
  },
  guards: {
    isOverloaded: ({ context }) => context.writesInFlight >= context.writesInFlightMax,
  },
}).createMachine({
  id: 'replica',
  context: ({ input }) => ({ ...input, writesInFlight: 0 }),
  initial: 'serving',
  states: {
    serving: {
      on: {
        'replica.coordinate': [
          refuseWhenOverloaded,
          {
            actions: [
              'countWriteStarted',
              {
                type: 'commitWrite',
                params: ({ event, context }) => ({
                  from: event.from,
                  reqId: event.reqId,
                  p: event.body.p,
                  key: event.body.key,
                  answer: 'replica.coordinate.ok' as const,
                  hints: event.body.hints ?? [],
                  write: {
                    kind: 'coordinate' as const,
                    context: event.body.context,
                    value: event.body.value,
                    siblingsMax: context.siblingsMax,
                    ...(context.storedBytesMax !== undefined ? { storedBytesMax: context.storedBytesMax } : {}),
                  },
                }),
              },
            ],
          },
        ],
        'replica.put': [
          refuseWhenOverloaded,
          {
            actions: [
              'countWriteStarted',
              {
                type: 'commitWrite',
                params: ({ event }) => ({
                  from: event.from,
                  reqId: event.reqId,
                  p: event.body.p,
                  key: event.body.key,
                  answer: 'replica.put.ok' as const,
                  hints: event.body.hint ? [event.body.hint] : [],
                  write: { kind: 'sync' as const, state: event.body.state },
                }),
              },
            ],
          },
        ],
        'replica.get': {
          actions: {
            type: 'readAndAnswer',
            params: ({ event }) => ({ from: event.from, reqId: event.reqId, p: event.body.p, key: event.body.key }),
          },
        },
        'replica.local.get': {
          actions: {
            type: 'readAndReply',
            params: ({ event }) => ({ replyTo: event.replyTo, from: event.from, reqId: event.reqId, p: event.p, key: event.key }),
          },
        },
        'store.committed': {
          actions: [
            'countWriteDone',
            {
              type: 'send',
              params: ({ event }) => {
                const { outcome } = event;
                if (!outcome.ok) {
                  return { to: event.from, kind: 'replica.error', reqId: event.reqId, body: { code: outcome.code, message: outcome.message } };
                }
                const body = event.answer === 'replica.coordinate.ok' ? { state: outcome.state } : {};
                return { to: event.from, kind: event.answer, reqId: event.reqId, body };
              },
            },
          ],
        },
        'store.failed': {
          actions: [
            'countWriteDone',
            {
              type: 'send',
              params: ({ event }) => ({
                to: event.from,
                kind: 'replica.error',
                reqId: event.reqId,
                body: { code: 'INTERNAL', message: `the replica could not commit: ${event.message}` },
              }),
            },
          ],
        },
      },
    },
  },
});

function overloaded(to: string, reqId: string, max: number): SendParams {
  return {
    to,
    kind: 'replica.error',
    reqId,
    body: { code: 'OVERLOADED', message: `the replica already has ${max} writes waiting for their commit` },
  };
}
