/**
 * Test support: a certificate authority, a server certificate for 127.0.0.1 and client certificates,
 * made with openssl in a temporary directory, for a nats-server with `tls { verify: true }`.
 * `openssl()` says whether the tool is there, so a test can skip with that reason.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';

export function hasOpenssl(): boolean {
  return spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
}

function run(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

export interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate and key signed by the CA. */
  client(name: string): { cert: string; key: string };
}

/** A CA (`name`), and a server certificate signed by it for 127.0.0.1 and localhost. */
export function makePki(dir: string, name = 'ringkv-test-ca'): Pki {
  const file = (f: string) => path.join(dir, f);
  run(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.pem`)]);
  const sign = (cn: string, ext: string) => {
    writeFileSync(file(`${cn}.ext`), ext);
    run(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', file(`${cn}.key`), '-out', file(`${cn}.csr`)]);
    run(dir, ['x509', '-req', '-in', file(`${cn}.csr`), '-CA', file(`${name}.pem`), '-CAkey', file(`${name}.key`), '-CAcreateserial', '-days', '2', '-extfile', file(`${cn}.ext`), '-out', file(`${cn}.pem`)]);
    return { cert: file(`${cn}.pem`), key: file(`${cn}.key`) };
  };
  const server = sign(`${name}-server`, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  return {
    ca: file(`${name}.pem`),
    serverCert: server.cert,
    serverKey: server.key,
    client: (cn) => sign(cn, 'extendedKeyUsage=clientAuth\n'),
  };
}
