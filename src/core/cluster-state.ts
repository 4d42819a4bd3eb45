/**
 * The cluster state every node gossips (Dynamo §4.8, Riak's staged changes): the members with their
 * status, the committed ring, and the staged plan. Pure.
 *
 * Every member entry and the ring are registers with a version and the id of the node that wrote
 * them. Merging keeps, per register, the higher version, ties broken by the writer's id and then by
 * content, so the merge is commutative, associative and idempotent: nodes that have seen the same
 * writes hold the same state, whatever the order of their gossip. A writer always writes one more
 * than the version it has, so a newer write wins everywhere.
 *
 * The staged plan is the members' `staged` fields (join, leave, remove): per-member registers, so
 * two operators staging changes for different nodes never overwrite each other. Only commit turns
 * them into a new ring (claim), and commit bumps the ring's version.
 *
 * Member status: joining (known, not in the ring), valid (in the committed ring), leaving (taken
 * out of the ring by a commit, still handing its data over), exiting (handed everything over and
 * stopped), removed (taken out by force-remove, no handoff).
 */
import { claim } from './claim.js';
import { type Ring, claimInitial, ownershipCounts } from './ring.js';

export type MembershipStatus = 'joining' | 'valid' | 'leaving' | 'exiting' | 'removed';
export type StagedOp = 'join' | 'leave' | 'remove';

export const memberStatuses: readonly MembershipStatus[] = ['joining', 'valid', 'leaving', 'exiting', 'removed'];
export const stagedOps: readonly StagedOp[] = ['join', 'leave', 'remove'];

export interface MemberEntry {
  status: MembershipStatus;
  /** The change staged for this member, or null. */
  staged: StagedOp | null;
  version: number;
  /** The node that wrote this version. */
  by: string;
}

export interface CommittedRing {
  /** 0: no ring known yet (a fresh node that has not heard from its seed). */
  version: number;
  by: string;
  q: number;
  owners: string[];
}

export interface ClusterState {
  members: Record<string, MemberEntry>;
  ring: CommittedRing;
}

export type AdminErrorCode = 'NO_CHANGES' | 'UNKNOWN_NODE' | 'TOO_FEW_NODES' | 'TOO_MANY_NODES' | 'ALREADY_MEMBER' | 'NOT_READY';
export type AdminResult = { ok: true; state: ClusterState } | { ok: false; code: AdminErrorCode; message: string };

/** The state of a cluster formed from a static member list: the same on every node that computes it. */
export function initialState(members: readonly string[], q: number): ClusterState {
  const ring = claimInitial(members, q);
  const entries: Record<string, MemberEntry> = {};
  for (const m of [...new Set(members)].sort()) entries[m] = { status: 'valid', staged: null, version: 1, by: '' };
  return { members: entries, ring: { version: 1, by: '', q, owners: ring.owners } };
}

/** A fresh node that wants to join through a seed: it knows only itself, its join staged. */
export function joinerState(nodeId: string, q: number): ClusterState {
  return { members: { [nodeId]: { status: 'joining', staged: 'join', version: 1, by: nodeId } }, ring: { version: 0, by: '', q, owners: [] } };
}

export function ringOf(state: ClusterState): Ring {
  return { q: state.ring.q, owners: state.ring.owners };
}

export function hasRing(state: ClusterState): boolean {
  return state.ring.version > 0 && state.ring.owners.length === state.ring.q;
}

function memberKey(e: MemberEntry): string {
  return `${e.status}|${e.staged ?? ''}`;
}

function compareRegister(a: { version: number; by: string }, b: { version: number; by: string }, ka: string, kb: string): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.by !== b.by) return a.by < b.by ? -1 : 1;
  return ka === kb ? 0 : ka < kb ? -1 : 1;
}

/** The winner of two versions of one member's entry. */
export function newerMember(a: MemberEntry | undefined, b: MemberEntry | undefined): MemberEntry | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareRegister(a, b, memberKey(a), memberKey(b)) >= 0 ? a : b;
}

export function newerRing(a: CommittedRing, b: CommittedRing): CommittedRing {
  return compareRegister(a, b, `${a.q}|${a.owners.join(',')}`, `${b.q}|${b.owners.join(',')}`) >= 0 ? a : b;
}

