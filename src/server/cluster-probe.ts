/**
 * Before a node serves, it asks who else answers for its cluster name on this NATS (issue 17,
 * item 3). Nodes of two clusters with one name would share `ringkv.<name>.api.*` and its queue
 * group: a client's request would land on either, and a stray cluster would answer a share of them
 * and hand out its ring. Internal traffic of the other cluster already fails the seal; this stops
 * the client API from mixing, by refusing to start a node beside another cluster of its name.
 *
 * Every node answers NATS service discovery (`$SRV.PING.ringkv`, service-discovery.ts) with its
 * cluster name and cluster id in the metadata; every answer is collected for a short while (all of
 * them, not the one a queue group would pick). A node of this name with another cluster id means a
 * stray cluster or the wrong secret (the id is derived from it): this node refuses to start
 * (CLUSTER_MISMATCH, exit 10), whichever of the two is the stray, since only a person can tell.
 * A node of this cluster restarting finds its fellow members, which agree.
 *
 * What it cannot catch: two clusters whose first nodes start within the same `probeWaitMs`, and a
 * NATS account where $SRV is not allowed (then nothing answers and the node starts). Nodes that
 * come to share a NATS later (servers joined into one NATS cluster) are reported, not stopped: each
 * node warns about messages sealed with another cluster id (member-gate.ts), and clients pin the
 * cluster id of their first ring (src/client/client.ts).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { serviceName } from './service-discovery.js';

/** How long answers are collected. No responders at all ends it at once. */
export const probeWaitMs = 500;
const answersMax = 1024;

export class ClusterMismatchError extends Error {
  readonly code = 'CLUSTER_MISMATCH';
}

export interface ClusterAnswer {
  node: string;
  clusterId: string | undefined;
}

/** The nodes that answer for `cluster` on this NATS, with the cluster id each gives. */
export async function nodesAnswering(nc: NatsConnection, cluster: string, waitMs = probeWaitMs): Promise<ClusterAnswer[]> {
  const found: ClusterAnswer[] = [];
  try {
    const answers = await nc.requestMany(`$SRV.PING.${serviceName}`, new Uint8Array(), { maxWait: waitMs, maxMessages: answersMax });
    for await (const m of answers) {
      try {
        const ping = JSON.parse(new TextDecoder().decode(m.data)) as { metadata?: { cluster?: unknown; node?: unknown; clusterId?: unknown } };
        if (ping.metadata?.cluster !== cluster) continue;
        found.push({ node: String(ping.metadata.node), clusterId: typeof ping.metadata.clusterId === 'string' ? ping.metadata.clusterId : undefined });
      } catch {
        // Not a ringkv node's answer: whoever it is, it does not speak for this cluster.
      }
    }
  } catch {
    // No responders, or the account may not use $SRV: nothing answers for this name.
  }
  return found;
}

/** Refuses (ClusterMismatchError) when a node of this name answers with another cluster id. */
export async function refuseOtherCluster(nc: NatsConnection, cluster: string, clusterId: string, waitMs = probeWaitMs): Promise<void> {
  const others = (await nodesAnswering(nc, cluster, waitMs)).filter((a) => a.clusterId !== clusterId);
  if (others.length === 0) return;
  const ids = [...new Set(others.map((o) => o.clusterId ?? 'none'))].join(', ');
  throw new ClusterMismatchError(
    `another cluster named ${cluster} answers on this NATS (node ${others.map((o) => o.node).join(', ')}, cluster id ${ids}; this node's secret gives ${clusterId}): ` +
      'it is a stray cluster, or this node has the wrong cluster secret; stop it, or give this cluster another --cluster name',
  );
}
