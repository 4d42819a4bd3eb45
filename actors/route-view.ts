/**
 * What routing a client request needs to know of its node: its own id, the ring, who it believes
 * down, the default quorum and the limits. The coordinator's batch carries it and node-routes.ts
 * routes by it; its own module, so neither imports the other for it.
 */
import type { Quorum } from '../src/core/quorum.js';
import type { Ring } from '../src/core/ring.js';
import type { Limits } from '../src/protocol/limits.js';

/** What a node knows that routing a request needs (part of the node machine's context). */
export interface RouteView {
  nodeId: string;
  ring: Ring;
  /** Members believed down; a node missing here counts as up. */
  down: Record<string, true>;
  quorumDefault: Quorum;
  limits: Limits;
}

