/**
 * `ringkv demo cart`: Dynamo's shopping cart, live. It starts its own local cluster (nats-server on
 * a free loopback port, three node processes, data in a temporary directory), then two clients add
 * items to one cart at the same time through different nodes, each by read, merge siblings, write
 * back with the read's context. Halfway through, node n3 is killed with SIGKILL. At the end one
 * read, merged, must hold every item either client was told was added; the demo says so, or exits 1.
 */
import type { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../bench/free-port.js';
import { RingkvClient } from '../client/client.js';
import { up } from '../server/local-cluster.js';
import { formatJson, formatTable } from './output.js';

interface Cart {
  items: string[];
}

export interface CartDemoReport {
  itemsAcked: number;
  itemsUnknown: number;
  finalItems: number;
  missing: string[];
  siblingsMax: number;
  killed: string;
}

const cartKey = 'cart:demo';

/** Union of every sibling's items: the cart's merge, which never drops an add. */
export function mergeCarts(carts: Cart[]): Cart {
  return { items: [...new Set(carts.flatMap((c) => c.items))].sort() };
}

export async function runCartDemo(opts: { itemsPerClient: number; log: (line: string) => void }): Promise<CartDemoReport> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'ringkv-demo-'));
  const cluster = await up({
    nodes: 3,
    dataDir,
    server: `nats://127.0.0.1:${port}`,
    cluster: 'demo',
    partitions: 64,
    quiet: true,
  });
  const clients: RingkvClient[] = [];
  try {
    opts.log(`started nats-server on port ${port} and nodes ${cluster.nodeIds.join(', ')} (data in ${dataDir})`);
    const alice = await RingkvClient.connect({ servers: cluster.natsUrl, cluster: 'demo' });
    const bob = await RingkvClient.connect({ servers: cluster.natsUrl, cluster: 'demo' });
    clients.push(alice, bob);
    await waitUntilServing(alice, cluster.nodeIds);

    const acked: string[] = [];
    const unknown: string[] = [];
    let siblingsMax = 0;
    let killed = false;
    const shop = async (name: string, client: RingkvClient, via: string) => {
      for (let i = 1; i <= opts.itemsPerClient; i++) {
        const item = `${name}-${i}`;
        if (name === 'alice' && i === Math.ceil(opts.itemsPerClient / 2) && !killed) {
          killed = true;
          opts.log('killing node n3 with SIGKILL');
          await cluster.kill('n3');
        }
        try {
          await client.mergeJson<Cart>(
            cartKey,
            (carts) => {
              siblingsMax = Math.max(siblingsMax, carts.length);
              const merged = mergeCarts(carts);
              return { items: [...merged.items, item] };
            },
            { via },
          );
          acked.push(item);
        } catch (err) {
          // A TIMEOUT is indeterminate; any error means we were not told the add happened.
          unknown.push(item);
          opts.log(`${name}: add of ${item} not acknowledged (${(err as Error).message})`);
        }
      }
    };
    await Promise.all([shop('alice', alice, 'n1'), shop('bob', bob, 'n2')]);

    const final = await alice.getJson<Cart>(cartKey, { r: 2 });
    const cart = mergeCarts(final.values);
    const present = new Set(cart.items);
    return {
      itemsAcked: acked.length,
      itemsUnknown: unknown.length,
      finalItems: cart.items.length,
      missing: acked.filter((item) => !present.has(item)),
      siblingsMax,
      killed: 'n3',
    };
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function registerDemoCommand(program: Command): void {
  const demo = program.command('demo').description('runnable demonstrations on a cluster the demo starts itself');
  demo
    .command('cart')
    .description('two clients fill one cart concurrently through different nodes while a node is killed; no acknowledged item is lost')
    .option('--items <count>', 'items each client adds', (v) => Number.parseInt(v, 10), 20)
    .action(async (o: { items: number }, cmd: Command) => {
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      const log = (line: string) => json || process.stdout.write(`demo: ${line}\n`);
      const report = await runCartDemo({ itemsPerClient: o.items, log });
      if (json) process.stdout.write(formatJson(report));
      else {
        process.stdout.write(
          formatTable([
            ['adds acknowledged', String(report.itemsAcked)],
            ['adds not acknowledged', String(report.itemsUnknown)],
            ['most siblings seen by a read', String(report.siblingsMax)],
            ['node killed', report.killed],
            ['items in the final cart', String(report.finalItems)],
            ['acknowledged items missing', String(report.missing.length)],
          ]),
        );
        process.stdout.write(report.missing.length === 0 ? 'every acknowledged item is in the cart\n' : `LOST: ${report.missing.join(', ')}\n`);
      }
      if (report.missing.length > 0) process.exitCode = 1;
    });
}

/** Every node answers on its own subject and sees every member up. */
async function waitUntilServing(client: RingkvClient, nodeIds: string[]): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const views = await Promise.all(nodeIds.map((via) => client.status({ via })));
      if (views.every((v) => v.members.every((m) => m.state === 'up'))) return;
    } catch {
      // Nodes are still starting.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the demo cluster did not start serving within 10 s');
}
