/**
 * Transfer: ownership transfer for one node (Dynamo §4.9, issue 4). When the ring changes, a node
 * may hold objects of partitions it no longer replicates (it is not among their N primaries). It
 * hands each such partition to every primary of the partition, one partition-transfer child per
 * partition, and deletes its own copy object by object once every primary confirmed it. It also
 * takes the batches its peers hand to it, within an inbound limit.
 *
 * The work list is never stored: each scan (at start, on every transfer.tick, after a ring change
 * and when the last transfer ends) asks the store which partitions this node does not replicate
 * still hold objects without pending hints (findWork). So a restarted node picks its transfers up
 * again from its data, and writes that still reach an old owner are found by the next scan and sent
 * before the copy is dropped. Keys with pending hints stay: hinted handoff owns them, and once the
 * hint is delivered the next scan finds them.
 *
 * Concurrency: at most transfersMax partitions are handed over at once by this node (outbound), and
 * at most inboundMax transfers (distinct sender and partition) are taken at once by this node
 * (inbound): a batch beyond that is refused with handoff.transfer.busy. A partition transfer first
 * reserves a slot at each of its N targets (an empty batch); on any busy it frees the slots it got
 * (handoff.transfer.done) and stops, and the next scan tries again, so no transfer waits while it
 * holds a slot (no deadlock). A slot is freed by handoff.transfer.done or after inboundIdleMs without
 * a batch. So the cluster as a whole runs at most min(sum of transfersMax, sum of inboundMax / N)
 * partition transfers at once.
 *
 * Takes: transfer.tick {now}, transfer.found, ring.changed, member.up / member.down, the store's
 * answers and the targets' answers for its children (routed by id), handoff.transfer (a peer's
 * batch), handoff.transfer.done, api.transfers, its children's done events.
 * Sends: handoff.transfer.busy, and through the runtime handoff.transfer.ok after applying a batch
 * (applyTransfer), the api.transfers answer (answerTransfers) and transfer.idle to the node
 * (tellNode) whenever a scan finds nothing left to hand over for the current ring.
 *
 * Invariants: at most transfersMax children; one child per partition; a partition is not started
 * while one of its targets is judged down; a scan's answer computed under an older ring is ignored;
 * the inbound table holds at most inboundMax entries.
 */
import { assign, enqueueActions, setup } from 'xstate';
import { preferenceList, type Ring } from '../src/core/ring.js';
import {
  type PartitionTransferInput,
  type PartitionTransferOutput,
  partitionTransferDefaults,
  partitionTransferMachine,
} from './partition-transfer.machine.js';
import type { HandoffItem } from './handoff.events.js';
import type { SendParams } from './replica.machine.js';
import type { FoundPartition, TransferEvent } from './transfer.events.js';
import { operatorDefaults } from '../src/core/defaults.js';
import { splitmix32 } from '../src/core/prng.js';

export interface TransferInput {
  nodeId: string;
  ring: Ring;
  /** Replicas per key: a partition's targets are the first n nodes of its preference list. */
  n: number;
  /** Partitions this node hands over at once, at most. */
  transfersMax: number;
  /** Inbound transfers (sender, partition) this node takes at once, at most. */
  inboundMax: number;
  /** An inbound slot without a batch for this long is free again. */
  inboundIdleMs: number;
  batchItemsMax: number;
  batchBytesMax: number;
  /** The node's transfer byte rate (bytes on the wire), shared by its running transfers. */
  rateBytesPerSec: number;
  attemptTimeoutMs: number;
  attemptsMax: number;
  passesMax: number;
  /** The runtime's clock at start; later times come with transfer.tick. */
  now: number;
  /** Seeds the jitter of the backoff after a refusal (default 0). */
  seed?: number;
}

/**
 * A partition whose transfer was refused (a target busy) waits this many transfer ticks at most
 * before it is tried again: a random number from 1 to min(2^refusals, backoffTicksMax).
 */
export const backoffTicksMax = 16;

/** When a refused partition may be tried again, and how often it was refused in a row. */
export interface Backoff {
  untilTick: number;
  refusals: number;
}

