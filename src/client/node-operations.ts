/**
 * The admin operations one node answers, on the admin subjects (src/protocol/subjects.ts): a
 * staged cluster change or plan, one node's pending hints, its transfers, its anti-entropy counters
 * (or a pause or resume), a backup of its store. Functions of a RequestSession, so that ClusterAdmin
 * and the dashboard (which keeps its own session, without a ring) send them the same way.
 */
import type { AaeOp, ApiAaeOk } from '../protocol/aae-messages.js';
import type { ApiBackupOk, ApiClusterOk, ApiHintsOk, ApiTransfersOk, ClusterOp } from '../protocol/messages.js';
import type { RequestSession } from './request-session.js';

/** Which node an operation asks, and how long it waits. */
export interface NodeOperationOptions {
  via: string;
  timeoutMs?: number;
}

/** Changes that are not safe to send twice: they go to one node that has just answered. */
const changingOps = new Set<ClusterOp>(['join', 'leave', 'force-remove', 'commit', 'clear']);

/**
 * A change (join, leave, force-remove, commit, clear) goes to one node and is never hedged: a
 * commit sent twice could make two rings. Without `via` it goes to the node that first answers a
 * hedged status, so a paused node is not chosen. A plan is a read: hedged like status.
 */
export async function clusterOperation(session: RequestSession, op: ClusterOp, node: string | undefined, via: string | undefined): Promise<ApiClusterOk> {
  const body = node === undefined ? { op } : { op, node };
  if (via === undefined && changingOps.has(op)) via = (await session.status()).nodeId;
  return (await session.operation('cluster', body, { via })) as ApiClusterOk;
}

/** One node's anti-entropy counters per partition; pause or resume its exchanges. */
export async function aaeOperation(session: RequestSession, op: AaeOp, opts: NodeOperationOptions): Promise<ApiAaeOk> {
  return (await session.operation('aae', { op }, opts)) as ApiAaeOk;
}

/** A consistent, compacted copy of one node's store into `dir` inside its backup directory. */
export async function backupOperation(session: RequestSession, dir: string, opts: NodeOperationOptions): Promise<ApiBackupOk> {
  return (await session.operation('backup', { dir }, opts)) as ApiBackupOk;
}

/** One node's pending hints by target and its delivery rate. */
export async function hintsOperation(session: RequestSession, opts: NodeOperationOptions): Promise<ApiHintsOk> {
  return (await session.operation('hints', {}, opts)) as ApiHintsOk;
}

/** The partitions one node is handing over (ownership transfer), with progress. */
export async function transfersOperation(session: RequestSession, opts: NodeOperationOptions): Promise<ApiTransfersOk> {
  return (await session.operation('transfers', {}, opts)) as ApiTransfersOk;
}
