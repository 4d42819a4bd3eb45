/**
 * The I/O behind the anti-entropy machines (actors/anti-entropy.machine.ts, exchange.machine.ts):
 * their named actions, performed against the Store and the Transport, and the per-partition
 * counters that `ringkv aae` and the metrics show. The machines decide; this reads trees and keys,
 * merges objects (applyWrite {kind: 'sync'}: a DVV merge, never an overwrite, in the store's
 * read-modify-write), answers peers and sends envelopes on the aae role.
 *
 * Results of local work go back to the node actor as aae.local.* events with the exchange's reqId,
 * always asynchronously, so an actor never receives an event while it is still taking a transition.
 * Every answer is bounded: a message carries whole segments' keys, or objects, up to
 * aaeMessageBytesMax (at least one), and says when something did not fit.
 */
import type { AaeLocalEvent } from '../../actors/anti-entropy.events.js';
import type { AnswerAaeParams, ServeParams } from '../../actors/anti-entropy.machine.js';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import type { ExchangeOutput, MergeAndReadParams, ReadEntriesParams, ReadTreeParams } from '../../actors/exchange.machine.js';
import type { SendParams } from '../../actors/replica.machine.js';
import type { DvvSet } from '../core/dvv.js';
import { type TreeShape, answerTree, bytesToHashes, hashesToBytes, objectHash, segmentOf, treeLevels } from '../core/merkle.js';
import { applySync } from '../core/replica-write.js';
import {
  type AaeObject,
  type AaePartitionStats,
  type AaePutBody,
  type AaeSegmentBody,
  type AaeTreeBody,
  type ApiAaeOk,
  aaeItemsMax,
  aaeMessageBytesMax,
  stateBytes,
} from '../protocol/aae-messages.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import type { Transport } from '../ports/transport.js';

export interface AaeSettings {
  intervalMs: number;
  bytesPerSec: number;
  exchangesMax: number;
}

export interface AaeIoDeps {
  nodeId: string;
  store: Store;
  shape: TreeShape;
  transport: Transport;
  clock: Clock;
  log: Log;
  settings: AaeSettings;
  /** The partitions this node replicates: the rows of `ringkv aae`. */
  partitions: () => readonly number[];
  /** Hands an event to the node actor. */
  deliver: (event: AaeLocalEvent) => void;
  /** Answers a client request (api.aae). */
  answerClient: (p: AnswerParams) => void;
  /** The anti-entropy actor's state now (for status readers other than api.aae). */
  machineState: () => { paused: boolean; running: number; queued: number };
}

/** Node-wide counters, beside the per-partition ones. */
export interface AaeTotals {
  exchanges: number;
  failed: number;
  keysRepaired: number;
  bytesSent: number;
  /** Answers for exchanges that had already ended. */
  lateAnswers: number;
}

/** What a RunningNode exposes for `ringkv aae` and the metrics server. */
export interface AaeView {
  status(): ApiAaeOk;
  totals: AaeTotals;
}

export interface AaeIo {
  view: AaeView;
  /** The named actions of the anti-entropy machine. */
  antiEntropyActions: {
    send(p: SendParams): void;
    serveTree(p: ServeParams<AaeTreeBody>): void;
    serveSegment(p: ServeParams<AaeSegmentBody>): void;
    serveSync(p: ServeParams<AaePutBody>): void;
    answerAae(p: AnswerAaeParams): void;
    reportExchange(p: ExchangeOutput): void;
    dropLate(): void;
  };
  /** The named actions of each exchange. */
  exchangeActions: {
    send(p: SendParams): void;
    readTree(p: ReadTreeParams): void;
    readEntries(p: ReadEntriesParams): void;
    mergeAndRead(p: MergeAndReadParams): void;
  };
}

/** Bytes one key adds to a message: the key, its 8-byte hash, and msgpack framing. */
const entryOverhead = 11;

