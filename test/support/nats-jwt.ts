/**
 * Test support: NATS decentralized auth (operator mode) made in the test, so a creds file can be
 * tried against a real nats-server without nsc. An operator signs an account, the account signs a
 * user; the server gets the operator JWT and the account JWT preloaded (`resolver: MEMORY`), the
 * client a creds file (user JWT and seed, as nsc writes it).
 *
 * The JWTs are the NATS v2 claims (github.com/nats-io/jwt): header {typ: JWT, alg: ed25519-nkey},
 * base64url segments, the signature an ed25519 signature of `header.payload` by the issuer's nkey.
 * The nkeys come from nats.js itself (@nats-io/transport-node re-exports @nats-io/nkeys).
 */
import { createHash } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const text = new TextDecoder();

function encodeJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  // jti: the hash of the claims without it, as the jwt library makes it.
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url');
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const body = b64url(JSON.stringify(claims));
  const sig = issuer.sign(new TextEncoder().encode(`${head}.${body}`));
  return `${head}.${body}.${b64url(sig)}`;
}

const noLimits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface OperatorSetup {
  /** nats-server configuration lines: operator, resolver MEMORY, the preloaded account. */
  serverConfig: string;
  /** A creds file for a user of the account (what --creds / NATS_CREDS take). */
  creds(name: string): string;
  /** A creds file for a user of an account the server does not know: refused. */
  strangerCreds(name: string): string;
}

export function operatorSetup(): OperatorSetup {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const operatorJwt = encodeJwt(operator, operator.getPublicKey(), 'ringkv-test-operator', { type: 'operator' });
  const accountJwt = encodeJwt(operator, account.getPublicKey(), 'ringkv-test-account', { type: 'account', limits: noLimits });
  const userCreds = (signer: KeyPair, name: string) => {
    const user = nkeys.createUser();
    const jwt = encodeJwt(signer, user.getPublicKey(), name, { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
    return credsFile(jwt, text.decode(user.getSeed()));
  };
  return {
    serverConfig: [`operator: ${operatorJwt}`, 'resolver: MEMORY', 'resolver_preload: {', `  ${account.getPublicKey()}: ${accountJwt}`, '}'].join('\n'),
    creds: (name) => userCreds(account, name),
    strangerCreds: (name) => userCreds(nkeys.createAccount(), name),
  };
}

/** The creds file format nsc writes (and nats.js credsAuthenticator reads). */
export function credsFile(jwt: string, seed: string): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    seed,
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}
