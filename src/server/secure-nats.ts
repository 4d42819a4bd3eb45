/**
 * A secured nats-server for one ringkv cluster: users, each with exactly the publish and subscribe
 * permissions of its role (src/protocol/subjects.ts), so that NATS itself keeps a client off the
 * admin and node subjects, and each user with an inbox family of its own (its `inboxPrefix`), so
 * that no user reads or answers into the replies meant for another:
 *
 * - client: publish the client operations (`ringkv.<c>.api.>`, `ringkv.<c>.node.*.api.>`); subscribe
 *   to its own inbox family only (`_INBOX_client.>`, or `_INBOX_client_<name>.>` for a named client).
 * - reader: a read-only client: publish `get` and `status` (`ringkv.<c>.api.get`,
 *   `ringkv.<c>.api.status`, `ringkv.<c>.node.*.api.get`, `...api.status`, `...api.local.get`) and
 *   nothing that writes; each node takes an operation only on its own subject (router.ts), so this
 *   user cannot put or delete; subscribe to `_INBOX_reader.>`.
 * - admin: what a client may, and the admin operations (`ringkv.<c>.admin.>`,
 *   `ringkv.<c>.node.*.admin.>`), inspection (`ringkv.<c>.node.*.inspect`) and service discovery
 *   (`$SRV.>`, what `nats micro ls` asks); subscribe to its own inbox family (`_INBOX_admin.>`).
 * - node: everything of its cluster (`ringkv.<c>.>`, publish and subscribe), the service discovery
 *   subjects it answers (`$SRV.>`) and asks its fellow nodes on (`$SRV.*.ringkv`: the cluster probe,
 *   the dashboard's figures), its own inbox family (`_INBOX_node.>`: the answers to what a
 *   node asks, the cluster probe's and the dashboard's), and publish into every user's inbox family
 *   (answers, streamed inspect records, service discovery answers).
 *
 * Why nodes publish into the inbox families rather than with `allow_responses` (publish only to the
 * reply subject of a message received): the claimant answers a cluster change that another node
 * passed it inside a gossip message (the reply subject travels in the body, not as the NATS reply),
 * answers to one batch of requests leave over several turns and an inspect follow streams records
 * for minutes (more than one response per request, so `max` cannot be 1), and nats-server 2.9 keeps
 * each reply subject in a map it scans whole on every delivery once it holds 4096 entries, which
 * with many responses allowed per request and an expiry of minutes it always would (a tenth of
 * the throughput: src/bench/reply-permission-cost.ts). Nodes are
 * trusted with every subject of the cluster anyway; what NATS must stop is one client reading or
 * faking another's answers, which the inbox families do. A request's reply subject is the
 * requester's choice and NATS does not check it against the requester's permissions, so nodes
 * answer only reply subjects of the `_INBOX` family (src/adapters/nats/nats-transport.ts): a client
 * cannot make a node publish on a cluster subject for it.
 *
 * `secureNatsConfig` writes the configuration for any users: nkeys (what `ringkv up --secure`
 * generates) or user and password (infra/nats-server.secure.conf, which reads the passwords from the
 * environment). `ensureSecureNats` keeps an nkey seed per user and the configuration in a directory
 * (mode 0700, files 0600), made once and reused, so a restarted `up --secure` keeps its credentials.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { adminPublishSubjects, clientPublishSubjects, readerPublishSubjects } from '../protocol/subjects.js';
import { serviceName } from './service-discovery.js';

export type SecureRole = 'node' | 'admin' | 'client' | 'reader';
export const secureRoles: readonly SecureRole[] = ['node', 'admin', 'client', 'reader'];

/** How a role's user is named in the configuration: an nkey public key, or a user and a password expression. */
export type SecureIdentity = { nkey: string } | { user: string; password: string };

export interface Permissions {
  publish: string[];
  subscribe: string[];
}

/** One user of the configuration: its role, how it authenticates, and the inbox family it alone may subscribe to. */
export interface SecureUser {
  role: SecureRole;
  identity: SecureIdentity;
  inboxPrefix: string;
  /** Written as the comment above the user (the role, and a named client's name). */
  label: string;
}

/** The inbox prefix of a role's user: give it to that user's processes (--inbox-prefix, RINGKV_INBOX_PREFIX). */
export function roleInboxPrefix(role: SecureRole): string {
  return `_INBOX_${role}`;
}

/** Names a client user may have: one subject token (its inbox prefix carries it). */
export const clientNamePattern = /^[A-Za-z0-9-]{1,32}$/;

/** The inbox prefix of a named client user, apart from the shared client user's and every other named one's. */
export function clientInboxPrefix(name: string): string {
  if (!clientNamePattern.test(name)) throw new Error(`not a client name: ${JSON.stringify(name)} (letters, digits and -, at most 32)`);
  return `_INBOX_client_${name}`;
}

/** The users of a cluster, one per role, each with its role's inbox prefix. */
export function roleUsers(identities: Record<SecureRole, SecureIdentity>): SecureUser[] {
  return secureRoles.map((role) => ({ role, identity: identities[role], inboxPrefix: roleInboxPrefix(role), label: role }));
}

/**
 * The permissions of each user (what the configuration grants, and what tests check): nodes may
 * publish into every user's inbox family, each user subscribe to its own only.
 */
