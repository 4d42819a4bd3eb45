// The node machine bound to the role modules (src/runtime/node-machine.ts): every named action of
// every machine reaches the handler of the role that performs it, with its parameters, and a
// handler that throws is counted and logged, never thrown into the actor.
import { describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import { provideNodeMachine, type NodeRoles } from '../../src/runtime/node-machine.js';
import { createNodeShared } from '../../src/runtime/node-shared.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import { Prng } from '../../src/core/prng.js';
import { initialState } from '../../src/core/cluster-state.js';
import { clusterMetaName } from '../../src/runtime/cluster-state-io.js';
import { identityOf, recorder, recordingLog } from '../support/role-ports.js';

type Impl = { implementations: { actions: Record<string, (args: unknown, params: unknown) => void>; actors: Record<string, Impl> } };

function setup(replicaOverrides: Record<string, unknown> = {}) {
  const clock = new SimClock();
  const store = new SimStore(clock, new Prng(1), { commitDelayMinMs: 1, commitDelayMaxMs: 1 }).open();
  const log = recordingLog();
  const shared = createNodeShared(identityOf('n1'), log);
  const calls: string[] = [];
  const rec =
    (name: string) =>
    (...args: unknown[]) =>
      void calls.push(`${name} ${JSON.stringify(args.filter((a) => !(a && typeof a === 'object' && ('self' in a || 'events' in a))))}`);
  const delivered: unknown[] = [];
  const roles = {
    store,
    deliver: (e: unknown) => void delivered.push(e),
    out: { send: rec('send'), answerClient: rec('answerClient'), forward: rec('forward') },
    coordinator: { toCoordinator: rec('toCoordinator'), perform: rec('perform'), timersPending: () => 0 },
    replica: { enqueue: rec('enqueue'), perform: rec('replica.perform'), readAndAnswer: rec('readAndAnswer'), readAndReply: rec('readAndReply'), ...replicaOverrides },
    handoff: { deliveries: undefined, collectBatch: rec('collectBatch'), clearHints: rec('clearHints'), dropHints: rec('dropHints'), applyBatch: rec('applyBatch') },
    aae: {
      view: undefined,
      antiEntropyActions: { send: rec('ae.send'), serveTree: rec('serveTree'), serveSegment: rec('serveSegment'), serveSync: rec('serveSync'), answerAae: rec('answerAae'), reportExchange: rec('reportExchange'), dropLate: rec('ae.dropLate') },
      exchangeActions: { send: rec('ex.send'), readTree: rec('readTree'), readEntries: rec('readEntries'), mergeAndRead: rec('mergeAndRead') },
    },
    transfer: { findWork: rec('findWork'), collectTransfer: rec('collectTransfer'), dropSent: rec('dropSent'), received: rec('received'), answerBody: rec('answerBody'), leftToHandOver: () => undefined, totals: undefined },
    admin: { takeBackup: rec('takeBackup'), answerHints: rec('answerHints'), answerTransfers: rec('answerTransfers') },
    exit: { exited: new Promise<string>(() => {}), exitAfterHandOver: rec('exitAfterHandOver') },
  } as unknown as NodeRoles;
  const machine = provideNodeMachine(shared, roles) as unknown as Impl;
  return { clock, store, log, shared, calls, delivered, machine };
}

const args = { self: recorder() as AnyActorRef };

describe('node-machine', () => {
  it("binds the node machine's own actions: answers, admin, late answers, the cluster state and the exit", async () => {
    const { clock, store, shared, calls, machine } = setup();
    const a = machine.implementations.actions;
    a.answerClient!(args, { kind: 'api.status.ok' });
    a.readLocal!(args, { reqId: 'l' });
    a.answerHints!(args, { reqId: 'h' });
    a.takeBackup!(args, { reqId: 'b', dir: 'd' });
    a.dropLate!(args, undefined);
    a.exitNode!(args, { reason: 'left', handOver: true });
    const cluster = initialState(['n1'], 8);
    a.saveClusterState!(args, { cluster });
    await clock.runUntil(5);
    expect(calls).toEqual(['answerClient [{"kind":"api.status.ok"}]', 'readAndReply [{"reqId":"l"}]', 'answerHints [{"reqId":"h"}]', 'takeBackup [{"reqId":"b","dir":"d"}]', 'exitAfterHandOver ["left",true]']);
    expect(shared.stats.lateAnswers).toBe(1);
    expect(store.getMeta(clusterMetaName)).toEqual(cluster);
  });

  it('binds each child machine to its role: coordinator, replica (its perform), handoff, transfer, anti-entropy, gossip', async () => {
    const { calls, delivered, machine } = setup();
    const actors = machine.implementations.actors;
    actors.coordinator!.implementations.actions.perform!(args, [{ type: 'late', count: 1 }]);
    actors.replica!.implementations.actions.perform!(args, [{ type: 'send', params: { to: 'n2' } }]);
    const handoff = actors.handoff!.implementations.actions;
    handoff.collectBatch!(args, { itemsMax: 1 });
    handoff.clearHints!(args, { bytes: 1 });
    handoff.dropHints!(args, { targets: ['n9'] });
    handoff.applyBatch!(args, { reqId: 'h' });
    const transfer = actors.transfer!.implementations.actions;
    transfer.findWork!(args, { scan: 1 });
    transfer.applyTransfer!(args, { reqId: 't', items: [] });
    transfer.answerTransfers!(args, { reqId: 'x' });
    transfer.tellNode!(args, { type: 'transfer.idle' });
    const part = actors.transfer!.implementations.actors.partitionTransfer!.implementations.actions;
    part.sendAll!(args, [{ to: 'n2' }, { to: 'n3' }]);
    part.collectTransfer!(args, { id: 'p' });
    part.dropSent!(args, { id: 'p' });
    const ae = actors.antiEntropy!.implementations.actions;
    for (const name of ['send', 'serveTree', 'serveSegment', 'serveSync', 'answerAae', 'reportExchange']) ae[name]!(args, { name });
    ae.dropLate!(args, undefined);
    const ex = actors.antiEntropy!.implementations.actors.exchange!.implementations.actions;
    for (const name of ['send', 'readTree', 'readEntries', 'mergeAndRead']) ex[name]!(args, { name });
    const gossip = actors.gossip!.implementations.actions;
    gossip.send!(args, { to: 'n2' });
    gossip.sendAll!(args, [{ to: 'n3' }]);
    gossip.answerClient!(args, { reqId: 'g' });
    gossip.tellNode!(args, { type: 'member.down', nodeId: 'n3' });
    expect(calls).toEqual([
      'perform [[{"type":"late","count":1}]]',
      'replica.perform [[{"type":"send","params":{"to":"n2"}}]]',
      'collectBatch [{"itemsMax":1}]',
      'clearHints [{"bytes":1}]',
      'dropHints [{"targets":["n9"]}]',
      'applyBatch [{"reqId":"h"}]',
      'findWork [{"scan":1}]',
      'applyBatch [{"reqId":"t","items":[]},"handoff.transfer.ok",null]',
      'answerTransfers [{"reqId":"x"}]',
      // sendAll is ps.forEach(send): send takes the first argument.
      'send [{"to":"n2"},0,[{"to":"n2"},{"to":"n3"}]]',
      'send [{"to":"n3"},1,[{"to":"n2"},{"to":"n3"}]]',
      'collectTransfer [{"id":"p"}]',
      'dropSent [{"id":"p"}]',
      'ae.send [{"name":"send"}]',
      'serveTree [{"name":"serveTree"}]',
      'serveSegment [{"name":"serveSegment"}]',
      'serveSync [{"name":"serveSync"}]',
      'answerAae [{"name":"answerAae"}]',
      'reportExchange [{"name":"reportExchange"}]',
      'ae.dropLate []',
      'ex.send [{"name":"send"}]',
      'readTree [{"name":"readTree"}]',
      'readEntries [{"name":"readEntries"}]',
      'mergeAndRead [{"name":"mergeAndRead"}]',
      'send [{"to":"n2"}]',
      'send [{"to":"n3"},0,[{"to":"n3"}]]',
      'answerClient [{"reqId":"g"}]',
    ]);
    // Gossip's news goes to the node at once; transfer's idle after the transfer machine's transition.
    expect(delivered).toEqual([{ type: 'member.down', nodeId: 'n3' }]);
    await Promise.resolve();
    expect(delivered).toEqual([{ type: 'member.down', nodeId: 'n3' }, { type: 'transfer.idle' }]);
  });

  it('counts and logs a handler that throws, by the action name, and never throws into the actor', () => {
    const { shared, log, calls, machine } = setup({
      readAndReply: () => {
        throw new Error('boom');
      },
    });
    const a = machine.implementations.actions;
    expect(() => a.readLocal!(args, { reqId: 'l' })).not.toThrow();
    a.answerHints!(args, { reqId: 'h' });
    expect(shared.stats.actionFailures).toBe(1);
    expect(log.lines.map((l) => [l.msg, l.fields?.action])).toEqual([['action failed', 'readLocal']]);
    expect(calls).toEqual(['answerHints [{"reqId":"h"}]']);
  });
});
