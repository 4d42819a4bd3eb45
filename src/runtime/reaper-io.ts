/**
 * The tombstone reaper (the rule and its reasons: src/core/reap.ts). Every node runs one, for the
 * partitions it is the first primary of, so each key has one reaper. A sweep, every intervalMs:
 *
 *   1. scan those partitions for tombstones (this is also the "tombstones kept" count);
 *   2. in batches of up to reapItemsMax keys, ask every other member (reap.check on the aae role) what
 *      it holds of them and whether it holds a hint for them, waiting at most answerTimeoutMs;
 *   3. keys the core finds agreed everywhere for the grace period are dropped: reap.drop to each
 *      other primary, and here, each deleting the key only if its state is still that exact
 *      tombstone and no hint for it is pending (Store.removeIfUnchanged: the object and its Merkle
 *      segment in one transaction, so trees stay exact, and a write racing the reap wins).
 *
 * Before a node deletes a tombstone that carries a dot of its current clock id it takes a new epoch
 * (beforeDrop, as ownership transfer does): a copy of that tombstone still in flight (a primary that
 * has not dropped yet, an exchange) would otherwise supersede the first write it coordinates to the
 * key again, whose dot would repeat the tombstone's.
 *
 * It also answers the other reapers' reap.check and reap.drop. No actor: the decisions are pure
 * functions over one batch, and the reaper's only state is the grace clock and its counters.
 */
import { type DvvSet, equal, isDeleted } from '../core/dvv.js';
import { GraceWatch, keyVerdict, type MemberAnswer, passBlocked, type ReapView, type WaitReason } from '../core/reap.js';
import { preferenceList, type Ring } from '../core/ring.js';
import { type ClusterState, liveMembers, stagedChanges } from '../core/cluster-state.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import {
  type ReapCheckBody,
  type ReapCheckItem,
  type ReapCheckOk,
  type ReapDropBody,
  type ReapDropItem,
  type ReapDropOk,
  reapItemsMax,
  reapMessageBytesMax,
} from '../protocol/reap-messages.js';
import { operatorDefaults } from '../core/defaults.js';
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';
import type { Store } from '../ports/store.js';
import type { Transport } from '../ports/transport.js';

export interface ReapSettings {
  /** A sweep starts at most this often; 0: never (tombstones are kept). */
  intervalMs: number;
  /**
   * How long a tombstone must have been held the same by every primary, and by nothing else, before
   * it is dropped: longer than any message may be delayed, and than the age of any backup a node
   * may be restored from (a restore of an older one is refused: src/server/backup.ts).
   */
  graceMs: number;
  /** How long a member has to answer one reap message. */
  answerTimeoutMs: number;
  /** Tombstones one sweep looks at, at most (the rest wait for the next pass; all are counted). */
  tombstonesPerSweepMax: number;
  /**
   * Keys one sweep reads, at most: a pass over the partitions this node reaps continues over as many
   * sweeps as it needs, so a large store costs each sweep a bounded amount of work.
   */
  keysPerSweepMax: number;
  /** Tombstones whose grace clock runs at once, at most. */
  watchedMax: number;
}

export const reapDefaults: ReapSettings = {
  intervalMs: operatorDefaults.reapIntervalMs,
  graceMs: operatorDefaults.reapGraceMs,
  answerTimeoutMs: 5_000,
  tombstonesPerSweepMax: 100_000,
  keysPerSweepMax: 200_000,
  watchedMax: 200_000,
};

/** What this node's reaper shows (`ringkv status`, /metrics). */
export interface ReapStatus {
  /** Tombstones in the partitions this node reaps (it is their first primary), at the end of the last pass. */
  kept: number;
  /** Tombstones this node's store deleted by reaping, since start. */
  reaped: number;
  /** Passes over the partitions this node reaps finished since start (a pass is one sweep or more). */
  sweeps: number;
  /** When the last pass finished (Clock ms), or null. */
  lastSweepAt: number | null;
  /** Why the last sweep left tombstones in place: a count per reason. */
  waiting: Partial<Record<WaitReason, number>>;
  graceMs: number;
}

