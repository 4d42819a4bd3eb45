import { rmSync } from 'node:fs';
import { afterAll, beforeAll, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { createHosts, type Hosts } from '../support/hosts.js';
import { tempDir } from '../support/nats-server.js';
import { availability, startSetWorkload } from '../support/set-workload.js';

let hosts: Hosts;
let cluster: Cluster;
const clients = new Map<string, RingkvClient>();
let dataRoot: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  hosts = await createHosts({ hosts: 5 });
  dataRoot = tempDir('ringkv-probe-');
  const hostOf = (id: string) => `h${id.slice(1)}`;
  cluster = await startCluster({
    nodes: 5,
    natsUrl: hosts.hosts[0]!.natsUrl,
    natsUrlOf: (id) => hosts.host(hostOf(id)).natsUrl,
    launcher: (id) => hosts.nodeLauncher(hostOf(id)),
    dataRoot,
    cluster: 'jepsen',
    args: ['--gossip-round-ms', '250'],
  });
  for (const h of hosts.hosts) clients.set(h.id, await RingkvClient.connect({ servers: h.natsUrl, cluster: 'jepsen', timeoutMs: 2000 }));
}, 120_000);

afterAll(async () => {
  for (const c of clients.values()) await c.close().catch(() => undefined);
  await cluster?.stopAll();
  await hosts?.destroy();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
});

it('probe: availability per second around a partition', async () => {
  const wl = startSetWorkload({ clients, keys: ['s1', 's2', 's3', 's4'], concurrency: 2, r: 2, w: 2, timeoutMs: 2000 });
  await sleep(5000);
  const cutAt = Date.now() - wl.startedAt;
  hosts.partition([['h1', 'h2', 'h3'], ['h4', 'h5']]);
  await sleep(20_000);
  const healAt = Date.now() - wl.startedAt;
  hosts.heal();
  await sleep(10_000);
  await wl.stop();
  const rows: string[] = [];
  for (let t = 0; t < healAt + 10_000; t += 1000) {
    const maj = availability(wl.ops, ['h1', 'h2', 'h3'], t, t + 1000);
    const min = availability(wl.ops, ['h4', 'h5'], t, t + 1000);
    const codes = wl.ops.filter((o) => o.at >= t && o.at < t + 1000 && !o.ok).map((o) => `${o.host}:${o.failed}:${o.code}:${o.message}`);
    rows.push(`${((t - cutAt) / 1000).toFixed(0).padStart(4)} s  majority ${maj.ok}/${maj.all}  minority ${min.ok}/${min.all}  ${[...new Set(codes)].join(' ')}`);
  }
  console.log(`cut at ${cutAt} ms, healed at ${healAt} ms\n${rows.join('\n')}`);
}, 120_000);
