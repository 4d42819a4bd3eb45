/**
 * The wire shapes of the client protocol, defined once, as TypeBox schemas (docs/protocol.md is
 * written from them): the envelope, a batch, every client request body and every answer body a
 * client reads. The TypeScript types of those bodies (src/protocol/messages.ts) are derived from
 * these schemas, validation.ts checks incoming requests with their compiled checkers, the client
 * checks the answers it reads with them, and `jsonSchemaOf` gives them as JSON Schema for other
 * languages.
 *
 * Byte strings are `Type.Uint8Array`: MessagePack bin (msgpackr decodes bin as a Uint8Array; a
 * MessagePack str is a string, never bytes). JSON Schema has no byte type, so jsonSchemaOf writes
 * them as `{ type: 'string', contentEncoding: 'msgpack-bin' }`.
 *
 * `errorMessage` on a schema is the sentence a refusal says when that part of a body is wrong
 * (validation.ts picks the first wrong property in the schema's order), so refusals keep saying
 * what a person can act on instead of TypeBox's generic wording. Limits a node may be started with
 * (key and value sizes, the largest deadline: src/protocol/limits.ts) are not in the schemas but
 * checked after them, with their own code (TOO_LARGE).
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { memberStatuses } from '../core/cluster-state.js';
import { aaeOps } from './aae-messages.js';
import { errorCodes } from './errors.js';

/**
 * The protocol version every envelope carries in `v`. A change a node of the previous version could
 * misread takes a new number; a node answers any other version with BAD_REQUEST (docs/protocol.md).
 */
export const protocolVersion = 1;

/** Extra schema options this module uses: the sentence to refuse with, and the one for empty bytes. */
interface Refusal {
  errorMessage?: string;
  emptyMessage?: string;
}

const bytes = (refusal: Refusal & { minByteLength?: number; description?: string } = {}) => Type.Uint8Array(refusal);
/** An optional field that may also be nil: MessagePack clients often send nil for "none". */
const nilable = <T extends TSchema>(schema: T, errorMessage: string) => Type.Optional(Type.Union([schema, Type.Null()], { errorMessage }));

/** Envelope strings (kind, from, to, reqId) are at most this many characters. */
export const envelopeFieldMax = 256;

const envelopeField = (name: string) =>
  Type.String({ maxLength: envelopeFieldMax, errorMessage: `envelope field "${name}" must be a string of at most ${envelopeFieldMax} characters` });

/**
 * Every message: a MessagePack map with these six keys. `v` is checked first and alone (a node
 * answers a version it does not speak with BAD_REQUEST naming the versions), then the rest.
 */
export const EnvelopeSchema = Type.Object({
  v: Type.Literal(protocolVersion, { description: 'protocol version' }),
  kind: envelopeField('kind'),
  from: envelopeField('from'),
  to: envelopeField('to'),
  reqId: envelopeField('reqId'),
  body: Type.Unknown(),
});

/** A batch's body: each item the bytes of one complete envelope (never a batch). */
export const BatchBodySchema = Type.Object({ items: Type.Array(bytes({ errorMessage: 'a batch item must be the bytes of one envelope' })) });

/** The quorum options every key operation may carry (absent or nil: the cluster's default). */
const requestOptions = {
  n: nilable(Type.Integer({ minimum: 1 }), 'n must be a whole number of at least 1'),
  r: nilable(Type.Integer({ minimum: 1 }), 'r must be a whole number of at least 1'),
  w: nilable(Type.Integer({ minimum: 1 }), 'w must be a whole number of at least 1'),
  pw: nilable(Type.Integer({ minimum: 0 }), 'pw must be a whole number of at least 0'),
  pr: nilable(Type.Integer({ minimum: 0 }), 'pr must be a whole number of at least 0'),
  sloppy: nilable(Type.Boolean(), 'sloppy must be true or false'),
  timeoutMs: nilable(Type.Integer({ minimum: 1 }), 'timeoutMs must be a whole number of at least 1'),
};