export interface TransferContext extends TransferInput {
  down: Record<string, true>;
  /** Ids of the running partition transfers (`transfer-<p>-<seq>`). */
  running: string[];
  /** What the last scan found that is not running yet. At most Q entries. */
  waiting: FoundPartition[];
  /** Where a stopped transfer of a partition left off (by partition; at most Q entries). */
  cursors: Record<number, Uint8Array | null>;
  /** The number of the latest scan; answers of older scans are ignored. */
  scan: number;
  scanning: boolean;
  /** transfer.idle was told and nothing was found since. */
  idleTold: boolean;
  seq: number;
  /** Inbound slots: `<sender>/<partition>` to the time of its last batch. */
  inbound: Record<string, number>;
  /** Partition transfers finished (all of the partition confirmed and dropped) since start. */
  completed: number;
  /** transfer.tick events taken since start: the backoff's clock. */
  ticks: number;
  /** Seeded PRNG state for the backoff's jitter. */
  rng: number;
  /**
   * Refused partitions that wait (by partition; at most Q entries). Every transfer reserves a slot
   * at each of its N targets at once and lets go of all of them on a refusal; when many nodes hand
   * partitions to the same few (the nodes a join brought in) and all of them try again on the same
   * tick, they refuse each other round after round and none gets all its slots: found at 30 nodes
   * (issue 27, `ringkv sim-scale --nodes 30`), where the leave never finished. Random, growing
   * waits break the lockstep (Ethernet's backoff).
   */
  backoff: Record<number, Backoff>;
}

/** One row of `ringkv transfers`, as this node's machine knows it (the runtime adds rates). */
export interface TransferProgress {
  p: number;
  from: string;
  to: string[];
  /** waiting (queued or a target down), or the running transfer's state: collecting, sending, dropping, pacing. */
  state: string;
  objectsSent: number;
  bytesSent: number;
  /** Objects the scan found in the partition (an estimate: writes keep arriving). */
  objectsTotal: number;
  /** When it started (ms), or null while waiting. */
  startedAt: number | null;
  passes: number;
}

export interface AnswerTransfersParams {
  replyTo: string;
  to: string;
  reqId: string;
  transfers: TransferProgress[];
  inbound: number;
  completed: number;
}

export const transferDefaults = {
  transfersMax: operatorDefaults.transfersMax as number,
  inboundMax: operatorDefaults.transfersInboundMax as number,
  inboundIdleMs: 30_000,
  rateBytesPerSec: operatorDefaults.transferRateBytesPerSec as number,
  ...partitionTransferDefaults,
};

export const transferIdPrefix = 'transfer-';

/** The child a reqId (`transfer-<p>-<seq>.<batch>`) belongs to. */
export function transferOf(reqId: string): string {
  const dot = reqId.lastIndexOf('.');
  return dot < 0 ? reqId : reqId.slice(0, dot);
}

/** The partitions this node holds no primary replica of under the ring: the ones it may have to hand over. */
export function partitionsNotReplicated(ring: Ring, nodeId: string, n: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < ring.q; p++) if (!preferenceList(ring, p, n).includes(nodeId)) out.push(p);
  return out;
}

/** What an enqueueActions callback of this machine receives, loosely typed (see the casts below). */
interface Args {
  context: TransferContext;
  event: TransferEvent;
  self: { getSnapshot(): { children: Record<string, unknown> } };
  enqueue: {
    (action: string | { type: string; params?: unknown }): void;
    spawnChild(src: string, options: { id: string; input: unknown }): void;
    stopChild(id: string): void;
    sendTo(to: unknown, event: unknown): void;
    assign(update: Partial<TransferContext>): void;
  };
}

interface ChildRef {
  getSnapshot(): { value: string; context: { p: number; targets: string[]; objectsSent: number; bytesSent: number; objectsTotal: number; startedAt: number; passes: number } };
}

function partitionOfChild(id: string): number {
  return Number(id.slice(transferIdPrefix.length, id.lastIndexOf('-')));
}