/** The merge of two states: per register, the newer. */
export function mergeStates(a: ClusterState, b: ClusterState): ClusterState {
  const members: Record<string, MemberEntry> = {};
  for (const id of [...new Set([...Object.keys(a.members), ...Object.keys(b.members)])].sort()) {
    members[id] = newerMember(a.members[id], b.members[id])!;
  }
  return { members, ring: newerRing(a.ring, b.ring) };
}

/** True when the two states hold the same registers (so nothing needs saying or saving). */
export function sameState(a: ClusterState, b: ClusterState): boolean {
  const ids = Object.keys(a.members);
  if (ids.length !== Object.keys(b.members).length) return false;
  for (const id of ids) {
    const x = a.members[id]!;
    const y = b.members[id];
    if (!y || x.version !== y.version || x.by !== y.by || memberKey(x) !== memberKey(y)) return false;
  }
  return compareRegister(a.ring, b.ring, a.ring.owners.join(','), b.ring.owners.join(',')) === 0 && a.ring.q === b.ring.q;
}

/** Members that take part in gossip and failure detection: everyone not gone. */
export function liveMembers(state: ClusterState): string[] {
  return Object.keys(state.members)
    .filter((id) => {
      const s = state.members[id]!.status;
      return s === 'joining' || s === 'valid' || s === 'leaving';
    })
    .sort();
}

export interface StagedChange {
  node: string;
  op: StagedOp;
}

export function stagedChanges(state: ClusterState): StagedChange[] {
  return Object.keys(state.members)
    .sort()
    .filter((id) => state.members[id]!.staged !== null)
    .map((id) => ({ node: id, op: state.members[id]!.staged! }));
}

/** The members of the ring the staged changes would make. */
export function plannedMembers(state: ClusterState): string[] {
  return Object.keys(state.members)
    .filter((id) => {
      const e = state.members[id]!;
      if (e.staged === 'leave' || e.staged === 'remove') return false;
      return (e.status === 'valid' && state.ring.owners.includes(id)) || e.staged === 'join';
    })
    .sort();
}

function write(state: ClusterState, id: string, entry: Omit<MemberEntry, 'version' | 'by'>, by: string): ClusterState {
  const version = (state.members[id]?.version ?? 0) + 1;
  return { ...state, members: { ...state.members, [id]: { ...entry, version, by } } };
}

/**
 * A plan with more nodes than partitions: some would own none, and a join committed so never takes
 * the node into the ring (it stays valid outside it, may be staged again, and each commit makes a
 * new ring that leaves it out again: found by the simulator at 30 nodes on Q = 16, issue 27, where
 * the join of a 31st node was committed hundreds of times).
 */
function tooManyNodes(state: ClusterState): { ok: false; code: 'TOO_MANY_NODES'; message: string } | undefined {
  const planned = plannedMembers(state).length;
  if (state.ring.q === 0 || planned <= state.ring.q) return undefined;
  return { ok: false, code: 'TOO_MANY_NODES', message: `the ring has ${state.ring.q} partitions: at most ${state.ring.q} nodes can own one, and the plan has ${planned}` };
}

/** Stages the join of a known node that is not a member of the ring yet. */
export function stageJoin(state: ClusterState, node: string, by: string): AdminResult {
  const e = state.members[node];
  if (!e) return { ok: false, code: 'UNKNOWN_NODE', message: `node ${node} is not known to the cluster: start it with --seeds naming a member` };
  // A valid member missing from the ring (two commits at once, the other one won) may join again.
  const inRing = state.ring.owners.includes(node);
  if ((e.status === 'valid' && inRing) || e.status === 'leaving') return { ok: false, code: 'ALREADY_MEMBER', message: `node ${node} is already a member (${e.status})` };
  if (e.staged === 'join') return { ok: true, state };
  const next = write(state, node, { status: e.status === 'valid' ? 'valid' : 'joining', staged: 'join' }, by);
  const tooMany = tooManyNodes(next);
  if (tooMany) return tooMany;
  return { ok: true, state: next };
}

