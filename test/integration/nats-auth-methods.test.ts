/**
 * Every NATS auth method, for a node process, the CLI and the client library, on a real nats-server
 * configured for it: an nkey seed, a creds file (operator mode: operator, account and user JWTs made
 * in the test, `resolver: MEMORY`), and TLS with a CA and a client certificate (`verify: true`).
 * The node gets its credentials from the nats CLI's environment, the CLI from its flags, the library
 * from its options; each puts and reads back. Wrong credentials fail with NATS_AUTH (exit 8) and the
 * output never carries the secret. (User/password and token: nats-auth.test.ts, nats-auth-cli.test.ts.)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, type ClientOptions } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';
import { ensureBuilt, ringkvBin } from '../support/cluster.js';
import { operatorSetup } from '../support/nats-jwt.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';
import { hasOpenssl, makePki } from '../support/tls-certs.js';
import { testSecret } from '../support/cluster-secret.js';
import { waitFor } from '../support/wait-for.js';

/** Every node of these tests needs the cluster secret (issue 17): one for all, through the environment. */
const clusterSecret = testSecret();

interface Method {
  name: string;
  /** The server's configuration for this method (written after max_payload). */
  serverConfig: string;
  /** What the node is given in its environment. */
  nodeEnv: Record<string, string>;
  /** The CLI's flags. */
  cliFlags: string[];
  /** The library's options. */
  clientOptions: Partial<ClientOptions>;
  /** Wrong credentials: the CLI's flags, the library's options, and the secret that must not show. */
  wrongFlags: string[];
  wrongOptions: Partial<ClientOptions>;
  wrongSecret: string;
}

const seedOf = (pair: ReturnType<typeof nkeys.createUser>) => new TextDecoder().decode(pair.getSeed());

function nkeyMethod(dir: string): Method {
  const user = nkeys.createUser();
  const stranger = nkeys.createUser();
  const seed = path.join(dir, 'user.nk');
  const wrong = path.join(dir, 'stranger.nk');
  writeFileSync(seed, seedOf(user), { mode: 0o600 });
  writeFileSync(wrong, seedOf(stranger), { mode: 0o600 });
  return {
    name: 'nkey seed',
    serverConfig: `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`,
    nodeEnv: { NATS_NKEY: seed },
    cliFlags: ['--nkey', seed],
    clientOptions: { nkeyFile: seed },
    wrongFlags: ['--nkey', wrong],
    wrongOptions: { nkeyFile: wrong },
    wrongSecret: seedOf(stranger),
  };
}

function credsMethod(dir: string): Method {
  const op = operatorSetup();
  const creds = path.join(dir, 'user.creds');
  const wrong = path.join(dir, 'stranger.creds');
  writeFileSync(creds, op.creds('ringkv-user'), { mode: 0o600 });
  writeFileSync(wrong, op.strangerCreds('stranger'), { mode: 0o600 });
  const wrongSeed = /SU[A-Z0-9]{50,}/.exec(readFileSync(wrong, 'utf8'))![0];
  return {
    name: 'creds file (JWT, operator mode)',
    serverConfig: op.serverConfig,
    nodeEnv: { NATS_CREDS: creds },
    cliFlags: ['--creds', creds],
    clientOptions: { credsFile: creds },
    wrongFlags: ['--creds', wrong],
    wrongOptions: { credsFile: wrong },
    wrongSecret: wrongSeed,
  };
}

function tlsMethod(dir: string): Method {
  const pki = makePki(dir);
  const client = pki.client('ringkv-client');
  // A certificate from a CA the server does not trust.
  const other = makePki(tempDir('ringkv-tls-other-'), 'stranger-ca').client('stranger');
  return {
    name: 'TLS with a client certificate',
    serverConfig: `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}", verify: true, timeout: 5 }`,
    nodeEnv: { NATS_CA: pki.ca, NATS_CERT: client.cert, NATS_KEY: client.key },
    cliFlags: ['--tls-ca', pki.ca, '--tls-cert', client.cert, '--tls-key', client.key],
    clientOptions: { caFile: pki.ca, certFile: client.cert, keyFile: client.key },
    wrongFlags: ['--tls-ca', pki.ca, '--tls-cert', other.cert, '--tls-key', other.key],
    wrongOptions: { caFile: pki.ca, certFile: other.cert, keyFile: other.key },
    wrongSecret: readFileSync(other.key, 'utf8').split('\n')[1]!,
  };
}

