/**
 * The node's admin answers that need the runtime (DESIGN.md §4): a backup of the store
 * (`ringkv backup`), the pending hints (`ringkv hints`) and the ownership transfers
 * (`ringkv transfers`). The node machine decides to answer; this reads what only the runtime has.
 */
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import type { AnswerTransfersParams } from '../../actors/transfer.machine.js';
import type { Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import { type DeliveryTally, hintSummary } from './hint-summary.js';
import type { NodePorts } from './node-api.js';
import type { NodeShared } from './node-shared.js';
import type { TransferIo } from './transfer-io.js';

/** Backups this node takes at once: a second request while one runs is refused with OVERLOADED. */
export const backupsAtOnceMax = 1;

export interface AdminRequest {
  replyTo: string;
  to: string;
  reqId: string;
}

export interface AdminIo {
  takeBackup(p: AdminRequest & { dir: string }): void;
  answerHints(p: AdminRequest): void;
  answerTransfers(p: AnswerTransfersParams): void;
}

export interface AdminIoDeps {
  shared: NodeShared;
  store: Store;
  clock: Clock;
  /** Copies the store into a directory; absent where nothing is on disk (simulation). */
  backup?: NodePorts['backup'];
  answerClient: (p: AnswerParams) => void;
  deliveries: DeliveryTally;
  transfers: Pick<TransferIo, 'answerBody'>;
}

export function createAdminIo(deps: AdminIoDeps): AdminIo {
  const { shared, store, clock, answerClient, deliveries, transfers } = deps;
  const { nodeId, log } = shared;
  let backupsRunning = 0;

  const takeBackup = (p: AdminRequest & { dir: string }) => {
    const answer = (kind: string, body: unknown) => answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind, body });
    if (!deps.backup) return answer('error', { code: 'BAD_REQUEST', message: `node ${nodeId} has no store on disk to back up` });
    if (backupsRunning >= backupsAtOnceMax) return answer('error', { code: 'OVERLOADED', message: `node ${nodeId} is already taking a backup; try again when it is done` });
    backupsRunning++;
    const started = clock.now();
    log.info('backup started', { dir: p.dir });
    deps.backup(p.dir, shared.identity).then(
      (ok) => {
        backupsRunning--;
        log.info('backup written', { dir: ok.dir, bytes: ok.bytes, tookMs: clock.now() - started });
        answer('api.backup.ok', ok);
      },
      (err: unknown) => {
        backupsRunning--;
        const bad = (err as { code?: string }).code === 'BAD_REQUEST';
        log.warn('backup failed', { dir: p.dir, err: String(err) });
        answer('error', { code: bad ? 'BAD_REQUEST' : 'INTERNAL', message: (err as Error).message ?? String(err) });
      },
    );
  };

  const answerHints = (p: AdminRequest) => {
    answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind: 'api.hints.ok', body: hintSummary(nodeId, store, clock.now(), deliveries) });
  };

  const answerTransfers = (p: AnswerTransfersParams) => {
    answerClient({ replyTo: p.replyTo, to: p.to, reqId: p.reqId, kind: 'api.transfers.ok', body: transfers.answerBody(p, clock.now()) });
  };

  return { takeBackup, answerHints, answerTransfers };
}