const key = bytes({ minByteLength: 1, errorMessage: 'key must be bytes', emptyMessage: 'key must not be empty' });
const context = nilable(bytes(), 'context must be bytes');
/** Set by a node that passed the request on to another, so that a request is forwarded at most once. */
const forwarded = nilable(Type.Boolean(), 'forwarded must be true or false');

export const ApiGetBodySchema = Type.Object({ key, ...requestOptions, forwarded });
export const ApiPutBodySchema = Type.Object({ key, ...requestOptions, context, value: bytes({ errorMessage: 'value must be bytes' }), forwarded });
export const ApiDelBodySchema = Type.Object({ key, ...requestOptions, context, forwarded });
/** One node's own replica state of the key, no coordinator (client-driven reads). */
export const ApiLocalGetBodySchema = Type.Object({ key, ...requestOptions });
/** api.status, api.hints, api.transfers: an empty map (other keys are ignored). */
export const EmptyBodySchema = Type.Object({});
export const ApiAaeBodySchema = Type.Object({ op: Type.Union(aaeOps.map((op) => Type.Literal(op)), { errorMessage: `op must be one of ${aaeOps.join(', ')}` }) });

/** A version vector: [clock id, counter] pairs sorted by clock id, each id once (the order is checked in code). */
export const VersionVectorSchema = Type.Array(Type.Tuple([Type.String(), Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })]));

/**
 * A DVV set: [clock id, counter, live values newest first] entries sorted by clock id (the order is
 * checked in code). A value is bytes, or nil for a tombstone. The counter is only a number here: one
 * ringkv could not have issued costs its own entry, refused where it is merged (version-check.ts).
 */
export const DvvSetSchema = Type.Array(
  Type.Tuple([
    Type.String(),
    // Any MessagePack number, NaN and infinities included (validation.ts checks the type): TypeBox's
    // Number refuses NaN, which would drop the whole message instead of the one entry.
    Type.Unknown({ description: 'counter: a number' }),
    Type.Array(Type.Union([bytes(), Type.Null()])),
  ]),
);

export const ApiPutOkSchema = Type.Object({ context: bytes({ description: 'the context of the key after this write' }) });
/** api.del answers as api.put does: a delete is a write of a tombstone. */
export const ApiDelOkSchema = ApiPutOkSchema;
export const ApiGetOkSchema = Type.Object({
  found: Type.Boolean(),
  /** Every live sibling, tombstones left out. */
  values: Type.Array(bytes()),
  context: bytes(),
});
export const ApiLocalGetOkSchema = Type.Object({ state: Type.Union([DvvSetSchema, Type.Null()]) });