/** Stages a leave (with handoff) or a force-remove (without), refusing one that leaves fewer than n nodes. */
export function stageLeave(state: ClusterState, node: string, op: 'leave' | 'remove', by: string, n: number): AdminResult {
  const e = state.members[node];
  if (!e || e.status === 'exiting' || e.status === 'removed') return { ok: false, code: 'UNKNOWN_NODE', message: `node ${node} is not a member of the cluster` };
  // A leaving member still in the ring (its leave's commit lost to another made at once, as the
  // simulator found: `ringkv sim --seed 41 --nodes 4 --faults drop,partition,crash,join,leave`) may
  // be staged to leave again; otherwise it would stay in the ring, leaving, for good.
  const leavingInRing = e.status === 'leaving' && state.ring.owners.includes(node);
  if (op === 'leave' && e.status !== 'valid' && !leavingInRing) return { ok: false, code: 'UNKNOWN_NODE', message: `node ${node} is ${e.status}, not a member that can leave` };
  if (e.staged === op) return { ok: true, state };
  const next = write(state, node, { status: e.status, staged: op }, by);
  const remaining = plannedMembers(next).length;
  if (remaining < n && e.status !== 'joining') {
    return { ok: false, code: 'TOO_FEW_NODES', message: `without ${node} the ring would have ${remaining} node(s), fewer than N=${n}` };
  }
  return { ok: true, state: next };
}

/** Drops every staged change. */
export function clearPlan(state: ClusterState, by: string): AdminResult {
  const changes = stagedChanges(state);
  if (changes.length === 0) return { ok: false, code: 'NO_CHANGES', message: 'there are no staged changes' };
  let next = state;
  for (const { node } of changes) next = write(next, node, { status: next.members[node]!.status, staged: null }, by);
  return { ok: true, state: next };
}

export interface PartitionMove {
  partition: number;
  from: string;
  to: string;
}

export interface Share {
  node: string;
  partitions: number;
  percent: number;
}

export interface Plan {
  changes: StagedChange[];
  ringVersion: number;
  next: Ring;
  moves: PartitionMove[];
  before: Share[];
  after: Share[];
}

export function sharesOf(ring: Ring, nodes: readonly string[]): Share[] {
  const counts = ownershipCounts(ring);
  const all = [...new Set([...nodes, ...counts.keys()])].sort();
  return all.map((node) => {
    const partitions = counts.get(node) ?? 0;
    return { node, partitions, percent: ring.q === 0 ? 0 : Math.round((partitions / ring.q) * 1000) / 10 };
  });
}

/** What commit would do: the staged changes, the next ring, each partition move and the shares. */
export function planOf(state: ClusterState, n: number): { ok: true; plan: Plan } | { ok: false; code: AdminErrorCode; message: string } {
  if (!hasRing(state)) return { ok: false, code: 'NOT_READY', message: 'this node has not learned the ring yet' };
  const changes = stagedChanges(state);
  if (changes.length === 0) return { ok: false, code: 'NO_CHANGES', message: 'there are no staged changes' };
  const members = plannedMembers(state);
  if (members.length === 0) return { ok: false, code: 'TOO_FEW_NODES', message: 'the plan would leave no node in the ring' };
  const tooMany = tooManyNodes(state);
  if (tooMany) return tooMany;
  const current = ringOf(state);
  const { ring: next, moves } = claim(current, members, n);
  const nodes = Object.keys(state.members);
  return {
    ok: true,
    plan: {
      changes,
      ringVersion: state.ring.version,
      next,
      moves: moves.map((p) => ({ partition: p, from: current.owners[p]!, to: next.owners[p]! })),
      before: sharesOf(current, nodes),
      after: sharesOf(next, nodes),
    },
  };
}

/** Commits the staged plan: the next ring, a bumped ring version, and each staged member's new status. */
export function commitPlan(state: ClusterState, by: string, n: number): AdminResult {
  const planned = planOf(state, n);
  if (!planned.ok) return planned;
  let next: ClusterState = { ...state, ring: { version: state.ring.version + 1, by, q: planned.plan.next.q, owners: planned.plan.next.owners } };
  for (const { node, op } of planned.plan.changes) {
    const status: MembershipStatus = op === 'join' ? 'valid' : op === 'leave' ? 'leaving' : 'removed';
    next = write(next, node, { status, staged: null }, by);
  }
  return { ok: true, state: next };
}

/** A node that has handed everything over marks itself exiting. */
export function markExiting(state: ClusterState, node: string): ClusterState {
  const e = state.members[node];
  if (!e || e.status === 'exiting') return state;
  return write(state, node, { status: 'exiting', staged: null }, node);
}