const makers: [string, (dir: string) => Method, string | undefined][] = [
  ['nkey', nkeyMethod, undefined],
  ['creds', credsMethod, undefined],
  ['tls', tlsMethod, hasOpenssl() ? undefined : 'openssl is not installed: no certificates can be made'],
];

for (const [label, make, skipReason] of makers) {
  describe.skipIf(skipReason !== undefined)(`NATS auth: ${label}${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
    let method: Method;
    let server: NatsServerHandle;
    let node: ChildProcess;
    let nodeOutput = '';
    beforeAll(async () => {
      ensureBuilt();
      const dir = tempDir(`ringkv-auth-${label}-`);
      method = make(dir);
      server = await startNatsServer({ config: method.serverConfig });
      node = spawn(process.execPath, [ringkvBin, 'node', '--id', 'n1', '--data', path.join(dir, 'n1'), '--members', 'n1', '--cluster', `auth${label}`, '--server', server.url], {
        env: { ...process.env, ...method.nodeEnv, RINGKV_CLUSTER_SECRET: clusterSecret },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      for (const s of [node.stdout!, node.stderr!]) s.on('data', (d: Buffer) => (nodeOutput = (nodeOutput + d.toString()).slice(-4000)));
    }, 60_000);
    afterAll(async () => {
      node?.kill('SIGKILL');
      await server?.stop();
    });

    const cli = (args: string[]) =>
      spawnSync(process.execPath, [ringkvBin, ...args, '--cluster', `auth${label}`, '--server', server.url], { env: { ...process.env, NATS_URL: '' }, encoding: 'utf8' });

    it('a node serves with credentials from its environment, and the CLI puts and gets with its flags', async () => {
      await waitFor(`the node to take a put (${nodeOutput})`, async () => (cli(['put', 'k', 'v1', '--w', '1', ...method.cliFlags]).status === 0 ? true : undefined), 30_000, 200);
      const got = cli(['get', 'k', '--r', '1', ...method.cliFlags]);
      expect(got.stderr).toBe('');
      expect(got.stdout).toContain('v1');
    }, 40_000);

    it('the client library connects with its options; every acknowledged write reads back', async () => {
      const client = await RingkvClient.connect({ servers: server.url, cluster: `auth${label}`, ...method.clientOptions });
      try {
        for (let i = 0; i < 20; i++) await client.putString(`lib-${i}`, `value-${i}`, { w: 1 });
        for (let i = 0; i < 20; i++) expect((await client.getString(`lib-${i}`, { r: 1 })).values).toEqual([`value-${i}`]);
      } finally {
        await client.close();
      }
    }, 30_000);

    it('wrong credentials: NATS_AUTH, exit 8, and the secret never shows', async () => {
      const r = cli(['get', 'k', '--r', '1', ...method.wrongFlags]);
      expect(r.status, r.stderr).toBe(8);
      expect(r.stderr).toContain('NATS_AUTH');
      expect(r.stderr + r.stdout).not.toContain(method.wrongSecret);
      const err = await RingkvClient.connect({ servers: server.url, cluster: `auth${label}`, ...method.wrongOptions }).then(
        (c) => c.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RingkvError);
      expect((err as RingkvError).code).toBe('NATS_AUTH');
      expect((err as RingkvError).message).not.toContain(method.wrongSecret);
    }, 30_000);

    it('a node with wrong credentials exits 8 without the secret in its output', () => {
      const dir = tempDir(`ringkv-auth-${label}-wrong-`);
      const wrongEnv: Record<string, string> =
        label === 'nkey' ? { NATS_NKEY: method.wrongOptions.nkeyFile! } : label === 'creds' ? { NATS_CREDS: method.wrongOptions.credsFile! } : { NATS_CA: method.wrongOptions.caFile!, NATS_CERT: method.wrongOptions.certFile!, NATS_KEY: method.wrongOptions.keyFile! };
      const r = spawnSync(process.execPath, [ringkvBin, 'node', '--id', 'x1', '--data', path.join(dir, 'x1'), '--members', 'x1', '--cluster', `auth${label}`, '--server', server.url], {
        env: { ...process.env, ...wrongEnv, RINGKV_CLUSTER_SECRET: clusterSecret },
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.status, r.stderr).toBe(8);
      expect(r.stderr + r.stdout).not.toContain(method.wrongSecret);
    }, 30_000);
  });
}