export const ErrorBodySchema = Type.Object({
  code: Type.Union(errorCodes.map((c) => Type.Literal(c))),
  message: Type.String(),
  /** UNAVAILABLE: the replicas the quorum needed, and those believed alive. */
  needed: Type.Optional(Type.Integer({ minimum: 0 })),
  alive: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const MemberStatusSchema = Type.Object({
  nodeId: Type.String({ minLength: 1 }),
  /** Liveness as the answering node's failure detector sees it. */
  state: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  /** Membership (absent from older nodes). */
  status: Type.Optional(Type.Union(memberStatuses.map((m) => Type.Literal(m)))),
  /** A change staged for this member and not committed yet. */
  staged: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** The partitions this member owns on the answering node's ring. */
  partitions: Type.Array(Type.Integer({ minimum: 0 })),
});

export const ProcessMemorySchema = Type.Object({
  heapUsedBytes: Type.Number(),
  heapAfterGcBytes: Type.Optional(Type.Number()),
  heapTotalBytes: Type.Number(),
  externalBytes: Type.Number(),
  rssBytes: Type.Number(),
});

/**
 * What the answering node's process has done since it started, counted (src/protocol/cost-counters.ts):
 * `ringkv bench` subtracts two readings and divides by the operations between them.
 */
export const CostCountsSchema = Type.Object({
  messagesOut: Type.Number(),
  bytesOut: Type.Number(),
  messagesIn: Type.Number(),
  bytesIn: Type.Number(),
  publishTurns: Type.Number(),
  storeTxns: Type.Number(),
  storeWrites: Type.Number(),
  transitions: Type.Number(),
  encodes: Type.Number(),
  decodes: Type.Number(),
  seals: Type.Number(),
  opens: Type.Number(),
  bytesOutBy: Type.Record(Type.String(), Type.Number()),
  messagesOutBy: Type.Record(Type.String(), Type.Number()),
});

/** api.status.ok: the answering node's view of the cluster; the ring a client routes by. */
/**
 * A leaving node's own account of its departure (issue 27, item 6): what `ringkv status` shows for a
 * change that is not finishing. step: transfer (handing partitions over), ring (waiting for the
 * members to acknowledge the ring without it), exiting (waiting for them to acknowledge its exit).
 */
export const DepartureStatusSchema = Type.Object({
  /** How long this node has known its leave is committed (by its own clock, since its start at most), ms. */
  forMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  step: Type.Union([Type.Literal('transfer'), Type.Literal('ring'), Type.Literal('exiting')]),
  /** Members that have not acknowledged the current step (ring and exiting). */
  waitsFor: Type.Array(Type.String(), { maxItems: 1024 }),
  /** Hints this node still holds (delivered before it may go). */
  hints: Type.Integer({ minimum: 0 }),
  /** Partitions still to hand over (at most 64 listed): to whom, the transfer's state, targets judged down. */
  partitions: Type.Array(
    Type.Object({ p: Type.Integer({ minimum: 0 }), to: Type.Array(Type.String(), { maxItems: 16 }), state: Type.String(), down: Type.Array(Type.String(), { maxItems: 16 }) }),
    { maxItems: 64 },
  ),
  /** Partitions found but not listed. */
  partitionsMore: Type.Integer({ minimum: 0 }),
});

export const ApiStatusOkSchema = Type.Object({
  cluster: Type.String(),
  /** The cluster's id (src/protocol/cluster-id.ts): tells two clusters of one name apart; clients pin it. */
  clusterId: Type.Optional(Type.String()),
  /** Q, the number of partitions: a power of two. */
  partitions: Type.Integer({ minimum: 1 }),
  /** The cluster's default N. */
  n: Type.Integer({ minimum: 1 }),
  nodeId: Type.String(),
  members: Type.Array(MemberStatusSchema),
  ringVersion: Type.Optional(Type.Integer({ minimum: 0 })),
  startedAt: Type.Optional(Type.Number()),
  departed: Type.Optional(Type.Array(Type.Object({ nodeId: Type.String(), status: Type.Union(memberStatuses.map((m) => Type.Literal(m))) }))),
  memory: Type.Optional(ProcessMemorySchema),
  costs: Type.Optional(CostCountsSchema),
  durability: Type.Optional(Type.Union([Type.Literal('committed'), Type.Literal('fsync')])),
  /** The answering node's tombstone reaper (src/runtime/reaper-io.ts ReapStatus). */
  tombstones: Type.Optional(
    Type.Object({
      /** Tombstones in the partitions this node reaps (it is their first primary), at its last sweep. */
      kept: Type.Integer({ minimum: 0 }),
      /** Tombstones this node's store deleted by reaping since it started. */
      reaped: Type.Integer({ minimum: 0 }),
      sweeps: Type.Integer({ minimum: 0 }),
      lastSweepAt: Type.Union([Type.Number(), Type.Null()]),
      graceMs: Type.Number({ minimum: 0 }),
      /** Why the last sweep left tombstones in place: a count per reason (src/core/reap.ts WaitReason). */
      waiting: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
    }),
  ),
  /** Present when the node answering is leaving (or has marked itself exiting): where its departure stands. */
  departure: Type.Optional(DepartureStatusSchema),
});

/** The request body schema of each client operation checked here (api.cluster is the admin's). */
export const clientRequestSchemas = {
  'api.get': ApiGetBodySchema,
  'api.put': ApiPutBodySchema,
  'api.del': ApiDelBodySchema,
  'api.local.get': ApiLocalGetBodySchema,
  'api.status': EmptyBodySchema,
  'api.hints': EmptyBodySchema,
  'api.transfers': EmptyBodySchema,
  'api.aae': ApiAaeBodySchema,
} as const;

/** The answer body schema of each kind a client reads. */
export const clientAnswerSchemas = {
  'api.get.ok': ApiGetOkSchema,
  'api.put.ok': ApiPutOkSchema,
  'api.del.ok': ApiDelOkSchema,
  'api.local.get.ok': ApiLocalGetOkSchema,
  'api.status.ok': ApiStatusOkSchema,
  error: ErrorBodySchema,
} as const;

export type ApiGetWire = Static<typeof ApiGetBodySchema>;
export type ApiPutWire = Static<typeof ApiPutBodySchema>;
export type ApiDelWire = Static<typeof ApiDelBodySchema>;
export type ApiLocalGetWire = Static<typeof ApiLocalGetBodySchema>;

/** Compiled once: TypeBox generates a plain JavaScript predicate per schema, fast enough for every request. */
function compile<T extends TSchema>(schema: T): TypeCheck<T> {
  return TypeCompiler.Compile(schema);
}

export const checkers = {
  envelope: compile(EnvelopeSchema),
  batch: compile(BatchBodySchema),
  versionVector: compile(VersionVectorSchema),
  dvvSet: compile(DvvSetSchema),
  requests: Object.fromEntries(Object.entries(clientRequestSchemas).map(([kind, s]) => [kind, compile(s)])) as { [K in keyof typeof clientRequestSchemas]: TypeCheck<(typeof clientRequestSchemas)[K]> },
  answers: Object.fromEntries(Object.entries(clientAnswerSchemas).map(([kind, s]) => [kind, compile(s)])) as { [K in keyof typeof clientAnswerSchemas]: TypeCheck<(typeof clientAnswerSchemas)[K]> },
};

/**
 * The sentence for the first thing wrong with `value`, in the order the schema lists its
 * properties (TypeBox reports missing required properties before wrong ones; people expect the
 * first field of the body first). Only called once a check has failed.
 */
export function refusalOf(check: TypeCheck<TSchema>, value: unknown): string {
  const schema = check.Schema() as { properties?: Record<string, unknown> };
  const order = Object.keys(schema.properties ?? {});
  let best: { rank: number; text: string } | undefined;
  for (const error of check.Errors(value)) {
    const field = error.path.split('/')[1] ?? '';
    const rank = order.includes(field) ? order.indexOf(field) : order.length;
    const s = error.schema as Refusal;
    const empty = s.emptyMessage !== undefined && value !== null && typeof value === 'object' && (value as Record<string, unknown>)[field] instanceof Uint8Array && ((value as Record<string, Uint8Array>)[field]!.length === 0);
    const text = empty ? s.emptyMessage! : (s.errorMessage ?? `${error.path || 'body'}: ${error.message}`);
    if (best === undefined || rank < best.rank) best = { rank, text };
  }
  return best?.text ?? 'the body does not match its schema';
}

/**
 * A schema as plain JSON Schema (draft 2020-12 keywords), for a client in another language: byte
 * strings become `{ type: 'string', contentEncoding: 'msgpack-bin' }`, TypeBox's own markers and
 * this module's refusal sentences are left out.
 */
export function jsonSchemaOf(schema: TSchema): unknown {
  const walk = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(walk);
    if (typeof s !== 'object' || s === null) return s;
    const o = s as Record<string | symbol, unknown>;
    if ((o as { type?: unknown }).type === 'Uint8Array') {
      const out: Record<string, unknown> = { type: 'string', contentEncoding: 'msgpack-bin' };
      if (typeof o.minByteLength === 'number') out.minLength = o.minByteLength;
      if (typeof o.description === 'string') out.description = o.description;
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === 'errorMessage' || k === 'emptyMessage') continue;
      out[k] = walk(v);
    }
    return out;
  };
  return walk(schema);
}