/** Starts waiting partitions (targets all up, not already running) while fewer than transfersMax run. */
function startTransfers(enqueue: Args['enqueue'], context: TransferContext, running: string[], waiting: FoundPartition[]): void {
  const r = [...running];
  const busy = new Set(r.map(partitionOfChild));
  const left: FoundPartition[] = [];
  let seq = context.seq;
  for (const found of waiting) {
    const targets = preferenceList(context.ring, found.p, context.n);
    const backingOff = (context.backoff[found.p]?.untilTick ?? 0) > context.ticks;
    if (r.length >= context.transfersMax || busy.has(found.p) || backingOff || targets.some((t) => context.down[t])) {
      left.push(found);
      continue;
    }
    const id = `${transferIdPrefix}${found.p}-${++seq}`;
    const input: PartitionTransferInput = {
      id,
      p: found.p,
      targets,
      cursor: context.cursors[found.p] ?? null,
      batchItemsMax: context.batchItemsMax,
      batchBytesMax: context.batchBytesMax,
      rateBytesPerSec: Math.max(1, Math.floor(context.rateBytesPerSec / context.transfersMax)),
      attemptTimeoutMs: context.attemptTimeoutMs,
      attemptsMax: context.attemptsMax,
      passesMax: context.passesMax,
      startedAt: context.now,
      objectsTotal: found.objects,
    };
    enqueue.spawnChild('partitionTransfer', { id, input });
    r.push(id);
    busy.add(found.p);
  }
  enqueue.assign({ running: r, waiting: left, seq });
}

/** Asks the store for the partitions to hand over, unless a scan is already out. */
function startScan(enqueue: Args['enqueue'], context: TransferContext, ring: Ring, scan: number): void {
  enqueue.assign({ scanning: true, scan });
  enqueue({ type: 'findWork', params: { scan, partitions: partitionsNotReplicated(ring, context.nodeId, context.n) } });
}

