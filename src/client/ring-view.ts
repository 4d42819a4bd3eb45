/**
 * The client's copy of the ring (client-driven coordination, Dynamo §6.4): built from a node's
 * api.status answer (every member with the partitions it owns), so the client can hash a key to
 * its partition and send the request straight to the key's preference list instead of through a
 * forwarding node. The view also keeps which members the answering node's failure detector judged
 * down, and the ring version when the nodes report one.
 *
 * A status answer that does not describe a whole ring (a partition without an owner, or with two)
 * is refused: the client then keeps its previous view, or uses the API queue group.
 */
import { isValidPartitionCount, type Ring } from '../core/ring.js';
import type { ApiStatusOk } from '../protocol/messages.js';

export interface RingView {
  ring: Ring;
  /** The cluster's default N (what a request without `n` gets). */
  n: number;
  /** Members the answering node believes down. */
  down: ReadonlySet<string>;
  /** Every member of the ring. */
  members: ReadonlySet<string>;
  /** The ring's version, when the nodes report one (a newer ring has a larger version). */
  version: number | undefined;
}

/** The ring an api.status answer describes, or a sentence saying why it describes none. */
export function ringFromStatus(status: ApiStatusOk): RingView | string {
  const q = status.partitions;
  if (!isValidPartitionCount(q)) return `status names ${String(q)} partitions, not a power of two`;
  if (!Number.isInteger(status.n) || status.n < 1) return `status names N = ${String(status.n)}`;
  if (!Array.isArray(status.members) || status.members.length === 0) return 'status names no members';
  const owners: (string | undefined)[] = new Array(q).fill(undefined);
  const down = new Set<string>();
  const members = new Set<string>();
  for (const m of status.members) {
    if (typeof m?.nodeId !== 'string' || m.nodeId.length === 0 || !Array.isArray(m.partitions)) return 'status has a malformed member';
    members.add(m.nodeId);
    if (m.state === 'down') down.add(m.nodeId);
    for (const p of m.partitions) {
      if (!Number.isInteger(p) || p < 0 || p >= q) return `member ${m.nodeId} owns partition ${String(p)}, outside 0..${q - 1}`;
      if (owners[p] !== undefined) return `partition ${p} has two owners (${owners[p]} and ${m.nodeId})`;
      owners[p] = m.nodeId;
    }
  }
  const unowned = owners.findIndex((o) => o === undefined);
  if (unowned >= 0) return `partition ${unowned} has no owner`;
  const version = status.ringVersion;
  return {
    ring: { q, owners: owners as string[] },
    n: status.n,
    down,
    members,
    version: typeof version === 'number' && Number.isFinite(version) ? version : undefined,
  };
}

/**
 * Whether a fresh view should replace the current one: with ring versions, only a view at least as
 * new (a node that has not yet heard of the newest ring must not roll the client back); without
 * them, always (the latest answer is the best the client knows).
 */
export function supersedes(fresh: RingView, current: RingView | undefined): boolean {
  if (current === undefined) return true;
  if (fresh.version !== undefined && current.version !== undefined) return fresh.version >= current.version;
  return true;
}