export function createAaeIo(deps: AaeIoDeps): AaeIo {
  const { nodeId, store, shape, transport, clock, log } = deps;
  const perPartition = new Map<number, AaePartitionStats>();
  const totals: AaeTotals = { exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0, lateAnswers: 0 };

  const statsOf = (p: number): AaePartitionStats => {
    let s = perPartition.get(p);
    if (s === undefined) {
      s = { p, lastExchangeAt: null, exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0 };
      perPartition.set(p, s);
    }
    return s;
  };

  const sendAae = (to: string, kind: string, reqId: string, body: unknown, partition: number | undefined) => {
    const bytes = encodeEnvelope({ v: protocolVersion, kind, from: nodeId, to, reqId, body });
    totals.bytesSent += bytes.length;
    if (partition !== undefined) statsOf(partition).bytesSent += bytes.length;
    transport.send(to, 'aae', bytes);
  };

  const later = (event: AaeLocalEvent) => queueMicrotask(() => deps.deliver(event));

  /** Syncs objects into the store; resolves with the number of keys whose state changed. */
  const applySyncs = async (p: number, objects: readonly AaeObject[]): Promise<number> => {
    const changed = await Promise.all(
      objects.map(([key, state]) =>
        store.update(p, key, (current) => {
          const { next } = applySync(current, state);
          return { next, result: next !== null };
        }),
      ),
    );
    const repaired = changed.filter(Boolean).length;
    statsOf(p).keysRepaired += repaired;
    totals.keysRepaired += repaired;
    return repaired;
  };

  /** The states of some keys, as many as fit in one message (at least one). */
  const readStates = (p: number, keys: readonly Uint8Array[]): { objects: AaeObject[]; complete: boolean; bytes: number } => {
    const objects: AaeObject[] = [];
    let bytes = 0;
    for (const key of keys) {
      const state = store.get(p, key);
      if (state === undefined) continue;
      const size = key.length + stateBytes(state);
      if (objects.length > 0 && (bytes + size > aaeMessageBytesMax || objects.length >= aaeItemsMax)) return { objects, complete: false, bytes };
      objects.push([key, state]);
      bytes += size;
    }
    return { objects, complete: true, bytes };
  };

  const levelsOf = (p: number): BigUint64Array[] => treeLevels(store.segments(p), shape);

  const exchangeActions: AaeIo['exchangeActions'] = {
    send(p) {
      sendAae(p.to, p.kind, p.reqId, p.body, (p.body as { p?: number }).p);
    },

    readTree({ reqId, p }) {
      later({ type: 'aae.local.tree', reqId, levels: levelsOf(p).map((level) => hashesToBytes(level)) });
    },

    readEntries({ reqId, p, segments }) {
      // Whole segments in the order asked, as many as fit in one message (at least one). Keys are
      // not stored by segment, so the partition is scanned once; a segment that no longer fits is
      // dropped at once, so memory stays near one message whatever the partition holds.
      const position = new Map(segments.map((s, i) => [s, i]));
      const found = new Map<number, { keys: Uint8Array[]; hashes: bigint[]; bytes: number }>();
      let allowed = segments.length;
      let total = 0;
      let count = 0;
      for (const key of store.keysInSegment(p, new Set(segments))) {
        const seg = segmentOf(key, shape.segments);
        if (position.get(seg)! >= allowed) continue;
        const state = store.get(p, key);
        if (state === undefined) continue;
        let entry = found.get(seg);
        if (entry === undefined) found.set(seg, (entry = { keys: [], hashes: [], bytes: 0 }));
        entry.keys.push(key);
        entry.hashes.push(objectHash(key, state));
        entry.bytes += key.length + entryOverhead;
        total += key.length + entryOverhead;
        count++;
        while ((total > aaeMessageBytesMax || count > aaeItemsMax) && allowed > 1) {
          const dropped = found.get(segments[--allowed]!);
          found.delete(segments[allowed]!);
          total -= dropped?.bytes ?? 0;
          count -= dropped?.keys.length ?? 0;
        }
      }
      const covered = segments.slice(0, allowed);
      const keys: Uint8Array[] = [];
      const hashes: bigint[] = [];
      for (const s of covered) {
        const entry = found.get(s);
        if (entry) {
          keys.push(...entry.keys);
          hashes.push(...entry.hashes);
        }
      }
      later({ type: 'aae.local.entries', reqId, segments: covered, keys, hashes: hashesToBytes(hashes), bytes: total });
    },

    mergeAndRead({ reqId, p, objects, want }) {
      applySyncs(p, objects).then(
        (repaired) => {
          const read = readStates(p, want);
          later({ type: 'aae.local.merged', reqId, repaired, objects: read.objects, complete: read.complete, bytes: read.bytes });
        },
        (err: unknown) => {
          log.error('anti-entropy could not merge into the store', { partition: p, err });
          later({ type: 'aae.local.failed', reqId, message: String(err) });
        },
      );
    },
  };

  const antiEntropyActions: AaeIo['antiEntropyActions'] = {
    send(p) {
      sendAae(p.to, p.kind, p.reqId, p.body, undefined);
    },

    serveTree({ from, reqId, body }) {
      const answer = answerTree(levelsOf(body.p), shape, body.level, body.nodes, bytesToHashes(body.hashes));
      sendAae(from, 'aae.tree.ok', reqId, { level: body.level, nodes: answer.nodes, children: hashesToBytes(answer.children) }, body.p);
    },

    serveSegment({ from, reqId, body }) {
      const { p } = body;
      const theirs = new Map<string, bigint>();
      const theirHashes = bytesToHashes(body.hashes);
      body.keys.forEach((k, i) => theirs.set(latin1(k), theirHashes[i]!));
      // What the asker holds that we lack or hold differently: we want its state.
      const want: Uint8Array[] = [];
      body.keys.forEach((k, i) => {
        const state = store.get(p, k);
        if (state === undefined || objectHash(k, state) !== theirHashes[i]) want.push(k);
      });
      // What we hold that it lacks or holds differently, as many as fit.
      const objects: AaeObject[] = [];
      let bytes = 0;
      let complete = true;
      for (const key of store.keysInSegment(p, new Set(body.segments))) {
        const state: DvvSet | undefined = store.get(p, key);
        if (state === undefined) continue;
        const h = theirs.get(latin1(key));
        if (h !== undefined && h === objectHash(key, state)) continue;
        const size = key.length + stateBytes(state);
        if (objects.length > 0 && (bytes + size > aaeMessageBytesMax || objects.length >= aaeItemsMax)) {
          complete = false;
          break;
        }
        objects.push([key, state]);
        bytes += size;
      }
      sendAae(from, 'aae.segment.ok', reqId, { objects, want, complete }, p);
    },

    serveSync({ from, reqId, body }) {
      applySyncs(body.p, body.objects).then(
        (repaired) => sendAae(from, 'aae.put.ok', reqId, { repaired }, body.p),
        (err: unknown) => {
          log.error('anti-entropy could not merge a peer\'s objects', { partition: body.p, from, err });
          sendAae(from, 'aae.error', reqId, { code: 'INTERNAL', message: `the store could not commit: ${String(err)}` }, body.p);
        },
      );
    },

    answerAae({ replyTo, to, reqId, paused, running, queued }) {
      const body: ApiAaeOk = { ...status(), paused, running, queued };
      deps.answerClient({ replyTo, to, reqId, kind: 'api.aae.ok', body });
    },

    reportExchange(out) {
      const s = statsOf(out.p);
      if (out.outcome === 'in-sync' || out.outcome === 'repaired') {
        s.exchanges++;
        totals.exchanges++;
        s.lastExchangeAt = clock.now();
        if (out.repairedLocal + out.repairedRemote > 0) {
          log.info('anti-entropy exchange repaired keys', {
            partition: out.p,
            peer: out.peer,
            segments: out.differing,
            repairedHere: out.repairedLocal,
            repairedThere: out.repairedRemote,
            bytes: out.bytes,
          });
        }
      } else {
        s.failed++;
        totals.failed++;
        log.info('anti-entropy exchange did not finish', { partition: out.p, peer: out.peer, outcome: out.outcome, reason: out.reason });
      }
    },

    dropLate() {
      totals.lateAnswers++;
    },
  };

  const status = (): ApiAaeOk => {
    const rows = new Set([...deps.partitions(), ...perPartition.keys()]);
    return {
      nodeId,
      ...deps.machineState(),
      intervalMs: deps.settings.intervalMs,
      bytesPerSec: deps.settings.bytesPerSec,
      exchangesMax: deps.settings.exchangesMax,
      partitions: [...rows].sort((a, b) => a - b).map((p) => ({ ...statsOf(p) })),
    };
  };

  return {
    view: {
      status,
      totals,
    },
    antiEntropyActions,
    exchangeActions,
  };
}

/** A key as a map key (latin1 is a bijection on bytes). */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