export const transferMachine = setup({
  types: {
    context: {} as TransferContext,
    events: {} as TransferEvent,
    input: {} as TransferInput,
  },
  actors: {
    partitionTransfer: partitionTransferMachine,
  },
  actions: {
    // I/O, provided by the runtime.
    send: (_, _params: SendParams) => {},
    /** Counts, per partition given, the objects without a pending hint, and the hints held: answers transfer.found. */
    findWork: (_, _params: { scan: number; partitions: number[] }) => {},
    /** Syncs a peer's batch into the local store, then sends handoff.transfer.ok. */
    applyTransfer: (_, _params: { from: string; reqId: string; items: HandoffItem[] }) => {},
    /** Answers api.transfers, adding rates and ETAs from the runtime's clock. */
    answerTransfers: (_, _params: AnswerTransfersParams) => {},
    /** Tells the node that nothing is left to hand over for the current ring. */
    tellNode: (_, _params: { type: 'transfer.idle'; ring: Ring }) => {},

    onTick: enqueueActions(({ enqueue, context, event }: Args) => {
      const now = (event as { now: number }).now;
      const ticks = context.ticks + 1;
      enqueue.assign({ now, ticks });
      if (!context.scanning && context.running.length < context.transfersMax) startScan(enqueue, { ...context, now, ticks }, context.ring, context.scan + 1);
    }) as never,

    onFound: enqueueActions(({ enqueue, context, event }: Args) => {
      const found = event as Extract<TransferEvent, { type: 'transfer.found' }>;
      if (found.scan !== context.scan) return;
      enqueue.assign({ scanning: false });
      if (found.partitions.length === 0 && context.running.length === 0 && (found.hints ?? 0) > 0) {
        // Nothing for transfer, but hinted handoff still has objects to deliver: a leaving node that
        // exited now would take them with it (found by the simulator: `ringkv sim --seed 14 --nodes 4
        // --faults drop,partition,crash,join,leave`). A later scan, once they are handed off, tells idle.
        enqueue.assign({ waiting: [], idleTold: false });
        return;
      }
      if (found.partitions.length === 0 && context.running.length === 0) {
        if (!context.idleTold) enqueue({ type: 'tellNode', params: { type: 'transfer.idle', ring: context.ring } });
        enqueue.assign({ waiting: [], idleTold: true });
        return;
      }
      enqueue.assign({ idleTold: false });
      startTransfers(enqueue, context, context.running, found.partitions);
    }) as never,

    onRingChanged: enqueueActions(({ enqueue, context, event }: Args) => {
      const ring = (event as { ring: Ring }).ring;
      // Every running transfer was aimed at the old ring's primaries: stop them all and scan again.
      // What they already confirmed and dropped is at those nodes, which hand it on if they in turn
      // no longer replicate it.
      // A stopped child does not reach a final state, so it would not free the inbound slot it holds
      // at each target: free them here. Left held, they refused every other transfer to those
      // targets for inboundIdleMs (found at 30 nodes, issue 27: a join's transfers stopped by the
      // leave committed right after held the new nodes' slots, and the leavers waited).
      for (const id of context.running) {
        enqueue.stopChild(id);
        const p = partitionOfChild(id);
        for (const to of preferenceList(context.ring, p, context.n)) enqueue({ type: 'send', params: { to, kind: 'handoff.transfer.done', reqId: id, body: { p } } });
      }
      enqueue.assign({ ring, running: [], waiting: [], cursors: {}, idleTold: false, backoff: {} });
      startScan(enqueue, context, ring, context.scan + 1);
    }) as never,

    routeToChild: enqueueActions(({ enqueue, context, event, self }: Args) => {
      const e = event as { reqId?: string; id?: string };
      const id = e.id ?? transferOf(e.reqId ?? '');
      const child = context.running.includes(id) ? self.getSnapshot().children[id] : undefined;
      // An answer for a transfer that is over (or stopped by a ring change) is dropped.
      if (child) enqueue.sendTo(child, event);
    }) as never,

    onMemberDown: enqueueActions(({ enqueue, context, event, self }: Args) => {
      const nodeId = (event as { nodeId: string }).nodeId;
      enqueue.assign({ down: { ...context.down, [nodeId]: true } });
      for (const id of context.running) {
        const child = self.getSnapshot().children[id];
        if (child) enqueue.sendTo(child, event);
      }
    }) as never,

    onMemberUp: enqueueActions(({ enqueue, context, event }: Args) => {
      const { [(event as { nodeId: string }).nodeId]: _, ...down } = context.down;
      enqueue.assign({ down });
      startTransfers(enqueue, { ...context, down }, context.running, context.waiting);
    }) as never,

    onChildDone: enqueueActions(({ enqueue, context, event }: Args) => {
      const done = event as { actorId: string; output?: PartitionTransferOutput };
      if (!context.running.includes(done.actorId)) return;
      enqueue.stopChild(done.actorId);
      const running = context.running.filter((id) => id !== done.actorId);
      const cursors = { ...context.cursors };
      const out = done.output;
      if (out) {
        if (out.outcome === 'done') delete cursors[out.p];
        else cursors[out.p] = out.cursor;
      }
      const completed = context.completed + (out?.outcome === 'done' ? 1 : 0);
      const waiting = context.waiting.filter((w) => w.p !== out?.p);
      let { backoff, rng } = context;
      if (out?.outcome === 'busy') {
        const refusals = (backoff[out.p]?.refusals ?? 0) + 1;
        rng = (rng + 0x9e3779b9) >>> 0;
        const wait = 1 + (splitmix32(rng) % Math.min(2 ** refusals, backoffTicksMax));
        backoff = { ...backoff, [out.p]: { untilTick: context.ticks + wait, refusals } };
      } else if (out && out.outcome !== 'targetDown' && backoff[out.p] !== undefined) {
        const { [out.p]: _, ...rest } = backoff;
        backoff = rest;
      }
      enqueue.assign({ cursors, completed, backoff, rng });
      startTransfers(enqueue, { ...context, cursors, backoff }, running, waiting);
      // The last transfer ended: scan at once, to start what is left or to report idle. Only after a
      // transfer that finished: one that was refused (a target busy) or gave up waits for the next
      // transfer.tick. Scanning at once after a refusal started it again at once, refused again, and
      // so on: at 30 nodes and more, where the targets' inbound slots are contended, the nodes traded
      // reservations, refusals and releases without pause (thousands of messages per simulated
      // second) and the leave never finished (issue 27, `ringkv sim-scale --nodes 30`).
      const finished = out === undefined || out.outcome === 'done';
      if (finished && running.length === 0 && waiting.length === 0 && !context.scanning) startScan(enqueue, context, context.ring, context.scan + 1);
    }) as never,

    onInboundBatch: enqueueActions(({ enqueue, context, event }: Args) => {
      const batch = event as Extract<TransferEvent, { type: 'handoff.transfer' }>;
      const slot = `${batch.from}/${batch.body.p}`;
      const inbound: Record<string, number> = {};
      for (const [k, at] of Object.entries(context.inbound)) if (batch.now - at <= context.inboundIdleMs) inbound[k] = at;
      if (!(slot in inbound) && Object.keys(inbound).length >= context.inboundMax) {
        enqueue.assign({ inbound });
        enqueue({
          type: 'send',
          params: {
            to: batch.from,
            kind: 'handoff.transfer.busy',
            reqId: batch.reqId,
            body: { message: `${context.nodeId} already takes ${context.inboundMax} inbound transfers` },
          },
        });
        return;
      }
      enqueue.assign({ inbound: { ...inbound, [slot]: batch.now } });
      enqueue({ type: 'applyTransfer', params: { from: batch.from, reqId: batch.reqId, items: batch.body.items } });
    }) as never,

    onInboundDone: assign({
      inbound: ({ context, event }) => {
        const e = event as unknown as { from: string; body: { p: number } };
        const { [`${e.from}/${e.body.p}`]: _, ...rest } = context.inbound;
        return rest;
      },
    }),

    answer: enqueueActions(({ enqueue, context, event, self }: Args) => {
      const req = event as Extract<TransferEvent, { type: 'api.transfers' }>;
      const transfers: TransferProgress[] = [];
      for (const id of context.running) {
        const snap = (self.getSnapshot().children[id] as ChildRef | undefined)?.getSnapshot();
        if (!snap) continue;
        const c = snap.context;
        transfers.push({
          p: c.p,
          from: context.nodeId,
          to: c.targets,
          state: String(snap.value),
          objectsSent: c.objectsSent,
          bytesSent: c.bytesSent,
          objectsTotal: Math.max(c.objectsTotal, c.objectsSent),
          startedAt: c.startedAt,
          passes: c.passes,
        });
      }
      for (const w of context.waiting) {
        transfers.push({
          p: w.p,
          from: context.nodeId,
          to: preferenceList(context.ring, w.p, context.n),
          state: 'waiting',
          objectsSent: 0,
          bytesSent: 0,
          objectsTotal: w.objects,
          startedAt: null,
          passes: 0,
        });
      }
      enqueue({
        type: 'answerTransfers',
        params: { replyTo: req.replyTo, to: req.from, reqId: req.reqId, transfers, inbound: Object.keys(context.inbound).length, completed: context.completed },
      });
    }) as never,
  },
}).createMachine({
  id: 'transfer',
  context: ({ input }) => ({
    ...input,
    down: {},
    running: [],
    waiting: [],
    cursors: {},
    scan: 1,
    scanning: true,
    idleTold: false,
    seq: 0,
    inbound: {},
    completed: 0,
    ticks: 0,
    rng: (input.seed ?? 0) >>> 0,
    backoff: {},
  }),
  // After a restart too: the first scan finds what an earlier life left to hand over.
  entry: {
    type: 'findWork',
    params: ({ context }) => ({ scan: context.scan, partitions: partitionsNotReplicated(context.ring, context.nodeId, context.n) }),
  },
  initial: 'serving',
  states: {
    serving: {
      on: {
        'transfer.tick': { actions: 'onTick' },
        'transfer.found': { actions: 'onFound' },
        'ring.changed': { actions: 'onRingChanged' },
        'member.down': { actions: 'onMemberDown' },
        'member.up': { actions: 'onMemberUp' },
        'transfer.collected': { actions: 'routeToChild' },
        'transfer.dropped': { actions: 'routeToChild' },
        'handoff.transfer.ok': { actions: 'routeToChild' },
        'handoff.transfer.busy': { actions: 'routeToChild' },
        'handoff.transfer': { actions: 'onInboundBatch' },
        'handoff.transfer.done': { actions: 'onInboundDone' },
        'api.transfers': { actions: 'answer' },
        'xstate.done.actor.*': { actions: 'onChildDone' },
      },
    },
  },
});
