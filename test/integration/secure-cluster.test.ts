/**
 * `ringkv up --secure` on a real nats-server with its generated users and permissions
 * (src/server/secure-nats.ts): nodes serve with the node nkey; a client user puts and gets (every
 * acknowledged write reads back) but cannot publish on node subjects, cannot listen to the
 * cluster's traffic and cannot run admin operations (NATS_PERMISSION, exit 12); an admin can; no
 * credentials is NATS_AUTH. The shipped infra/nats-server.secure.conf is what the generator writes.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, nkeyAuthenticator, type NatsConnection, PermissionViolationError } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterAdmin } from '../../src/client/admin.js';
import { RingkvClient } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { freePort, sleep } from '../../src/bench/free-port.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { up, type LocalCluster } from '../../src/server/local-cluster.js';
import { type SecureRole } from '../../src/server/secure-nats.js';
import { ensureBuilt, ringkvBin } from '../support/cluster.js';
import { tempDir } from '../support/nats-server.js';
import { waitFor } from '../support/wait-for.js';

const cluster = 'sec';

describe('ringkv up --secure', () => {
  let local: LocalCluster;
  let url: string;
  const seed = (role: SecureRole) => local.secure!.seeds[role];
  const opts = (role: SecureRole) => ({ servers: url, cluster, nkeyFile: seed(role), timeoutMs: 3000 });
  const raw = (role: SecureRole): Promise<NatsConnection> =>
    connect({ servers: url, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(seed(role), 'utf8').trim())) });

  let dataDir: string;
  beforeAll(async () => {
    ensureBuilt();
    url = `nats://127.0.0.1:${await freePort()}`;
    dataDir = tempDir('ringkv-secure-');
    local = await up({ nodes: 3, dataDir, server: url, cluster, partitions: 16, secure: true, quiet: true, nodeArgs: ['--gossip-round-ms', '200'] });
  }, 60_000);
  afterAll(async () => {
    await local?.stop();
  });

  it('keeps the seeds and the configuration readable by their owner only', () => {
    for (const f of [...Object.values(local.secure!.seeds), local.secure!.config]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
    expect(statSync(local.secure!.dir).mode & 0o777).toBe(0o700);
  });

  it('a client user puts and gets; every acknowledged write reads back', async () => {
    const client = await RingkvClient.connect(opts('client'));
    try {
      await waitFor('the cluster to take a put', async () => (await client.putString('probe', 'x').then(() => true, () => undefined)), 30_000, 200);
      const acked: string[] = [];
      for (let i = 0; i < 200; i++) {
        await client.putString(`key-${i}`, `value-${i}`).then(() => acked.push(`key-${i}`), () => undefined);
      }
      expect(acked.length).toBe(200);
      for (const k of acked) expect((await client.getString(k)).values).toEqual([k.replace('key', 'value')]);
      const status = await client.status();
      expect(status.members.map((m) => m.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('a client user cannot run admin operations: NATS_PERMISSION', async () => {
    const admin = await ClusterAdmin.connect(opts('client'));
    const client = await RingkvClient.connect(opts('client'));
    try {
      const refused = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
      for (const err of [await refused(admin.plan()), await refused(admin.commit({ via: 'n1' })), await refused(client.hints({ via: 'n1' })), await refused(client.aae('pause', { via: 'n2' }))]) {
        expect(err).toBeInstanceOf(RingkvError);
        expect((err as RingkvError).code).toBe('NATS_PERMISSION');
      }
    } finally {
      await admin.close();
      await client.close();
    }
    const cli = spawnSync(process.execPath, [ringkvBin, '--server', url, '--cluster', cluster, '--nkey', seed('client'), 'cluster', 'plan'], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(exitCodes.forbidden);
    expect(cli.stderr).toContain('NATS_PERMISSION');
    for (const args of [['inspect', 'n1'], ['hints'], ['transfers']]) {
      const r = spawnSync(process.execPath, [ringkvBin, '--server', url, '--cluster', cluster, '--nkey', seed('client'), ...args], { encoding: 'utf8' });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(exitCodes.forbidden);
      expect(r.stderr).toContain('NATS_PERMISSION');
    }
  }, 30_000);

  it('a client user cannot publish on node subjects nor subscribe to the cluster', async () => {
    const nc = await raw('client');
    const violations: PermissionViolationError[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error' && s.error instanceof PermissionViolationError) violations.push(s.error);
    })();
    const forged = encodeEnvelope({ v: protocolVersion, kind: 'gossip.digest', from: 'n9', to: 'n1', reqId: '1', body: {} });
    for (const role of ['gossip', 'replica', 'handoff', 'aae', 'forward', 'admin', 'inspect']) nc.publish(`ringkv.${cluster}.node.n1.${role}`, forged);
    nc.publish(`ringkv.${cluster}.admin.cluster`, forged);
    nc.subscribe(`ringkv.${cluster}.>`);
    await nc.flush();
    await waitFor('the permission violations', async () => (violations.length >= 9 ? true : undefined), 5_000, 50);
    expect(violations.filter((v) => v.operation === 'publish').map((v) => v.subject).sort()).toEqual(
      [...['gossip', 'replica', 'handoff', 'aae', 'forward', 'admin', 'inspect'].map((r) => `ringkv.${cluster}.node.n1.${r}`), `ringkv.${cluster}.admin.cluster`].sort(),
    );
    expect(violations.some((v) => v.operation === 'subscription')).toBe(true);
    await nc.close();
  }, 20_000);

  it('an admin can: plan, hints and inspection answer', async () => {
    const admin = await ClusterAdmin.connect(opts('admin'));
    const client = await RingkvClient.connect(opts('admin'));
    try {
      const plan = await admin.plan().then(
        (ok) => ok.op,
        (e: RingkvError) => e.code,
      );
      // Nothing is staged: the node answers, and says so.
      expect(plan).toBe('NO_CHANGES');
      expect((await client.hints({ via: 'n1' })).nodeId).toBe('n1');
    } finally {
      await admin.close();
      await client.close();
    }
    const inspect = spawnSync(process.execPath, [ringkvBin, '--server', url, '--cluster', cluster, '--nkey', seed('admin'), '--cluster-secret-file', path.join(dataDir, 'cluster.secret'), 'inspect', 'n1'], { encoding: 'utf8' });
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain('coordinator');
  }, 30_000);

  it('without credentials NATS refuses: NATS_AUTH', async () => {
    const err = await RingkvClient.connect({ servers: url, cluster }).then(
      (c) => c.close(),
      (e: unknown) => e,
    );
    expect((err as RingkvError).code).toBe('NATS_AUTH');
    await sleep(10);
  });
});

describe('infra/nats-server.secure.conf', () => {
  it('is the generator output for the default cluster with passwords from the environment', async () => {
    const { secureNatsConfig, passwordIdentities } = await import('../../src/server/secure-nats.js');
    const shipped = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'infra', 'nats-server.secure.conf'), 'utf8');
    expect(shipped.endsWith(secureNatsConfig('ringkv', passwordIdentities))).toBe(true);
  });
});
