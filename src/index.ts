/**
 * `import ... from 'ringkv'`: the client library's public surface and the types its methods take
 * and return. Everything else in the package (actors, runtime, adapters, the CLI) is internal and
 * not exported; the admin API is `ringkv/admin`.
 */
export { RingkvClient, clientTimeoutMsDefault, ringRefreshMsDefault } from './client/client.js';
export type { ClientOptions, ClientStats, GetResult, ReadOptions, WriteOptions } from './client/client.js';
export { RingkvError } from './client/errors.js';
export type { ClientErrorCode } from './client/errors.js';
export type { HedgeDelayOptions } from './client/hedge-delay.js';
export type { NodeHealthOptions } from './client/node-health.js';
export type { NatsAuthSettings } from './adapters/nats/connection-options.js';
export { errorCodes } from './protocol/errors.js';
export type { ErrorCode } from './protocol/errors.js';
export { defaultLimits } from './protocol/limits.js';
export type { Limits } from './protocol/limits.js';
export type {
  ApiHintsOk,
  ApiStatusOk,
  ApiTransfersOk,
  DurabilityMode,
  HintTargetSummary,
  MemberStatus,
  ProcessMemory,
  RequestOptions,
  TransferRow,
} from './protocol/messages.js';
export type { MembershipStatus } from './core/cluster-state.js';
export type { AaeOp, AaePartitionStats, ApiAaeOk } from './protocol/aae-messages.js';
