// The node's admin answers (src/runtime/admin-io.ts), alone on the simulator's store and network:
// backups one at a time with clear refusals, the hints summary, and the transfers answer.
import { describe, expect, it } from 'vitest';
import type { ApiBackupOk } from '../../src/protocol/messages.js';
import { createAdminIo } from '../../src/runtime/admin-io.js';
import { DeliveryTally } from '../../src/runtime/hint-summary.js';
import type { Identity } from '../../src/runtime/identity.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { createTransferIo } from '../../src/runtime/transfer-io.js';
import { rolePorts } from '../support/role-ports.js';

async function setup(backup?: (dir: string, identity: Identity) => Promise<ApiBackupOk>) {
  const t = await rolePorts();
  const out = createOutbound({ shared: t.shared, transport: t.transport });
  const deliveries = new DeliveryTally();
  const transfers = createTransferIo({ nodeId: 'n1', store: t.store, log: t.log });
  const io = createAdminIo({ shared: t.shared, store: t.store, clock: t.clock, backup, answerClient: out.answerClient, deliveries, transfers });
  const req = (reqId: string) => ({ replyTo: t.replyTo, to: 'c1', reqId });
  const answers = () => t.client.map((r) => [r.env.reqId, r.env.kind, (r.env.body as { code?: string }).code ?? 'ok']);
  return { t, io, req, answers, deliveries };
}

describe('admin-io', () => {
  it('refuses a backup where there is no store on disk (BAD_REQUEST)', async () => {
    const { t, io, req, answers } = await setup();
    io.takeBackup({ ...req('b1'), dir: 'nightly' });
    await t.run();
    expect(answers()).toEqual([['b1', 'error', 'BAD_REQUEST']]);
  });

  it('takes one backup at a time with the identity of the moment, refuses a second with OVERLOADED, and says why one failed', async () => {
    const calls: [string, string][] = [];
    let finish: (ok: ApiBackupOk) => void = () => {};
    let fail: (err: Error) => void = () => {};
    const backup = (dir: string, identity: Identity) => {
      calls.push([dir, identity.epoch]);
      return new Promise<ApiBackupOk>((resolve, reject) => {
        finish = resolve;
        fail = reject;
      });
    };
    const { t, io, req, answers } = await setup(backup);
    t.shared.identity = { ...t.shared.identity, epoch: 'e9' };
    io.takeBackup({ ...req('b1'), dir: 'nightly' });
    io.takeBackup({ ...req('b2'), dir: 'again' });
    finish({ dir: '/backups/nightly', bytes: 123 } as ApiBackupOk);
    await t.run();
    io.takeBackup({ ...req('b3'), dir: '../escape' });
    fail(Object.assign(new Error('the directory must be inside the backup root'), { code: 'BAD_REQUEST' }));
    await t.run();
    io.takeBackup({ ...req('b4'), dir: 'disk' });
    fail(new Error('EIO'));
    await t.run();
    expect(calls).toEqual([['nightly', 'e9'], ['../escape', 'e9'], ['disk', 'e9']]);
    expect(answers()).toEqual([
      ['b2', 'error', 'OVERLOADED'],
      ['b1', 'api.backup.ok', 'ok'],
      ['b3', 'error', 'BAD_REQUEST'],
      ['b4', 'error', 'INTERNAL'],
    ]);
  });

  it('answers the hints summary and the transfers with what the runtime holds', async () => {
    const { t, io, req, deliveries } = await setup();
    deliveries.add(t.clock.now(), 4, 400);
    io.answerHints(req('h1'));
    io.answerTransfers({ ...req('x1'), transfers: [], inbound: [], completed: [] } as never);
    await t.run();
    expect(t.client.map((r) => r.env.kind)).toEqual(['api.hints.ok', 'api.transfers.ok']);
    expect(t.client[0]!.env.body).toMatchObject({ nodeId: 'n1', targets: [], delivered: 4, deliveredBytes: 400, dropped: 0 });
    expect(t.client[1]!.env.body).toEqual({ nodeId: 'n1', transfers: [], inbound: [], completed: [] });
  });
});
