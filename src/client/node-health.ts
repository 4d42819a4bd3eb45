/**
 * What the client has seen of each node: a fast, local opinion that orders the nodes it tries, never
 * a verdict (the nodes' failure detectors judge membership). Two signals make a node "avoided":
 *
 * - NATS answered "no responders" on its subject: nothing subscribes there, the process is gone
 *   (a kill, a crash, a stop). It is avoided for avoidMs, then tried again in its turn.
 * - It has left requests unanswered for longer than stallMs while answering nothing at all (a
 *   SIGSTOP, a long GC pause, a wedged event loop): NATS still holds its subscription and delivers
 *   to it, so only silence shows it. It is avoided until it answers anything again. A request that
 *   reached its deadline without an answer from it makes it avoided for avoidMs too.
 *
 * An avoided node is tried last, after every other node of the preference list, so it still serves
 * when nothing better is left. Any answer from a node clears what was held against it.
 */

export interface NodeHealthOptions {
  avoidMs: number;
  stallMs: number;
  /** Nodes tracked at most (a client that met more forgets the quiet ones). */
  nodesMax: number;
}

export const nodeHealthDefaults: NodeHealthOptions = { avoidMs: 1_000, stallMs: 500, nodesMax: 1024 };

interface Seen {
  outstanding: number;
  /** Since when requests to it have gone unanswered, with no answer of any kind since. */
  waitingSince: number | undefined;
  avoidUntil: number;
}

export class NodeHealth {
  readonly options: NodeHealthOptions;
  private readonly nodes = new Map<string, Seen>();

  constructor(options: Partial<NodeHealthOptions> = {}) {
    this.options = { ...nodeHealthDefaults, ...options };
  }

  sent(node: string, now: number): void {
    const s = this.seen(node);
    s.outstanding++;
    s.waitingSince ??= now;
  }

  answered(node: string, now: number): void {
    const s = this.seen(node);
    s.outstanding = Math.max(0, s.outstanding - 1);
    s.waitingSince = s.outstanding > 0 ? now : undefined;
    s.avoidUntil = 0;
  }

  noResponders(node: string, now: number): void {
    this.settledWithout(node);
    this.seen(node).avoidUntil = now + this.options.avoidMs;
  }

  /** A request to it reached its deadline unanswered. */
  timedOut(node: string, now: number): void {
    this.settledWithout(node);
    this.seen(node).avoidUntil = now + this.options.avoidMs;
  }

  /** A request to it was lost with the client's own connection: says nothing about the node. */
  lost(node: string): void {
    this.settledWithout(node);
  }

  isAvoided(node: string, now: number): boolean {
    const s = this.nodes.get(node);
    if (!s) return false;
    return s.avoidUntil > now || (s.waitingSince !== undefined && now - s.waitingSince > this.options.stallMs);
  }

  private settledWithout(node: string): void {
    const s = this.seen(node);
    s.outstanding = Math.max(0, s.outstanding - 1);
    if (s.outstanding === 0) s.waitingSince = undefined;
  }

  private seen(node: string): Seen {
    let s = this.nodes.get(node);
    if (!s) {
      if (this.nodes.size >= this.options.nodesMax) {
        for (const [id, other] of this.nodes) {
          if (other.outstanding === 0) {
            this.nodes.delete(id);
            break;
          }
        }
      }
      s = { outstanding: 0, waitingSince: undefined, avoidUntil: 0 };
      this.nodes.set(node, s);
    }
    return s;
  }
}
