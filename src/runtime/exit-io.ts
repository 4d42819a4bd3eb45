/**
 * How a node that left the cluster (or was removed) ends (DESIGN.md §4): RunningNode.exited resolves
 * with the reason once nothing is left to hand over, and the node's owner stops it then.
 */
import type { Clock } from '../ports/clock.js';
import type { Log } from '../ports/log.js';

export interface ExitIo {
  /** Resolves with the reason when this node has left the cluster or was removed. */
  exited: Promise<string>;
  /**
   * Exits once nothing is left to hand over (handOver), or at once. The wait is at least one gossip
   * round: for the news that this node is gone to reach the others. In that round, writes from nodes
   * that have not yet learned the ring without this node can still land here (found by the
   * simulator: `ringkv sim --seed 317`); ownership transfer, which scans every round, hands them
   * over too, and a node that left goes only once nothing is left. `now`: look first, without the wait.
   */
  exitAfterHandOver(reason: string, handOver: boolean, now?: boolean): void;
}

export interface ExitIoDeps {
  clock: Clock;
  log: Log;
  roundMs: number;
  /** What this node still holds for others (transfer-io.ts), or undefined when nothing is left. */
  leftToHandOver: () => string | undefined;
}

export function createExitIo(deps: ExitIoDeps): ExitIo {
  const { clock, log, roundMs } = deps;
  let resolveExit: (reason: string) => void = () => {};
  const exited = new Promise<string>((resolve) => (resolveExit = resolve));
  const exitAfterHandOver = (reason: string, handOver: boolean, now = false) => {
    const waitMs = Math.max(roundMs, 200);
    const tryExit = () => {
      const left = handOver ? deps.leftToHandOver() : undefined;
      if (left === undefined) return resolveExit(reason);
      log.info('exit waits: this node still holds data to hand over', { left });
      clock.setTimeout(tryExit, waitMs);
    };
    if (now) tryExit();
    else clock.setTimeout(tryExit, waitMs);
  };
  return { exited, exitAfterHandOver };
}