export function userPermissions(cluster: string, users: readonly SecureUser[]): Permissions[] {
  const inboxes = [...new Set(users.map((u) => `${u.inboxPrefix}.>`))];
  return users.map((u) => {
    const own = `${u.inboxPrefix}.>`;
    switch (u.role) {
      case 'client':
        return { publish: clientPublishSubjects(cluster), subscribe: [own] };
      case 'reader':
        return { publish: readerPublishSubjects(cluster), subscribe: [own] };
      case 'admin':
        return { publish: [...adminPublishSubjects(cluster), '$SRV.>'], subscribe: [own] };
      case 'node':
        // `$SRV.*.ringkv`: what a node asks its fellow nodes through service discovery (the cluster
        // probe's PING before it serves, the dashboard's STATS).
        return { publish: [`ringkv.${cluster}.>`, `$SRV.*.${serviceName}`, ...inboxes], subscribe: [`ringkv.${cluster}.>`, '$SRV.>', own] };
    }
  });
}

const quote = (s: string) => JSON.stringify(s);
const list = (subjects: string[]) => `[${subjects.map(quote).join(', ')}]`;

/** The configuration for these users (password expressions are written as given: `$VAR` reads the environment). */
export function secureNatsConfig(cluster: string, users: readonly SecureUser[]): string {
  const prefixes = users.map((u) => u.inboxPrefix);
  if (new Set(prefixes).size !== prefixes.length) throw new Error('every user needs an inbox prefix of its own');
  const perms = userPermissions(cluster, users);
  const blocks = users.map((u, i) => {
    const id = u.identity;
    const who = 'nkey' in id ? `nkey: ${quote(id.nkey)}` : `user: ${quote(id.user)}, password: ${id.password}`;
    const p = perms[i]!;
    return [
      `    # ${u.label}: replies arrive on ${u.inboxPrefix}.>`,
      `    { ${who}`,
      `      permissions: {`,
      `        publish: { allow: ${list(p.publish)} }`,
      `        subscribe: { allow: ${list(p.subscribe)} }`,
      `      }`,
      `    }`,
    ].join('\n');
  });
  return [
    `# ringkv cluster "${cluster}": users for nodes, admins, clients and read-only clients, each with exactly the subjects`,
    '# of its role and an inbox family of its own (README "Security"). Made by src/server/secure-nats.ts.',
    'max_payload: 8MB',
    'jetstream: disabled',
    'authorization {',
    '  users = [',
    blocks.join('\n'),
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
  /** The inbox prefix of each role's user: give it with --inbox-prefix or RINGKV_INBOX_PREFIX. */
  inboxPrefixes: Record<SecureRole, string>;
  /** Named client users (each apart from the others and from the shared client user): seed and inbox prefix. */
  clients: Record<string, { seed: string; inboxPrefix: string }>;
}

/** The seed in `file`, made (mode 0600) when there is none yet. */
function ensureSeed(file: string): ReturnType<typeof nkeys.createUser> {
  let pair;
  if (existsSync(file)) pair = nkeys.fromSeed(new TextEncoder().encode(readFileSync(file, 'utf8').trim()));
  else {
    pair = nkeys.createUser();
    writeFileSync(file, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return pair;
}

/**
 * Makes (or reuses) the nkeys and the configuration in `dir`: a user per role, and one more client
 * user per name in `clientNames` (seed `client-<name>.nk`, inbox prefix `_INBOX_client_<name>`).
 */
export function ensureSecureNats(dir: string, cluster: string, clientNames: readonly string[] = []): SecureNats {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const seeds = {} as Record<SecureRole, string>;
  const identities = {} as Record<SecureRole, SecureIdentity>;
  for (const role of secureRoles) {
    const file = join(dir, `${role}.nk`);
    seeds[role] = file;
    identities[role] = { nkey: ensureSeed(file).getPublicKey() };
  }
  const users = roleUsers(identities);
  const clients: SecureNats['clients'] = {};
  for (const name of new Set(clientNames)) {
    const inboxPrefix = clientInboxPrefix(name);
    const file = join(dir, `client-${name}.nk`);
    clients[name] = { seed: file, inboxPrefix };
    users.push({ role: 'client', identity: { nkey: ensureSeed(file).getPublicKey() }, inboxPrefix, label: `client ${name}` });
  }
  const config = join(dir, 'nats-server.conf');
  writeFileSync(config, secureNatsConfig(cluster, users), { mode: 0o600 });
  chmodSync(config, 0o600);
  const inboxPrefixes = Object.fromEntries(secureRoles.map((r) => [r, roleInboxPrefix(r)])) as Record<SecureRole, string>;
  return { dir, config, seeds, inboxPrefixes, clients };
}

/** The identities of infra/nats-server.secure.conf: fixed user names, passwords from the environment. */
export const passwordIdentities: Record<SecureRole, SecureIdentity> = {
  node: { user: 'ringkv-node', password: '$RINGKV_NODE_PASSWORD' },
  admin: { user: 'ringkv-admin', password: '$RINGKV_ADMIN_PASSWORD' },
  client: { user: 'ringkv-client', password: '$RINGKV_CLIENT_PASSWORD' },
  reader: { user: 'ringkv-reader', password: '$RINGKV_READER_PASSWORD' },
};
