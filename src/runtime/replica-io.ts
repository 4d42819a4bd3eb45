/**
 * The replica role's I/O (actors/replica.machine.ts decides; this performs): the writes coordinators
 * ask of this node wait here for the end of the turn's callbacks and go to the replica actor as one
 * replica.batch; the actor's commit runs them in the store's transaction of the turn (group commit,
 * lmdb-store.ts), and their outcomes return as one replica.committed. Reads have nothing to decide:
 * replica.get and a client's local read are answered from the store at once, without a transition.
 *
 * The local coordinator's own write (replica.coordinate from this node) makes its dot synchronously
 * inside the store's read-modify-write: the new state is told to the coordinator at once
 * (replica.coordinate.made), so it sends it to the other replicas while this node's commit runs
 * (DESIGN.md §3), instead of one group commit later.
 */
import type { AnyActorRef } from 'xstate';
import type { CommitResult, CommitWrite, ReadAndAnswerParams, ReadAndReplyParams, ReplicaOutput, ReplicaWriteItem, SendParams } from '../../actors/replica.machine.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { applyWrite, screenStored, type WriteOutcome } from '../core/replica-write.js';
import { type DvvSet, equal } from '../core/dvv.js';
import { type Mutation, updateMany, type WriteRequest } from '../ports/store.js';
import { encodedState } from './encoded-states.js';
import { decode } from '../protocol/codec.js';
import { encodeStateAnswer, protocolVersion } from '../protocol/envelope.js';
import type { Limits } from '../protocol/limits.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import type { Transport } from '../ports/transport.js';
import type { RequestObserver } from './node-api.js';

/** Items in one replica.batch; a turn that brings more sends several. */
export const replicaBatchItemsMax = 4096;

export interface ReplicaIoDeps {
  nodeId: string;
  store: Store;
  transport: Transport;
  log: Log;
  limits: Limits;
  /** The Clock port's time (hints are stamped with it; the simulator's is its own). */
  now(): number;
  /** The clock id a coordinated write makes its dot with now (it changes with the epoch). */
  dotId(): string;
  /** The node's replica actor (undefined before it starts and after it stops). */
  actor(): AnyActorRef | undefined;
  /** Sends one envelope to a node (this one included: its coordinator takes replica answers). */
  send(p: SendParams): void;
  answerClient(p: AnswerParams): void;
  /** A coordinated write's dot left with a state this node then failed to keep: a new epoch at once. */
  renewEpoch(why: string): void;
  requests?: RequestObserver;
  /** The inspection tap: a turn's writes are shown to those following them (`ringkv trace`). */
  tap: { readonly watching: boolean; replicaItems(items: readonly ReplicaWriteItem[]): void; replicaAnswers(sends: readonly SendParams[]): void };
  stats: { actionFailures: number; corruptReadsRefused: number };
}

export interface ReplicaIo {
  /** A write for this turn's replica.batch. */
  enqueue(item: ReplicaWriteItem): void;
  /** Performs what the replica actor decided. */
  perform(outputs: readonly ReplicaOutput[]): void;
  /** A coordinator's replica.get: the local state to the asking node. */
  readAndAnswer(p: ReadAndAnswerParams): void;
  /** A client's api.local.get: the stored bytes straight back to the client. */
  readAndReply(p: ReadAndReplyParams): void;
}

