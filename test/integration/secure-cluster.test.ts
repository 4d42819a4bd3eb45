/**
 * `ringkv up --secure` on a real nats-server with its generated users and permissions
 * (src/server/secure-nats.ts): nodes serve with the node nkey; a client user puts and gets (every
 * acknowledged write reads back) but cannot publish on node subjects, cannot listen to the
 * cluster's traffic and cannot run admin operations (NATS_PERMISSION, exit 12); an admin can; no
 * credentials is NATS_AUTH. Replies: each user subscribes only to its own inbox family, so a client
 * can neither read nor write another role's or another client user's answers, nor make a node
 * answer onto a cluster subject; nodes' own requests (the cluster probe, the dashboard's questions)
 * are answered in the node family; an admin cannot publish node-to-node inspection
 * (inspect.correlate). The shipped infra/nats-server.secure.conf is what the generator writes.
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
import { hintsOperation } from '../../src/client/node-operations.js';
import { RequestSession } from '../../src/client/request-session.js';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { freePort, sleep } from '../../src/bench/free-port.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { nodesAnswering } from '../../src/server/cluster-probe.js';
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
  const prefix = (role: SecureRole) => local.secure!.inboxPrefixes[role];
  const opts = (role: SecureRole) => ({ servers: url, cluster, nkeyFile: seed(role), inboxPrefix: prefix(role), timeoutMs: 3000 });
  const authOf = (seedFile: string) => nkeyAuthenticator(new TextEncoder().encode(readFileSync(seedFile, 'utf8').trim()));
  const raw = (role: SecureRole): Promise<NatsConnection> => connect({ servers: url, authenticator: authOf(seed(role)), inboxPrefix: prefix(role) });
  /** The CLI as the banner says to run it for a role. */
  const cliAs = (role: SecureRole, ...args: string[]) =>
    spawnSync(process.execPath, [ringkvBin, '--server', url, '--cluster', cluster, '--nkey', seed(role), '--inbox-prefix', prefix(role), ...args], { encoding: 'utf8' });
  /** The permission violations NATS reports to a connection, as they come. */
  const violationsOf = (nc: NatsConnection): PermissionViolationError[] => {
    const seen: PermissionViolationError[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error' && s.error instanceof PermissionViolationError) seen.push(s.error);
    })();
    return seen;
  };

  let dataDir: string;
  beforeAll(async () => {
    ensureBuilt();
    url = `nats://127.0.0.1:${await freePort()}`;
    dataDir = tempDir('ringkv-secure-');
    local = await up({ nodes: 3, dataDir, server: url, cluster, partitions: 16, secure: true, secureClients: ['alice'], quiet: true, nodeArgs: ['--gossip-round-ms', '200'] });
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
    try {
      const refused = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
      for (const err of [await refused(admin.plan()), await refused(admin.commit({ via: 'n1' })), await refused(admin.hints({ via: 'n1' })), await refused(admin.aae('pause', { via: 'n2' }))]) {
        expect(err).toBeInstanceOf(RingkvError);
        expect((err as RingkvError).code).toBe('NATS_PERMISSION');
      }
    } finally {
      await admin.close();
    }
    const cli = cliAs('client', 'cluster', 'plan');
    expect(cli.status, cli.stderr).toBe(exitCodes.forbidden);
    expect(cli.stderr).toContain('NATS_PERMISSION');
    for (const args of [['inspect', 'n1'], ['hints'], ['transfers']]) {
      const r = cliAs('client', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(exitCodes.forbidden);
      expect(r.stderr).toContain('NATS_PERMISSION');
    }
  }, 30_000);

  it('a read-only client user (reader) reads, and cannot write: NATS refuses its puts, a node its writes sent on a read subject', async () => {
    const writer = await RingkvClient.connect(opts('client'));
    const reader = await RingkvClient.connect(opts('reader'));
    const nc = await raw('reader');
    try {
      await waitFor('the cluster to take a put', async () => (await writer.putString('ro:key', 'written').then(() => true, () => undefined)), 30_000, 200);
      // Reads: through the queue group, client-driven from the replicas, at a chosen node; status.
      expect((await reader.getString('ro:key')).values).toEqual(['written']);
      expect((await reader.getString('ro:key', { r: 3 })).values).toEqual(['written']);
      expect((await reader.getString('ro:key', { via: 'n2' })).values).toEqual(['written']);
      expect((await reader.status()).members).toHaveLength(3);
      // Writes: NATS refuses the publish (put, delete, at a chosen node or not).
      const refused = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
      for (const err of [await refused(reader.putString('ro:key', 'overwritten')), await refused(reader.putString('ro:new', 'x', { via: 'n1' })), await refused(reader.delete('ro:key'))]) {
        expect(err).toBeInstanceOf(RingkvError);
        expect((err as RingkvError).code).toBe('NATS_PERMISSION');
      }
      // A write published on the subjects it may use (a get's) is refused by the node: WRONG_SUBJECT.
      const te = new TextEncoder();
      const put = encodeEnvelope({ v: protocolVersion, kind: 'api.put', from: 'reader', to: '', reqId: 'w', body: { key: te.encode('ro:key'), value: te.encode('overwritten') } });
      const del = encodeEnvelope({ v: protocolVersion, kind: 'api.del', from: 'reader', to: '', reqId: 'd', body: { key: te.encode('ro:key'), context: null } });
      for (const subject of [`ringkv.${cluster}.api.get`, `ringkv.${cluster}.node.n1.api.get`, `ringkv.${cluster}.node.n1.api.local.get`, `ringkv.${cluster}.api.status`]) {
        for (const bytes of [put, del]) {
          const answer = decodeEnvelope((await nc.request(subject, bytes, { timeout: 3000 })).data);
          expect(answer, subject).toMatchObject({ kind: 'error', body: { code: 'WRONG_SUBJECT' } });
        }
      }
      expect((await writer.getString('ro:key', { r: 3 })).values).toEqual(['written']);
      expect((await writer.getString('ro:new', { r: 3 })).found).toBe(false);
    } finally {
      await nc.close();
      await reader.close();
      await writer.close();
    }
  }, 60_000);

  it('a client user cannot publish on node subjects nor subscribe to the cluster', async () => {
    const nc = await raw('client');
    const violations = violationsOf(nc);
    const forged = encodeEnvelope({ v: protocolVersion, kind: 'gossip.digest', from: 'n9', to: 'n1', reqId: '1', body: {} });
    const roles = ['gossip', 'replica', 'handoff', 'aae', 'forward', 'inspect-peer', 'admin', 'inspect'];
    for (const role of roles) nc.publish(`ringkv.${cluster}.node.n1.${role}`, forged);
    nc.publish(`ringkv.${cluster}.admin.cluster`, forged);
    nc.subscribe(`ringkv.${cluster}.>`);
    await nc.flush();
    await waitFor('the permission violations', async () => (violations.length >= roles.length + 2 ? true : undefined), 5_000, 50);
    expect(violations.filter((v) => v.operation === 'publish').map((v) => v.subject).sort()).toEqual(
      [...roles.map((r) => `ringkv.${cluster}.node.n1.${r}`), `ringkv.${cluster}.admin.cluster`].sort(),
    );
    expect(violations.some((v) => v.operation === 'subscription')).toBe(true);
    await nc.close();
  }, 20_000);

  it('an admin can: plan, hints and inspection answer', async () => {
    const admin = await ClusterAdmin.connect(opts('admin'));
    try {
      const plan = await admin.plan().then(
        (ok) => ok.op,
        (e: RingkvError) => e.code,
      );
      // Nothing is staged: the node answers, and says so.
      expect(plan).toBe('NO_CHANGES');
      expect((await admin.hints({ via: 'n1' })).nodeId).toBe('n1');
    } finally {
      await admin.close();
    }
    const inspect = cliAs('admin', '--cluster-secret-file', path.join(dataDir, 'cluster.secret'), 'inspect', 'n1');
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain('coordinator');
    // A trace follows the request on every node it touches: the correlation between nodes travels
    // on inspect-peer, which only nodes may publish to, and still works.
    const trace = cliAs('admin', '--cluster-secret-file', path.join(dataDir, 'cluster.secret'), 'trace', 'put', 'traced', 'v');
    expect(trace.status, trace.stderr).toBe(0);
    expect(trace.stdout).toContain('coordinator');
  }, 30_000);

  it('an admin cannot publish node-to-node inspection (inspect.correlate) nor any node subject', async () => {
    const nc = await raw('admin');
    const violations = violationsOf(nc);
    const correlate = encodeEnvelope({ v: protocolVersion, kind: 'inspect.correlate', from: 'n2', to: 'n1', reqId: '', body: { session: 's', origin: 'n2', reqId: 'c1' } });
    const roles = ['inspect-peer', 'gossip', 'replica', 'handoff', 'aae', 'forward'];
    for (const role of roles) nc.publish(`ringkv.${cluster}.node.n1.${role}`, correlate);
    await nc.flush();
    await waitFor('the permission violations', async () => (violations.length >= roles.length ? true : undefined), 5_000, 50);
    expect(violations.map((v) => `${v.operation} ${v.subject}`).sort()).toEqual(roles.map((r) => `publish ringkv.${cluster}.node.n1.${r}`).sort());
    await nc.close();
  }, 20_000);

  it("a client user can neither subscribe to nor publish into another role's or another client user's inbox", async () => {
    const nc = await raw('client');
    const violations = violationsOf(nc);
    const others = ['_INBOX.>', `${prefix('admin')}.>`, `${prefix('node')}.>`, `${local.secure!.clients.alice!.inboxPrefix}.>`];
    for (const s of others) nc.subscribe(s);
    const into = ['_INBOX.x', `${prefix('admin')}.x`, `${prefix('node')}.x`, `${local.secure!.clients.alice!.inboxPrefix}.x`, `${prefix('client')}.x`];
    for (const s of into) nc.publish(s, new Uint8Array([1]));
    await nc.flush();
    await waitFor('the permission violations', async () => (violations.length >= others.length + into.length ? true : undefined), 5_000, 50);
    expect(violations.filter((v) => v.operation === 'subscription').map((v) => v.subject).sort()).toEqual([...others].sort());
    expect(violations.filter((v) => v.operation === 'publish').map((v) => v.subject).sort()).toEqual([...into].sort());
    await nc.close();
    // Alice, a client user of her own, works in her own family and cannot read the shared client's.
    const alice = local.secure!.clients.alice!;
    const client = await RingkvClient.connect({ servers: url, cluster, nkeyFile: alice.seed, inboxPrefix: alice.inboxPrefix, timeoutMs: 3000 });
    try {
      await client.putString('alice-key', 'a');
      expect((await client.getString('alice-key')).values).toEqual(['a']);
    } finally {
      await client.close();
    }
    const aliceNc = await connect({ servers: url, authenticator: authOf(alice.seed), inboxPrefix: alice.inboxPrefix });
    const aliceViolations = violationsOf(aliceNc);
    aliceNc.subscribe(`${prefix('client')}.>`);
    await aliceNc.flush();
    await waitFor('the permission violation', async () => (aliceViolations.length >= 1 ? true : undefined), 5_000, 50);
    expect(aliceViolations[0]).toMatchObject({ operation: 'subscription', subject: `${prefix('client')}.>` });
    await aliceNc.close();
  }, 30_000);

  it('a client without its inbox prefix is told so: NATS_PERMISSION naming --inbox-prefix', async () => {
    const client = await RingkvClient.connect({ servers: url, cluster, nkeyFile: seed('client'), timeoutMs: 3000 });
    try {
      const err = await client.putString('k', 'v').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RingkvError);
      expect((err as RingkvError).code).toBe('NATS_PERMISSION');
      expect((err as RingkvError).message).toContain('--inbox-prefix');
    } finally {
      await client.close();
    }
    const bad = await RingkvClient.connect({ servers: url, cluster, nkeyFile: seed('client'), inboxPrefix: 'replies.>' }).then(
      (c) => c.close(),
      (e: unknown) => e,
    );
    expect((bad as RingkvError).code).toBe('BAD_REQUEST');
  }, 20_000);

  it('a client cannot make a node answer onto a cluster subject: nodes answer only inboxes', async () => {
    // The node user may subscribe to the whole cluster: it watches where answers land.
    const watcher = await raw('node');
    const landed: string[] = [];
    watcher.subscribe(`ringkv.${cluster}.node.zz.>`, { callback: (_e, m) => landed.push(m.subject) });
    await watcher.flush();
    const nc = await raw('client');
    const status = encodeEnvelope({ v: protocolVersion, kind: 'api.status', from: 'c', to: '', reqId: '1', body: {} });
    nc.publish(`ringkv.${cluster}.api.status`, status, { reply: `ringkv.${cluster}.node.zz.gossip` });
    nc.publish(`ringkv.${cluster}.node.n1.api.status`, status, { reply: `ringkv.${cluster}.node.zz.replica` });
    // The same request with its own inbox is answered: the node did take the requests above.
    const answer = await nc.request(`ringkv.${cluster}.node.n1.api.status`, status, { timeout: 3000 });
    expect(decodeEnvelope(answer.data)).toMatchObject({ kind: 'api.status.ok' });
    await sleep(300);
    expect(landed).toEqual([]);
    await nc.close();
    await watcher.close();
  }, 20_000);

  it("nodes' own requests are answered in the node inbox family: the cluster probe and the dashboard's questions", async () => {
    const nc = await raw('node');
    try {
      // Before per-role inboxes the node user could not subscribe to any inbox: the probe heard nobody.
      const answering = await nodesAnswering(nc, cluster);
      expect(answering.map((a) => a.node).sort()).toEqual(['n1', 'n2', 'n3']);
      // What the dashboard asks every member, over the node's connection.
      const session = await RequestSession.open({ connection: nc, cluster, coordination: 'cluster', timeoutMs: 3000 });
      expect((await hintsOperation(session, { via: 'n2' })).nodeId).toBe('n2');
      await session.close();
    } finally {
      await nc.close();
    }
  }, 20_000);

  it('the bench runs as a client user with its inbox prefix', async () => {
    // The bench loads at once: wait until the cluster serves (when this test runs alone).
    const client = await RingkvClient.connect(opts('client'));
    await waitFor('the cluster to take a put', async () => (await client.putString('probe', 'x').then(() => true, () => undefined)), 30_000, 200);
    await client.close();
    const r = cliAs('client', 'bench', '--records', '50', '--concurrency', '4', '--duration', '500ms', '--warmup', '100ms', '--json');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { load: { records: number; errors: number }; levels: { concurrency: number; ops: number; errors: number }[] };
    expect(report.load, JSON.stringify(report.load)).toMatchObject({ records: 50, errors: 0 });
    expect(report.levels.map((l) => l.concurrency)).toEqual([4]);
    expect(report.levels[0]!.ops).toBeGreaterThan(0);
    expect(report.levels[0], JSON.stringify(report.levels[0])).toMatchObject({ errors: 0 });
  }, 60_000);

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
    const { roleUsers } = await import('../../src/server/secure-nats.js');
    expect(shipped.endsWith(secureNatsConfig('ringkv', roleUsers(passwordIdentities)))).toBe(true);
  });
});
