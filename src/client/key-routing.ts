/**
 * Which nodes a client asks about a key, best first: the key's targets as the client sees liveness
 * (the healthy primaries, then fallbacks standing in for the others, Dynamo §4.6), then the rest of
 * its extended preference list; nodes believed down or avoided go last (they may still be the only
 * ones left).
 */
import { performance } from 'node:perf_hooks';
import { partitionOf, preferenceList } from '../core/ring.js';
import { chooseTargets } from '../core/targets.js';
import type { NodeHealth } from './node-health.js';
import type { RingView } from './ring-view.js';

/** What the client routes one partition by, for one ring view (see order()). */
interface Route {
  extended: string[];
  /** The n `healthy` was made for. */
  n: number;
  healthy: { targets: string[]; order: string[] } | undefined;
}

export class KeyRouter {
  private routes: { view: RingView; byPartition: Route[] } | undefined;

  constructor(private readonly health: NodeHealth) {}

  order(view: RingView, key: Uint8Array, n: number): { targets: string[]; order: string[] } {
    const now = performance.now();
    const isUp = (node: string) => !view.down.has(node) && !this.health.isAvoided(node, now);
    const p = partitionOf(key, view.ring.q);
    const routes = this.routesOf(view);
    let route = routes[p];
    if (route === undefined) {
      route = { extended: preferenceList(view.ring, p, view.ring.q), n: 0, healthy: undefined };
      routes[p] = route;
    }
    const extended = route.extended;
    // The common case, every node of the list up: the answer depends only on the ring and n, so it
    // is made once per partition instead of per request (the arrays are shared: callers only read them).
    if (extended.every(isUp)) {
      if (route.healthy === undefined || route.n !== n) {
        route.n = n;
        route.healthy = { targets: extended.slice(0, n), order: extended };
      }
      return route.healthy;
    }
    const targets = chooseTargets(view.ring, p, n, isUp).targets.map((t) => t.node);
    const rest = extended.filter((node) => !targets.includes(node));
    return { targets, order: [...targets, ...rest.filter(isUp), ...rest.filter((node) => !isUp(node))] };
  }

  /** Per partition of this view: its extended preference list, and the order when all are up. */
  private routesOf(view: RingView): Route[] {
    if (this.routes?.view !== view) this.routes = { view, byPartition: new Array<Route | undefined>(view.ring.q) as Route[] };
    return this.routes.byPartition;
  }
}
