/**
 * A secured nats-server for one ringkv cluster: three users, each with exactly the publish and
 * subscribe permissions of its role (src/protocol/subjects.ts), so that NATS itself keeps a client
 * off the admin and node subjects:
 *
 * - client: publish the client operations (`ringkv.<c>.api.>`, `ringkv.<c>.node.*.api`); subscribe
 *   to its reply inbox (`_INBOX.>`).
 * - admin: what a client may, and the admin operations (`ringkv.<c>.admin.>`,
 *   `ringkv.<c>.node.*.admin`), inspection (`ringkv.<c>.node.*.inspect`) and service discovery
 *   (`$SRV.>`, what `nats micro ls` asks).
 * - node: everything of its cluster (`ringkv.<c>.>`, publish and subscribe), replies on requesters'
 *   inboxes (`_INBOX.>`: answers, streamed inspect records, service discovery answers) and the
 *   service discovery subjects it answers (`$SRV.>`).
 *
 * `secureNatsConfig` writes the configuration for any identities: nkeys (what `ringkv up --secure`
 * generates) or user and password (infra/nats-server.secure.conf, which reads the passwords from the
 * environment). `ensureSecureNats` keeps an nkey seed per role and the configuration in a directory
 * (mode 0700, files 0600), made once and reused, so a restarted `up --secure` keeps its credentials.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { adminPublishSubjects, clientPublishSubjects } from '../protocol/subjects.js';

export type SecureRole = 'node' | 'admin' | 'client';
export const secureRoles: readonly SecureRole[] = ['node', 'admin', 'client'];

/** How a role's user is named in the configuration: an nkey public key, or a user and a password expression. */
export type SecureIdentity = { nkey: string } | { user: string; password: string };

export interface Permissions {
  publish: string[];
  subscribe: string[];
}

/** The permissions of each role for a cluster: what the configuration grants, and what tests check. */
export function rolePermissions(cluster: string): Record<SecureRole, Permissions> {
  return {
    client: { publish: clientPublishSubjects(cluster), subscribe: ['_INBOX.>'] },
    admin: { publish: [...adminPublishSubjects(cluster), '$SRV.>'], subscribe: ['_INBOX.>'] },
    node: { publish: [`ringkv.${cluster}.>`, '_INBOX.>'], subscribe: [`ringkv.${cluster}.>`, '$SRV.>'] },
  };
}

const quote = (s: string) => JSON.stringify(s);
const list = (subjects: string[]) => `[${subjects.map(quote).join(', ')}]`;

/** The authorization block for these identities (password expressions are written as given: `$VAR` reads the environment). */
export function secureNatsConfig(cluster: string, identities: Record<SecureRole, SecureIdentity>): string {
  const perms = rolePermissions(cluster);
  const users = secureRoles.map((role) => {
    const id = identities[role];
    const who = 'nkey' in id ? `nkey: ${quote(id.nkey)}` : `user: ${quote(id.user)}, password: ${id.password}`;
    const p = perms[role];
    return [
      `    # ${role}`,
      `    { ${who}`,
      `      permissions: {`,
      `        publish: { allow: ${list(p.publish)} }`,
      `        subscribe: { allow: ${list(p.subscribe)} }`,
      `      }`,
      `    }`,
    ].join('\n');
  });
  return [
    `# ringkv cluster "${cluster}": users for nodes, admins and clients, each with exactly the subjects`,
    '# of its role (README "Security"). Made by src/server/secure-nats.ts.',
    'max_payload: 8MB',
    'jetstream: disabled',
    'authorization {',
    '  users = [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

export interface SecureNats {
  dir: string;
  /** The nats-server configuration file. */
  config: string;
  /** The nkey seed file of each role (mode 0600): give it with --nkey or NATS_NKEY. */
  seeds: Record<SecureRole, string>;
}

/** Makes (or reuses) the nkeys and the configuration in `dir`. */
export function ensureSecureNats(dir: string, cluster: string): SecureNats {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const seeds = {} as Record<SecureRole, string>;
  const identities = {} as Record<SecureRole, SecureIdentity>;
  for (const role of secureRoles) {
    const file = join(dir, `${role}.nk`);
    let pair;
    if (existsSync(file)) pair = nkeys.fromSeed(new TextEncoder().encode(readFileSync(file, 'utf8').trim()));
    else {
      pair = nkeys.createUser();
      writeFileSync(file, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
    }
    chmodSync(file, 0o600);
    seeds[role] = file;
    identities[role] = { nkey: pair.getPublicKey() };
  }
  const config = join(dir, 'nats-server.conf');
  writeFileSync(config, secureNatsConfig(cluster, identities), { mode: 0o600 });
  chmodSync(config, 0o600);
  return { dir, config, seeds };
}

/** The identities of infra/nats-server.secure.conf: fixed user names, passwords from the environment. */
export const passwordIdentities: Record<SecureRole, SecureIdentity> = {
  node: { user: 'ringkv-node', password: '$RINGKV_NODE_PASSWORD' },
  admin: { user: 'ringkv-admin', password: '$RINGKV_ADMIN_PASSWORD' },
  client: { user: 'ringkv-client', password: '$RINGKV_CLIENT_PASSWORD' },
};
