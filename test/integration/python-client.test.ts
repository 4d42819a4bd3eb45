/**
 * A second client, in Python, written from docs/protocol.md alone (test/python/ringkv_client.py:
 * nats-py and msgpack), against a real cluster: a put, a get with siblings, a put with the read's
 * context, a delete, the refusals a node answers to a str value and to a version it does not speak,
 * and a value the TypeScript client then reads. Skipped, with the reason in its name, where python3
 * or its modules are missing (`python3 -m pip install nats-py msgpack`; .ci/run tries).
 */
import { spawnSync, execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { type Cluster, printNodeOutputOnFailure, repoRoot, startCluster } from '../support/cluster.js';
import { type NatsServerHandle, startNatsServer, tempDir } from '../support/nats-server.js';

const run = promisify(execFile);
const script = path.join(repoRoot, 'test', 'python', 'ringkv_client.py');

/** Why the Python client cannot run here, or undefined when it can. */
function missing(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import sys, nats, msgpack; assert sys.version_info >= (3, 10), "python 3.10 or later"'], { encoding: 'utf8' });
  if (probe.error) return 'python3 is not installed';
  if (probe.status !== 0) return `python3 cannot run the client (${(probe.stderr.trim().split('\n').at(-1) ?? '').slice(0, 120)}); python3 -m pip install nats-py msgpack`;
  return undefined;
}

const reason = missing();
const clusterName = 'pytest';

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let dataRoot: string | undefined;

describe.skipIf(reason !== undefined)(`the Python client from docs/protocol.md${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    nats = await startNatsServer();
    dataRoot = tempDir('ringkv-python-');
    cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot, cluster: clusterName });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stopAll();
    await nats?.stop();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  printNodeOutputOnFailure(() => cluster);

  it('puts, reads siblings, merges with the context, deletes, and is refused as the document says', async () => {
    const { stdout } = await run('python3', [script, '--server', nats!.url, '--cluster', clusterName, '--key', 'py:cart', 'scenario'], { timeout: 60_000 });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out).toEqual({
      siblings: ['apple', 'pear'],
      found: true,
      contextIsBytes: true,
      merged: ['apple,pear'],
      afterDelete: { found: false, values: [] },
      strValue: ['error', 'BAD_REQUEST', 'value must be bytes'],
      version2: ['error', 'BAD_REQUEST', 'unsupported protocol version 2 (this node speaks 1)'],
      emptyKey: 'BAD_REQUEST',
      members: ['n1', 'n2', 'n3'],
      partitionsOwned: out.partitions,
      partitions: out.partitions,
      startedAtIsInt: true,
    });
    expect(out.partitions).toBeGreaterThan(0);

    // What Python wrote, the TypeScript client reads: the same bytes, one sibling.
    const client = await RingkvClient.connect({ servers: nats!.url, cluster: clusterName });
    try {
      const read = await client.getString('py:cart:py');
      expect(read.values).toEqual(['héllo from python']);
    } finally {
      await client.close();
    }
  }, 90_000);
});
