/**
 * `import ... from 'ringkv/admin'`: cluster administration (staged membership changes: join, leave,
 * force-remove, plan, commit, clear) and the types it answers with. Kept apart from 'ringkv' so an
 * application that only reads and writes does not reach for it.
 */
export { ClusterAdmin } from './client/admin.js';
export type { AdminOptions } from './client/admin.js';
export { RingkvError } from './client/errors.js';
export type { ClientErrorCode } from './client/errors.js';
export { clusterOps } from './protocol/messages.js';
export type { ApiClusterOk, ApiStatusOk, ClusterOp, MemberStatus } from './protocol/messages.js';
export type { MembershipStatus, PartitionMove, Plan, Share, StagedChange, StagedOp } from './core/cluster-state.js';
export type { NatsAuthSettings } from './adapters/nats/connection-options.js';
