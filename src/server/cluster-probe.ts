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
 * Only answers a member sealed are trusted (issue 28, item 4): the probe sends a fresh nonce, and a
 * member answers with a proof for it made with the cluster secret (src/protocol/ping-proof.ts). On an
 * open NATS anyone can answer $SRV.PING, and an impostor claiming another cluster id made a
 * restarting member exit. Now:
 * - an answer proved by a member: this cluster is here; answers of other ids beside it are reported
 *   (warn), never obeyed;
 * - no member answers, and answers of another cluster id: a node whose own data says it is a member
 *   of this cluster (a restart) starts and warns; a node without data (a new cluster's first nodes,
 *   a joiner) refuses (exit 10): it cannot tell a stray from an impostor, nor a stray from its own
 *   wrong secret, and starting would mix client APIs. On an open NATS an impostor can therefore still
 *   keep a new node from starting: only `--secure` (NATS permissions on `$SRV`) stops that.
 * - an answer that claims this cluster's id without a valid proof: an impostor; ignored and reported.
 *
 * What it cannot catch: two clusters whose first nodes start within the same `probeWaitMs`, and a
 * NATS account where $SRV is not allowed (then nothing answers and the node starts). Nodes that
 * come to share a NATS later (servers joined into one NATS cluster) are reported, not stopped: each
 * node warns about messages sealed with another cluster id (member-gate.ts), and clients pin the
 * cluster id of their first ring (src/client/client.ts).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { checkPingProof, newPingNonce } from '../protocol/ping-proof.js';
import type { SealKey } from '../protocol/seal.js';
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
  /** True when the answer carries a valid proof for the probe's nonce under `key` (a member's). */
  member: boolean;
}

/**
 * The nodes that answer for `cluster` on this NATS, with the cluster id each gives. With `key`, the
 * PING carries a fresh nonce and each answer is marked `member` when its proof holds.
 */
export async function nodesAnswering(nc: NatsConnection, cluster: string, waitMs = probeWaitMs, key?: SealKey): Promise<ClusterAnswer[]> {
  const found: ClusterAnswer[] = [];
  const nonce = newPingNonce();
  try {
    const answers = await nc.requestMany(`$SRV.PING.${serviceName}`, key === undefined ? new Uint8Array() : new TextEncoder().encode(nonce), { maxWait: waitMs, maxMessages: answersMax });
    for await (const m of answers) {
      try {
        const ping = JSON.parse(new TextDecoder().decode(m.data)) as { metadata?: { cluster?: unknown; node?: unknown; clusterId?: unknown; proof?: unknown } };
        if (ping.metadata?.cluster !== cluster) continue;
        const node = String(ping.metadata.node);
        const member = key !== undefined && ping.metadata.clusterId === key.clusterId && checkPingProof(key, node, nonce, ping.metadata.proof);
        found.push({ node, clusterId: typeof ping.metadata.clusterId === 'string' ? ping.metadata.clusterId : undefined, member });
      } catch {
        // Not a ringkv node's answer: whoever it is, it does not speak for this cluster.
      }
    }
  } catch {
    // No responders, or the account may not use $SRV: nothing answers for this name.
  }
  return found;
}

/** What the probe found that it did not obey: answers of other ids, and unproved answers claiming this id. */
export interface ProbeReport {
  members: number;
  others: ClusterAnswer[];
  impostors: ClusterAnswer[];
}

/**
 * Refuses (ClusterMismatchError) when a node of this name answers with another cluster id and no
 * member answers, unless `knownMember` (this node's stored identity has this cluster id: a restart).
 */
export async function refuseOtherCluster(nc: NatsConnection, cluster: string, key: SealKey, knownMember: boolean, waitMs = probeWaitMs): Promise<ProbeReport> {
  const answers = await nodesAnswering(nc, cluster, waitMs, key);
  const members = answers.filter((a) => a.member).length;
  const others = answers.filter((a) => a.clusterId !== key.clusterId);
  const impostors = answers.filter((a) => a.clusterId === key.clusterId && !a.member);
  if (others.length === 0 || members > 0 || knownMember) return { members, others, impostors };
  const ids = [...new Set(others.map((o) => o.clusterId ?? 'none'))].join(', ');
  throw new ClusterMismatchError(
    `another cluster named ${cluster} answers on this NATS (node ${others.map((o) => o.node).join(', ')}, cluster id ${ids}; this node's secret gives ${key.clusterId}), and no member of this cluster does: ` +
      'it is a stray cluster, or this node has the wrong cluster secret (or, on an open NATS, an impostor: use --secure); stop it, or give this cluster another --cluster name',
  );
}
