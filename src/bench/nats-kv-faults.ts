/**
 * How `ringkv bench --target nats-kv --fault` faults the JetStream cluster it started: the same
 * SIGKILL-and-restart or SIGSTOP-and-SIGCONT as for ringkv, given by default to the Raft leader of
 * the bucket's stream (found in the stream info's cluster leader), the node whose loss stalls
 * JetStream KV until a new leader is elected. --fault-node js1..js3 picks another.
 *
 * The bench's client is connected to js1 (the first server), so when js1 is the leader its loss also
 * costs the client its connection.
 */
import type { KV } from '@nats-io/kv';
import type { FaultControl, SettleResult } from './fault.js';
import { sleep } from './free-port.js';
import type { NatsJsCluster } from './nats-js-cluster.js';

/** Between two looks at the stream's replicas while settling. */
const settlePollMs = 250;

export function natsKvFaultControl(cluster: NatsJsCluster, kv: KV): FaultControl {
  const paused = new Set<string>();
  const killed = new Set<string>();
  return {
    nodes: cluster.names,
    async defaultNode() {
      const info = (await kv.status()).streamInfo;
      const leader = info.cluster?.leader;
      if (!leader || !cluster.names.includes(leader)) throw new Error(`the stream ${info.config.name} has no leader among ${cluster.names.join(', ')}`);
      return { node: leader, why: `the Raft leader of the bucket's stream ${info.config.name}${leader === cluster.names[0] ? ', and the server the client is connected to' : ''}` };
    },
    async kill(node) {
      killed.add(node);
      await cluster.kill(node);
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
    async settle(timeoutMs): Promise<SettleResult> {
      const t0 = performance.now();
      let detail = 'no stream info yet';
      while (performance.now() - t0 < timeoutMs) {
        try {
          const c = (await kv.status()).streamInfo.cluster;
          const replicas = c?.replicas ?? [];
          const behind = replicas.filter((r) => !r.current || r.offline || r.lag > 0).map((r) => r.name);
          if (c?.leader && behind.length === 0) {
            return { settled: true, ms: Math.round(performance.now() - t0), detail: `leader ${c.leader}, every replica current (${replicas.map((r) => r.name).join(', ')})` };
          }
          detail = c?.leader ? `replicas not current: ${behind.join(', ')}` : 'no stream leader';
        } catch (err) {
          detail = (err as Error).message;
        }
        await sleep(settlePollMs);
      }
      return { settled: false, ms: Math.round(performance.now() - t0), detail: `still not settled: ${detail}` };
    },
    async readBack(key) {
      const entry = await kv.get(key);
      return entry !== null && entry.operation === 'PUT' ? [entry.value] : [];
    },
    async heal() {
      for (const node of paused) cluster.signal(node, 'SIGCONT');
      paused.clear();
      for (const node of killed) await cluster.restart(node).catch(() => undefined);
      killed.clear();
    },
  };
}
