/**
 * The replica's I/O (actors/replica.machine.ts, DESIGN.md §3): the store work behind its named
 * actions. A write is applied in the store's read-modify-write and acknowledged after its group
 * commit; a read answers with the stored bytes as they are (no decode and re-encode) unless the
 * asker is this node's own coordinator. Results go back to the replica actor as events.
 */
import type { AnyActorRef } from 'xstate';
import type { CommitWriteParams, ReadAndAnswerParams, ReadAndReplyParams } from '../../actors/replica.machine.js';
import type { DvvSet } from '../core/dvv.js';
import { applyWrite, screenStored } from '../core/replica-write.js';
import { decode } from '../protocol/codec.js';
import { encodeStateAnswer, protocolVersion } from '../protocol/envelope.js';
import type { Limits } from '../protocol/limits.js';
import type { Clock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import type { Transport } from '../ports/transport.js';
import type { RequestObserver } from './node-api.js';
import type { NodeShared } from './node-shared.js';
import type { Outbound } from './outbound-io.js';

export interface ReplicaIo {
  /** The machine's commitWrite action (xstate's action arguments first: the answer goes to `self`). */
  commitWrite(args: { self: AnyActorRef }, p: CommitWriteParams): void;
  /** A peer's (or this node's coordinator's) read: answered with replica.get.ok. */
  readAndAnswer(p: ReadAndAnswerParams): void;
  /** A client-driven read (api.local.get): answered to the client. */
  readAndReply(p: ReadAndReplyParams): void;
  /** Whether a read that found nothing found a corrupt copy here (counted: the read is refused). */
  isCorruptHere(partition: number, key: Uint8Array, found: unknown): boolean;
}

export interface ReplicaIoDeps {
  shared: NodeShared;
  store: Store;
  clock: Clock;
  transport: Transport;
  limits: Limits;
  requests?: RequestObserver | undefined;
  out: Pick<Outbound, 'send' | 'answerClient'>;
  /** The epoch role's renewal (epoch-io.ts): after a failed commit of a write whose dot was sent. */
  renewEpochNow: (why: string) => void;
}

export function createReplicaIo(deps: ReplicaIoDeps): ReplicaIo {
  const { shared, store, clock, transport, limits, requests, renewEpochNow } = deps;
  const { send, answerClient } = deps.out;
  const { nodeId, log, stats } = shared;

  const commitWrite = ({ self }: { self: AnyActorRef }, p: CommitWriteParams) => {
    const hints = p.hints.length > 0 ? { targets: p.hints, now: clock.now() } : undefined;
    // The dot is made with the clock id current when the write is applied (epoch-io.ts renews it).
    // The store runs `mutate` at the call, so the new state is known now: this node's coordinator is
    // told at once (replica.coordinate.made) and sends it to the other replicas while this commit
    // runs (DESIGN.md §3), instead of one group commit later.
    let made: DvvSet | undefined;
    const write = (current: DvvSet | undefined) => {
      const m = applyWrite(current, p.write, shared.identity.dotId);
      if (m.result.ok && m.next !== null && p.write.kind === 'coordinate') made = m.next;
      return m;
    };
    store.update(p.p, p.key, write, hints).then(
      (outcome) => {
        if (outcome.ok && p.write.kind === 'coordinate' && outcome.siblings >= limits.siblingsWarn) {
          log.warn('key has many siblings: clients should merge them', { partition: p.p, siblings: outcome.siblings });
        }
        self.send({ type: 'store.committed', from: p.from, reqId: p.reqId, answer: p.answer, outcome });
      },
      (err: unknown) => {
        log.error('store update failed', { partition: p.p, err });
        // The dot already went to the other replicas with a state this node failed to keep: a later
        // write of the key here would make that dot again for another value, which they would drop
        // as already seen. A new epoch (a new clock id) makes every later dot new.
        if (made !== undefined) renewEpochNow('a coordinated write whose dot was sent could not commit');
        self.send({ type: 'store.failed', from: p.from, reqId: p.reqId, message: String(err) });
      },
    );
    if (made !== undefined && p.from === nodeId) send({ to: nodeId, kind: 'replica.coordinate.made', reqId: p.reqId, body: { state: made } });
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
      send({ to: p.from, kind: 'replica.get.ok', reqId: p.reqId, body: { state: screenStored(state) } });
      return;
    }
    // A peer's: the stored bytes go into the answer as they are (no decode and re-encode).
    const head = { v: protocolVersion, kind: 'replica.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.send(p.from, 'replica', encodeStateAnswer(head, encoded));
  };

  // A client-driven read (api.local.get): the stored bytes straight back to the client, spliced
  // into the answer as they are (no decode and re-encode), like a replica.get.ok to a peer.
  const readAndReply = (p: ReadAndReplyParams) => {
    const encoded = store.getEncoded(p.p, p.key);
    if (isCorruptHere(p.p, p.key, encoded)) {
      answerClient({
        replyTo: p.replyTo,
        to: p.from,
        reqId: p.reqId,
        kind: 'error',
        body: { code: 'INTERNAL', message: `node ${nodeId}'s copy of this key failed its checksum and waits for anti-entropy to fetch it again; ask another replica` },
      });
      return;
    }
    requests?.answered(p.from, p.reqId, 'api.local.get.ok', undefined);
    const head = { v: protocolVersion, kind: 'api.local.get.ok', from: nodeId, to: p.from, reqId: p.reqId };
    transport.reply(p.replyTo, encodeStateAnswer(head, encoded));
  };

  return { commitWrite, readAndAnswer, readAndReply, isCorruptHere };
}