export interface ReaperDeps {
  nodeId: string;
  store: Store;
  transport: Transport;
  clock: Clock;
  log: Log;
  settings: ReapSettings;
  n: number;
  /** The ring, members and liveness as this node sees them now; undefined before the node runs. */
  view: () => (ReapView & { ring: Ring }) | undefined;
  /** Called with the states about to be deleted here, before they are (a new epoch if needed). */
  beforeDrop: (states: readonly DvvSet[]) => void;
}

export interface Reaper {
  /** Takes a validated reap.* message (src/runtime/router.ts). */
  handle(kind: string, from: string, reqId: string, body: unknown): void;
  status(): ReapStatus;
  /** Starts the periodic sweeps. */
  start(): void;
  stop(): void;
}

interface Candidate {
  p: number;
  key: Uint8Array;
  state: DvvSet;
  id: string;
}

/** Answers to one request, by member, until all came or the deadline passed. */
interface Waiting {
  from: Set<string>;
  answers: Map<string, unknown>;
  done: () => void;
}

export function createReaper(deps: ReaperDeps): Reaper {
  const { nodeId, store, transport, clock, log, settings } = deps;
  const watch = new GraceWatch(settings.watchedMax);
  const counts: ReapStatus = { kept: 0, reaped: 0, sweeps: 0, lastSweepAt: null, waiting: {}, graceMs: settings.graceMs };
  const waiting = new Map<string, Waiting>();
  let seq = 0;
  let timer: unknown;
  /** Where the pass over this node's partitions stands (a pass may take several sweeps). */
  const newPass = () => ({ index: 0, after: undefined as string | undefined, kept: 0, ids: new Set<string>() });
  let pass = newPass();
  let stopped = false;

  const send = (to: string, kind: string, reqId: string, body: unknown) => {
    transport.send(to, 'aae', encodeEnvelope({ v: protocolVersion, kind, from: nodeId, to, reqId, body }));
  };

  /** Sends one request to each member and resolves with their answers when all came or time ran out. */
  const ask = (members: readonly string[], kind: string, body: (member: string) => unknown): Promise<Map<string, unknown>> =>
    new Promise((resolve) => {
      const reqId = `reap.${nodeId}.${++seq}`;
      const answers = new Map<string, unknown>();
      if (members.length === 0) return resolve(answers);
      let handle: unknown;
      const done = () => {
        clock.clearTimeout(handle);
        waiting.delete(reqId);
        resolve(answers);
      };
      waiting.set(reqId, { from: new Set(members), answers, done });
      handle = clock.setTimeout(done, settings.answerTimeoutMs);
      for (const m of members) send(m, kind, reqId, body(m));
    });

  const wait = (reason: WaitReason, count = 1) => {
    counts.waiting[reason] = (counts.waiting[reason] ?? 0) + count;
  };

  /** Deletes what is still exactly the reaped tombstone here; resolves with how many went. */
  const dropHere = async (items: readonly ReapDropItem[]): Promise<number> => {
    const present = items.filter(([p, key, state]) => {
      const now = store.get(p, key);
      return now !== undefined && equal(now, state) && !store.hintPending(p, key);
    });
    if (present.length === 0) return 0;
    deps.beforeDrop(present.map(([, , state]) => state));
    const dropped = await Promise.all(present.map(([p, key, state]) => store.removeIfUnchanged(p, key, state)));
    const count = dropped.filter(Boolean).length;
    counts.reaped += count;
    return count;
  };

  /** The tombstones of the partitions this node reaps, up to the sweep's maximum; counts them all. */
  /**
   * The next part of the pass over the partitions this node reaps: at most keysPerSweepMax keys
   * read, from where the last sweep stopped, so a large store costs each sweep a bounded amount of
   * work. Each key is read and decoded (a tombstone is a state with no value). At the end of a whole
   * pass the tombstones it found are the "kept" count, and the grace clocks of keys no longer
   * tombstones are dropped. Keys come in key order, and latin1 strings compare as their bytes.
   */
  const scan = (ring: Ring): { candidates: Candidate[]; passEnded: boolean } => {
    const own: number[] = [];
    for (let p = 0; p < ring.q; p++) if (preferenceList(ring, p, 1)[0] === nodeId) own.push(p);
    const out: Candidate[] = [];
    let read = 0;
    for (let i = pass.index; i < own.length; i++) {
      const p = own[i]!;
      const after = i === pass.index ? pass.after : undefined;
      for (const key of store.keys(p)) {
        const keyId = latin1(key);
        if (after !== undefined && keyId <= after) continue;
        if (read >= settings.keysPerSweepMax) {
          pass.index = i;
          return { candidates: out, passEnded: false };
        }
        read++;
        pass.after = keyId;
        const state = store.get(p, key);
        if (state === undefined || !isDeleted(state)) continue;
        pass.kept++;
        const id = `${p}/${keyId}`;
        if (pass.ids.size < settings.watchedMax) pass.ids.add(id);
        if (out.length < settings.tombstonesPerSweepMax) out.push({ p, key, state, id });
      }
      pass.after = undefined;
    }
    counts.kept = pass.kept;
    watch.retain(pass.ids);
    pass = newPass();
    return { candidates: out, passEnded: true };
  };

  /** Batches of candidates that fit one message each. */
  const batchesOf = (candidates: readonly Candidate[]): Candidate[][] => {
    const out: Candidate[][] = [];
    let current: Candidate[] = [];
    let bytes = 0;
    for (const c of candidates) {
      // A tombstone's state is small: its clock ids and counters, about 24 bytes each.
      const size = c.key.length + 16 + 24 * c.state.length;
      if (current.length > 0 && (current.length >= reapItemsMax || bytes + size > reapMessageBytesMax)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(c);
      bytes += size;
    }
    if (current.length > 0) out.push(current);
    return out;
  };

  const reapBatch = async (batch: readonly Candidate[]): Promise<void> => {
    const view = deps.view();
    if (!view) return;
    const blocked = passBlocked(view);
    if (blocked) return wait(blocked, batch.length);
    const asked = view.members.filter((m) => m !== nodeId);
    const items: ReapCheckItem[] = batch.map((c) => [c.p, c.key]);
    const raw = await ask(asked, 'reap.check', () => ({ ring: view.ringVersion, items }) satisfies ReapCheckBody);
    const answers = new Map<string, MemberAnswer>();
    for (const [m, a] of raw) {
      const ok = a as ReapCheckOk;
      if (ok.states.length !== batch.length) continue;
      answers.set(m, { ringVersion: ok.ring, staged: ok.staged, moving: ok.moving, keys: ok.states.map((state, i) => ({ state, hinted: ok.hinted[i]! })) });
    }
    // Decided on this node's view after the answers: a change meanwhile blocks.
    const after = deps.view();
    if (!after || after.ringVersion !== view.ringVersion) return wait('ring-version', batch.length);
    const blockedAfter = passBlocked(after);
    if (blockedAfter) return wait(blockedAfter, batch.length);
    const now = clock.now();
    const drops = new Map<string, ReapDropItem[]>();
    batch.forEach((c, i) => {
      const local = store.get(c.p, c.key);
      if (local === undefined || !equal(local, c.state)) {
        watch.forget(c.id);
        return;
      }
      const primaries = preferenceList(view.ring, c.p, deps.n);
      const verdict = keyVerdict(local, store.hintPending(c.p, c.key), i, primaries, asked, answers, view);
      if (!watch.observe(c.id, local, verdict === null, now, settings.graceMs)) return wait(verdict ?? 'grace');
      watch.forget(c.id);
      for (const m of primaries) {
        const list = drops.get(m);
        if (list) list.push([c.p, c.key, local]);
        else drops.set(m, [[c.p, c.key, local]]);
      }
    });
    if (drops.size === 0) return;
    const others = [...drops.keys()].filter((m) => m !== nodeId);
    const [here] = await Promise.all([dropHere(drops.get(nodeId) ?? []), ask(others, 'reap.drop', (m) => ({ items: drops.get(m)! }) satisfies ReapDropBody)]);
    if (here > 0) log.debug('tombstones reaped', { here, keys: batch.length });
  };

  const sweep = async (): Promise<void> => {
    const view = deps.view();
    if (!view) return;
    counts.waiting = {};
    const { candidates, passEnded } = scan(view.ring);
    for (const batch of batchesOf(candidates)) {
      if (stopped) return;
      await reapBatch(batch);
    }
    if (!passEnded) return;
    counts.sweeps++;
    counts.lastSweepAt = clock.now();
  };

  const schedule = () => {
    if (stopped || settings.intervalMs <= 0) return;
    // One timer at a time: the next is set only when this sweep has finished.
    timer = clock.setTimeout(() => {
      sweep()
        .catch((err: unknown) => log.error('tombstone reaping failed; the next sweep tries again', { err }))
        .finally(schedule);
    }, settings.intervalMs);
  };

  const handle = (kind: string, from: string, reqId: string, body: unknown): void => {
    if (kind === 'reap.check') {
      const view = deps.view();
      if (!view) return;
      // Answered with this node's own ring version: the reaper compares it with its own.
      const { items } = body as ReapCheckBody;
      const states: (DvvSet | null)[] = [];
      const hinted: boolean[] = [];
      for (const [p, key] of items) {
        states.push(store.get(p, key) ?? null);
        hinted.push(store.hintPending(p, key));
      }
      send(from, 'reap.check.ok', reqId, { ring: view.ringVersion, staged: view.staged, moving: view.moving, states, hinted } satisfies ReapCheckOk);
      return;
    }
    if (kind === 'reap.drop') {
      const view = deps.view();
      // A node that sees a ring change coming drops nothing: the reaper decided on an older view.
      if (!view || passBlocked(view) === 'staged-change' || view.moving) return send(from, 'reap.drop.ok', reqId, { dropped: 0 } satisfies ReapDropOk);
      dropHere((body as ReapDropBody).items).then(
        (dropped) => send(from, 'reap.drop.ok', reqId, { dropped } satisfies ReapDropOk),
        (err: unknown) => log.error('could not drop reaped tombstones', { from, err }),
      );
      return;
    }
    // An answer: counted only from a member it was asked of, once.
    const w = waiting.get(reqId);
    if (!w || !w.from.has(from) || w.answers.has(from)) return;
    w.answers.set(from, body);
    if (w.answers.size === w.from.size) w.done();
  };

  return {
    handle,
    status: () => ({ ...counts, waiting: { ...counts.waiting } }),
    start() {
      stopped = false;
      schedule();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      for (const w of [...waiting.values()]) w.done();
    },
  };
}

/** The reaper's view, read from the node actor's snapshot (its ring, membership and liveness). */
export function reapViewOf(snapshot: unknown): (ReapView & { ring: Ring }) | undefined {
  const snap = snapshot as
    | { context: { ring: Ring; membership: ClusterState; down: Record<string, true> }; children: Record<string, { getSnapshot(): unknown } | undefined> }
    | undefined;
  if (!snap) return undefined;
  const { ring, membership, down } = snap.context;
  const transfer = snap.children.transfer?.getSnapshot() as { context?: { running: string[]; waiting: unknown[] } } | undefined;
  return {
    ring,
    ringVersion: membership.ring.version,
    staged: stagedChanges(membership).length > 0,
    moving: (transfer?.context?.running.length ?? 0) + (transfer?.context?.waiting.length ?? 0) > 0,
    members: liveMembers(membership),
    down: new Set(Object.keys(down)),
  };
}

/** A key as a map key (latin1 is a bijection on bytes). */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
