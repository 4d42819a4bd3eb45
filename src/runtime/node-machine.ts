/**
 * The node machine bound to the role modules (DESIGN.md §4): each machine's named actions are the
 * handlers of the role that performs them, wrapped once here so that a failure is logged and
 * counted and never crashes an actor (safeAction). Nothing is decided here and nothing is made per
 * call: this is the table from action names to handlers.
 */
import type { AnyActorRef } from 'xstate';
import type { NodeEvent } from '../../actors/node.events.js';
import { nodeMachine } from '../../actors/node.machine.js';
import { type AnswerParams, type CoordinatorOutput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import { gossipMachine, type TellNodeParams } from '../../actors/gossip.machine.js';
import { type CollectParams, type DropHintsParams, handoffMachine } from '../../actors/handoff.machine.js';
import type { HandoffItem } from '../../actors/handoff.events.js';
import { antiEntropyMachine } from '../../actors/anti-entropy.machine.js';
import { type AnswerTransfersParams, transferMachine } from '../../actors/transfer.machine.js';
import { type CollectTransferParams, type DropSentParams, partitionTransferMachine } from '../../actors/partition-transfer.machine.js';
import { exchangeMachine } from '../../actors/exchange.machine.js';
import { type ReadAndReplyParams, type ReplicaOutput, type SendParams, replicaMachine } from '../../actors/replica.machine.js';
import type { ClusterState } from '../core/cluster-state.js';
import type { Ring } from '../core/ring.js';
import type { Hint, Store } from '../ports/store.js';
import type { AdminIo } from './admin-io.js';
import type { AaeIo } from './anti-entropy-io.js';
import { saveClusterState } from './cluster-state-io.js';
import type { CoordinatorIo } from './coordinator-io.js';
import type { ExitIo } from './exit-io.js';
import type { HandoffIo } from './handoff-io.js';
import { type NodeShared, safeAction } from './node-shared.js';
import type { Outbound } from './outbound-io.js';
import type { ReplicaIo } from './replica-io.js';
import type { TransferIo } from './transfer-io.js';

export interface NodeRoles {
  store: Store;
  /** Hands an event to the node's actors (inbound-io.ts). */
  deliver: (event: NodeEvent) => void;
  out: Outbound;
  coordinator: CoordinatorIo;
  replica: ReplicaIo;
  handoff: HandoffIo;
  aae: AaeIo;
  transfer: TransferIo;
  admin: AdminIo;
  exit: ExitIo;
}

export function provideNodeMachine(shared: NodeShared, roles: NodeRoles) {
  const { store, deliver, out, coordinator, replica, handoff, admin, transfer, exit } = roles;
  const { send, answerClient } = out;
  const { log, stats } = shared;
  const safe = <A extends unknown[]>(name: string, fn: (...args: A) => void) => safeAction(shared, name, fn);
  const ae = roles.aae.antiEntropyActions;
  const ex = roles.aae.exchangeActions;
  // The request path's handlers, taken once, so that a call is one closure call as before.
  const { applyBatch } = handoff;
  const { perform } = coordinator;
  const { readAndReply } = replica;
  const replicaPerform = replica.perform;

  return nodeMachine.provide({
    actions: {
      answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
      readLocal: safe('readLocal', (_: unknown, p: ReadAndReplyParams) => readAndReply(p)),
      answerHints: safe('answerHints', (_: unknown, p: { replyTo: string; to: string; reqId: string }) => admin.answerHints(p)),
      takeBackup: safe('takeBackup', (_: unknown, p: { replyTo: string; to: string; reqId: string; dir: string }) => admin.takeBackup(p)),
      dropLate: () => void stats.lateAnswers++,
      saveClusterState: safe('saveClusterState', (_: unknown, p: { cluster: ClusterState }) => saveClusterState(store, log, p.cluster)),
      exitNode: safe('exitNode', (_: unknown, p: { reason: string; handOver: boolean }) => {
        log.info('node leaving the cluster', { reason: p.reason });
        exit.exitAfterHandOver(p.reason, p.handOver);
      }),
    },
    actors: {
      coordinator: coordinatorMachine.provide({
        actions: { perform: (_: unknown, outputs: CoordinatorOutput[]) => perform(outputs) },
      }),
      gossip: gossipMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
          answerClient: safe('answerClient', (_: unknown, p: AnswerParams) => answerClient(p)),
          tellNode: safe('tellNode', (_: unknown, e: TellNodeParams) => {
            if (e.type === 'member.up' || e.type === 'member.down') log.info(e.type === 'member.down' ? 'member judged down' : 'member up', { member: e.nodeId });
            else if (e.type === 'ring.changed') log.info('ring changed', { owners: new Set(e.ring.owners).size });
            deliver(e as NodeEvent);
          }),
        },
      }),
      handoff: handoffMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          collectBatch: safe('collectBatch', handoff.collectBatch as (args: unknown, p: CollectParams) => void),
          clearHints: safe('clearHints', handoff.clearHints as (args: unknown, p: { hints: Hint[]; bytes: number }) => void),
          dropHints: safe('dropHints', handoff.dropHints as (args: unknown, p: DropHintsParams) => void),
          applyBatch: safe('applyBatch', (_: unknown, p: { from: string; reqId: string; items: HandoffItem[] }) => applyBatch(p)),
        },
      }),
      antiEntropy: antiEntropyMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => ae.send(p)),
          serveTree: safe('serveTree', (_: unknown, p: Parameters<typeof ae.serveTree>[0]) => ae.serveTree(p)),
          serveSegment: safe('serveSegment', (_: unknown, p: Parameters<typeof ae.serveSegment>[0]) => ae.serveSegment(p)),
          serveSync: safe('serveSync', (_: unknown, p: Parameters<typeof ae.serveSync>[0]) => ae.serveSync(p)),
          answerAae: safe('answerAae', (_: unknown, p: Parameters<typeof ae.answerAae>[0]) => ae.answerAae(p)),
          reportExchange: safe('reportExchange', (_: unknown, p: Parameters<typeof ae.reportExchange>[0]) => ae.reportExchange(p)),
          dropLate: () => ae.dropLate(),
        },
        actors: {
          exchange: exchangeMachine.provide({
            actions: {
              send: safe('send', (_: unknown, p: SendParams) => ex.send(p)),
              readTree: safe('readTree', (_: unknown, p: Parameters<typeof ex.readTree>[0]) => ex.readTree(p)),
              readEntries: safe('readEntries', (_: unknown, p: Parameters<typeof ex.readEntries>[0]) => ex.readEntries(p)),
              mergeAndRead: safe('mergeAndRead', (_: unknown, p: Parameters<typeof ex.mergeAndRead>[0]) => ex.mergeAndRead(p)),
            },
          }),
        },
      }),
      transfer: transferMachine.provide({
        actions: {
          send: safe('send', (_: unknown, p: SendParams) => send(p)),
          findWork: safe('findWork', ({ self }: { self: AnyActorRef }, p: { scan: number; partitions: number[] }) => transfer.findWork(self, p)) as never,
          applyTransfer: safe('applyTransfer', (_: unknown, p: { from: string; reqId: string; items: HandoffItem[] }) =>
            applyBatch(p, 'handoff.transfer.ok', () => transfer.received(p.items)),
          ),
          answerTransfers: safe('answerTransfers', (_: unknown, p: AnswerTransfersParams) => admin.answerTransfers(p)),
          tellNode: safe('tellNode', (_: unknown, e: { type: 'transfer.idle'; ring: Ring }) => {
            log.info('ownership transfer idle: nothing left to hand over for the current ring');
            // After the transfer machine's transition: the node and gossip take it as a new event.
            queueMicrotask(() => deliver(e));
          }),
        },
        actors: {
          partitionTransfer: partitionTransferMachine.provide({
            actions: {
              sendAll: safe('sendAll', (_: unknown, ps: SendParams[]) => ps.forEach(send)),
              collectTransfer: safe('collectTransfer', ({ self }: { self: AnyActorRef }, p: CollectTransferParams) => transfer.collectTransfer(self, p)) as never,
              dropSent: safe('dropSent', ({ self }: { self: AnyActorRef }, p: DropSentParams) => transfer.dropSent(self, p)) as never,
            },
          }),
        },
      }),
      replica: replicaMachine.provide({
        actions: { perform: (_: unknown, outputs: ReplicaOutput[]) => replicaPerform(outputs) },
      }),
    },
  });
}
