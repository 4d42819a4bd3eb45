/**
 * `import ... from 'ringkv'`: the client library for an application that reads and writes, and
 * the types its methods take and return. Everything else in the package (actors, runtime, adapters,
 * the CLI) is internal and not exported; the admin API (cluster changes, hints, transfers,
 * anti-entropy, backup) is `ringkv/admin`.
 */
export { RingkvClient, clientTimeoutMsDefault, ringRefreshMsDefault } from './client/client.js';
export type { ClientOptions, ClientStats, GetResult, ReadOptions, WriteOptions } from './client/client.js';
export type { RingView } from './client/ring-view.js';
export type { Ring } from './core/ring.js';
export { RingkvError } from './client/errors.js';
export type { ClientErrorCode } from './client/errors.js';
export type { HedgeDelayOptions } from './client/hedge-delay.js';
export type { NodeHealthOptions } from './client/node-health.js';
export type { NatsAuthSettings } from './adapters/nats/connection-options.js';
export { errorCodes } from './protocol/errors.js';
export type { ErrorCode } from './protocol/errors.js';
export { defaultLimits } from './protocol/limits.js';
export type { Limits } from './protocol/limits.js';
export type { ApiStatusOk, DurabilityMode, MemberStatus, ProcessMemory, RequestOptions } from './protocol/messages.js';
export type { MembershipStatus } from './core/cluster-state.js';
