/**
 * Membership liveness, pure (Dynamo §4.8): heartbeats spread by gossip, and the phi-accrual verdict
 * on each member. A heartbeat is [incarnation, counter]: a restarted node starts a new incarnation,
 * so its fresh counter still counts as newer than what the cluster remembers of its last life.
 *
 * Merging two views takes the newer heartbeat per member, so views converge whatever the order of
 * merges (the merge is commutative, associative and idempotent). A newer heartbeat is an arrival
 * for the failure detector; a member whose phi passes the threshold is down until a newer heartbeat
 * of it arrives.
 */
import { type ArrivalWindow, type PhiOptions, emptyWindow, phi, recordArrival } from './phi.js';

export type Heartbeat = [incarnation: number, counter: number];
export type Heartbeats = Record<string, Heartbeat>;

export interface Liveness {
  heartbeats: Heartbeats;
  windows: Record<string, ArrivalWindow>;
  down: Record<string, true>;
}

export type LivenessChange = { nodeId: string; state: 'up' | 'down' };

export function isNewer(a: Heartbeat, b: Heartbeat | undefined): boolean {
  return b === undefined || a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/** The newer heartbeat of every member of either view. */
export function mergeHeartbeats(a: Heartbeats, b: Heartbeats): Heartbeats {
  const out: Heartbeats = { ...a };
  for (const [id, hb] of Object.entries(b)) if (isNewer(hb, out[id])) out[id] = hb;
  return out;
}

/**
 * Takes in a peer's heartbeats at time `now`: newer ones are arrivals, and bring a down member back
 * up. The node's own entry is never taken from others: only it advances its own heartbeat.
 */
export function receiveHeartbeats(l: Liveness, self: string, incoming: Heartbeats, now: number, opts: PhiOptions): { liveness: Liveness; changes: LivenessChange[] } {
  const heartbeats = { ...l.heartbeats };
  const windows = { ...l.windows };
  let down = l.down;
  const changes: LivenessChange[] = [];
  for (const id of Object.keys(incoming).sort()) {
    const hb = incoming[id]!;
    if (id === self || !isNewer(hb, heartbeats[id])) continue;
    heartbeats[id] = hb;
    windows[id] = recordArrival(windows[id] ?? emptyWindow, now, opts);
    if (down[id]) {
      const { [id]: _, ...rest } = down;
      down = rest;
      changes.push({ nodeId: id, state: 'up' });
    }
  }
  return { liveness: { heartbeats, windows, down }, changes };
}

/**
 * The failure detector's verdict at `now`: members whose phi passed the threshold go down. A member
 * never heard from is timed from the first verdict, so one that never starts is found down too.
 */
export function judge(l: Liveness, members: readonly string[], self: string, now: number, threshold: number, opts: PhiOptions): { liveness: Liveness; changes: LivenessChange[] } {
  const windows = { ...l.windows };
  let down = l.down;
  const changes: LivenessChange[] = [];
  for (const id of members) {
    if (id === self) continue;
    const w = windows[id] ?? emptyWindow;
    if (w.last === null) {
      windows[id] = { intervals: [], last: now };
      continue;
    }
    if (!down[id] && phi(w, now, opts) > threshold) {
      down = { ...down, [id]: true };
      changes.push({ nodeId: id, state: 'down' });
    }
  }
  return { liveness: { heartbeats: l.heartbeats, windows, down }, changes };
}
