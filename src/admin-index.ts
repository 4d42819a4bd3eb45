/**
 * `import ... from 'ringkv/admin'`: cluster administration and the types it answers with. Staged
 * membership changes (join, leave, force-remove, plan, commit, clear), and what one node is doing:
 * its hints, its transfers, its anti-entropy (status, pause, resume), a backup of its store. Kept
 * apart from 'ringkv' so an application that only reads and writes does not reach for it.
 */
export { ClusterAdmin } from './client/admin.js';
export type { AdminOptions, NodeOperationOptions } from './client/admin.js';
export { RingkvError } from './client/errors.js';
export type { ClientErrorCode } from './client/errors.js';
export { clusterOps } from './protocol/messages.js';
export type {
  ApiBackupOk,
  ApiClusterOk,
  ApiHintsOk,
  ApiStatusOk,
  ApiTransfersOk,
  ClusterOp,
  DurabilityMode,
  HintTargetSummary,
  MemberStatus,
  ProcessMemory,
  TransferRow,
} from './protocol/messages.js';
export type { AaeOp, AaePartitionStats, ApiAaeOk } from './protocol/aae-messages.js';
export type { MembershipStatus, PartitionMove, Plan, Share, StagedChange, StagedOp } from './core/cluster-state.js';
export type { NatsAuthSettings } from './adapters/nats/connection-options.js';