export function createReplicaIo(deps: ReplicaIoDeps): ReplicaIo {
  const { nodeId, store, transport, log, limits, stats } = deps;

  // The writes of this turn: they go to the actor as one replica.batch from a microtask, after the
  // callbacks that delivered them and before the next turn's I/O (the simulator drains microtasks
  // between timers, as Node does between callbacks).
  let queue: ReplicaWriteItem[] = [];
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    const items = queue;
    queue = [];
    const actor = deps.actor();
    if (!actor) return;
    if (deps.tap.watching) deps.tap.replicaItems(items);
    for (let i = 0; i < items.length; i += replicaBatchItemsMax) {
      actor.send({ type: 'replica.batch', items: items.length <= replicaBatchItemsMax ? items : items.slice(i, i + replicaBatchItemsMax) });
    }
  };
  const enqueue = (item: ReplicaWriteItem) => {
    queue.push(item);
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flush);
  };

  /**
   * Runs one turn's writes in the store (one updateMany: one wait for the group commit, no promise or
   * closure per write); their outcomes come back to the actor as one replica.committed.
   */
  const commit = (writes: CommitWrite[]) => {
    const now = deps.now();
    const requests: WriteRequest[] = writes.map((w) => (w.hints.length > 0 ? { partition: w.p, key: w.key, hints: { targets: w.hints, now } } : { partition: w.p, key: w.key }));
    // The dot is made with the clock id current when the write is applied (epoch-io.ts renews it
    // before any drop of its dots); the store runs `mutate` at the call, so the states coordinated writes made
    // are known when updateMany returns, before their commit.
    const dotId = deps.dotId();
    const made: (DvvSet | undefined)[] = new Array(writes.length);
    const mutate = (i: number, current: DvvSet | undefined): Mutation<WriteOutcome> => {
      const w = writes[i]!;
      const m: Mutation<WriteOutcome> = applyWrite(current, w.write, dotId);
      if (m.next === null) return m;
      if (w.write.kind === 'coordinate') {
        // Encoded once: these bytes are stored, and sent to every other replica (encoded-states.ts).
        made[i] = m.next;
        m.nextEncoded = encodedState(m.next);
      } else if (w.write.encoded !== undefined && equal(m.next, w.write.state)) {
        // The merge is the state as it arrived: the replica keeps the bytes it was sent.
        m.nextEncoded = w.write.encoded;
      }
      return m;
    };
    updateMany(store, requests, mutate).then(
      (outcomes) => {
        const results: CommitResult[] = new Array(writes.length);
        for (let i = 0; i < writes.length; i++) {
          const w = writes[i]!;
          const o = outcomes[i]!;
          if (o instanceof Error) {
            log.error('replica write failed', { partition: w.p, err: o });
            results[i] = { write: w, failed: o.message };
            continue;
          }
          if (o.ok && made[i] !== undefined && o.siblings >= limits.siblingsWarn) warnSiblings(w.p, o.siblings);
          results[i] = { write: w, outcome: o };
        }
        deps.actor()?.send({ type: 'replica.committed', results });
      },
      (err: unknown) => {
        log.error('store update failed', { partitions: [...new Set(writes.map((w) => w.p))], err });
        // A dot already went to the other replicas with a state this node failed to keep: a later
        // write of the key here would make that dot again for another value, which they would drop
        // as already seen. A new epoch (a new clock id) makes every later dot new.
        if (made.some((m) => m !== undefined)) deps.renewEpoch('a coordinated write whose dot was sent could not commit');
        const failed = String(err);
        deps.actor()?.send({ type: 'replica.committed', results: writes.map((write) => ({ write, failed })) });
      },
    );
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      if (made[i] !== undefined && w.from === nodeId) deps.send({ to: nodeId, kind: 'replica.coordinate.made', reqId: w.reqId, body: { state: made[i] } });
    }
  };

  // A client that writes blind keeps adding siblings: the node's log says it at most once per 10 s
  // (log-limiter.ts), so a client cannot fill the log with it.
  const warnSiblings = (partition: number, siblings: number) => log.warn('key has many siblings: clients should merge them', { partition, siblings });

  const perform = (outputs: readonly ReplicaOutput[]) => {
    if (deps.tap.watching) deps.tap.replicaAnswers(outputs.flatMap((o) => (o.type === 'send' ? [o.params] : [])));
    for (const o of outputs) {
      try {
        if (o.type === 'commit') commit(o.writes);
        else deps.send(o.params);
      } catch (err) {
        stats.actionFailures++;
        log.error('action failed', { action: `replica ${o.type}`, err });
      }
    }
  };

  /**
   * A key whose copy here failed its checksum reads as absent, but "not found" would be a lie: the
   * other replicas hold it. A peer's coordinator is not answered (it takes the other targets); a
   * client's local read is refused with an error, and the client asks the next replica.
   */
  const isCorruptHere = (partition: number, key: Uint8Array, found: unknown): boolean => {
    if (found !== undefined || store.isCorrupt?.(partition, key) !== true) return false;
    stats.corruptReadsRefused++;
    return true;
  };

  const readAndAnswer = (p: ReadAndAnswerParams) => {
    const encoded = store.getEncoded(p.p, p.key);
    if (isCorruptHere(p.p, p.key, encoded)) return;
    if (p.from === nodeId) {
      // This node's own coordinator takes the state as an object (no encoding on the way).
      // Screened as a peer's answer would be at the router (src/core/version-check.ts).
      const state = encoded === undefined ? undefined : (decode(encoded) as DvvSet);
      deps.send({ to: p.from, kind: 'replica.get.ok', reqId: p.reqId, body: { state: screenStored(state) } });
      return;
    }
    // A peer's: the stored bytes go into the answer as they are (no decode and re-encode).
    const head = { v: protocolVersion, kind: 'replica.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.send(p.from, 'replica', encodeStateAnswer(head, encoded));
  };

  const readAndReply = (p: ReadAndReplyParams) => {
    const encoded = store.getEncoded(p.p, p.key);
    if (isCorruptHere(p.p, p.key, encoded)) {
      deps.answerClient({
        replyTo: p.replyTo,
        to: p.from,
        reqId: p.reqId,
        kind: 'error',
        body: { code: 'INTERNAL', message: `node ${nodeId}'s copy of this key failed its checksum and waits for anti-entropy to fetch it again; ask another replica` },
      });
      return;
    }
    deps.requests?.answered(p.from, p.reqId, 'api.local.get.ok', undefined);
    const head = { v: protocolVersion, kind: 'api.local.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.reply(p.replyTo, encodeStateAnswer(head, encoded));
  };

  return { enqueue, perform, readAndAnswer, readAndReply };
}
