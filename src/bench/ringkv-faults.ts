/**
 * How `ringkv bench --local --fault` faults a node of the local cluster it started: SIGKILL and a
 * restart on the same data directory (a crash: the node comes back with a new epoch and receives
 * its hints), or SIGSTOP and SIGCONT (a node that hangs: its connections stay open, it just stops
 * answering, which no TCP reset gives away).
 *
 * The default victim is n1. With N equal to the cluster size every node holds a replica of every
 * key, and every node coordinates a share of the client's requests, so n1 is no less "the node the
 * client uses" than any other; naming it keeps runs comparable. --fault-node picks another.
 */
import { ClusterAdmin, type AdminOptions } from '../client/admin.js';
import type { RingkvClient } from '../client/client.js';
import type { LocalCluster } from '../server/local-cluster.js';
import type { FaultControl, SettleResult } from './fault.js';
import { sleep } from './free-port.js';

/** Between two looks at the pending hints while settling. */
export const settlePollMs = 250;
/** Looks in a row that must find nothing pending before the store counts as settled. */
export const settleQuietPolls = 2;

/**
 * `admin` says where the hints are asked for when settling: an admin client is opened for that
 * (hints are an admin operation) and closed again, so the run itself carries no admin connection.
 */
export function ringkvFaultControl(cluster: LocalCluster, client: RingkvClient, admin: AdminOptions, quorum: { n: number; r: number }): FaultControl {
  const paused = new Set<string>();
  const killed = new Set<string>();
  return {
    nodes: cluster.nodeIds,
    async defaultNode() {
      return { node: cluster.nodeIds[0]!, why: 'the default: every node coordinates a share of the requests and holds every key at N=3' };
    },
    async kill(node) {
      killed.add(node);
      await cluster.kill(node, 'SIGKILL');
    },
    async restart(node) {
      await cluster.restart(node);
      killed.delete(node);
    },
    pause(node) {
      paused.add(node);
      cluster.signal(node, 'SIGSTOP');
    },
    resume(node) {
      cluster.signal(node, 'SIGCONT');
      paused.delete(node);
    },
    async settle(timeoutMs) {
      const hints = await ClusterAdmin.connect(admin);
      try {
        return await settleHints(hints, cluster.nodeIds, timeoutMs);
      } finally {
        await hints.close().catch(() => undefined);
      }
    },
    async readBack(key) {
      return (await client.get(key, { n: quorum.n, r: quorum.r })).values;
    },
    async heal() {
      for (const node of paused) cluster.signal(node, 'SIGCONT');
      paused.clear();
      for (const node of killed) await cluster.restart(node).catch(() => undefined);
      killed.clear();
    },
  };
}

/** Waits until every node answers and none holds a hint: what the fault left has been handed off. */
export async function settleHints(admin: Pick<ClusterAdmin, 'hints'>, nodeIds: readonly string[], timeoutMs: number): Promise<SettleResult> {
  const t0 = performance.now();
  let quiet = 0;
  let detail = 'no look at the hints finished';
  while (performance.now() - t0 < timeoutMs) {
    const looks = await Promise.all(
      nodeIds.map(async (via) => {
        try {
          const h = await admin.hints({ via });
          return { via, pending: h.targets.reduce((sum, t) => sum + t.count, 0) };
        } catch (err) {
          return { via, error: (err as Error).message };
        }
      }),
    );
    const silent = looks.filter((l) => 'error' in l).map((l) => l.via);
    const pending = looks.reduce((sum, l) => sum + ('pending' in l ? (l.pending ?? 0) : 0), 0);
    if (silent.length === 0 && pending === 0) {
      if (++quiet >= settleQuietPolls) {
        return { settled: true, ms: Math.round(performance.now() - t0), detail: `every node answers and no hint is pending (${nodeIds.join(', ')})` };
      }
    } else {
      quiet = 0;
      detail = silent.length > 0 ? `no answer from ${silent.join(', ')}` : `${pending} hints pending`;
    }
    await sleep(settlePollMs);
  }
  return { settled: false, ms: Math.round(performance.now() - t0), detail: `still not settled: ${detail}` };
}
