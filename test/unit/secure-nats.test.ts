/**
 * The secured nats-server configuration (src/server/secure-nats.ts): each user subscribes only to
 * its own inbox family, nodes may publish into every user's family, no two users share one, and the
 * role permissions keep clients off admin and node subjects. The live behaviour on a real
 * nats-server is test/integration/secure-cluster.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { clientInboxPrefix, roleInboxPrefix, roleUsers, secureNatsConfig, userPermissions, type SecureUser } from '../../src/server/secure-nats.js';

const users: SecureUser[] = [
  ...roleUsers({ node: { nkey: 'UNODE' }, admin: { nkey: 'UADMIN' }, client: { nkey: 'UCLIENT' }, reader: { nkey: 'UREADER' } }),
  { role: 'client', identity: { nkey: 'UALICE' }, inboxPrefix: clientInboxPrefix('alice'), label: 'client alice' },
];

describe('secure nats-server configuration', () => {
  const perms = userPermissions('c', users);
  const of = (label: string) => perms[users.findIndex((u) => u.label === label)]!;

  it('gives every user its own inbox family to subscribe to, and nothing of anyone else', () => {
    expect(of('client').subscribe).toEqual(['_INBOX_client.>']);
    expect(of('client alice').subscribe).toEqual(['_INBOX_client_alice.>']);
    expect(of('admin').subscribe).toEqual(['_INBOX_admin.>']);
    expect(of('node').subscribe).toEqual(['ringkv.c.>', '$SRV.>', '_INBOX_node.>']);
    for (const p of perms) expect(p.subscribe).not.toContain('_INBOX.>');
  });

  it('lets only nodes publish into inboxes, into every family', () => {
    expect(of('node').publish).toEqual(['ringkv.c.>', '$SRV.*.ringkv', '_INBOX_node.>', '_INBOX_admin.>', '_INBOX_client.>', '_INBOX_reader.>', '_INBOX_client_alice.>']);
    for (const label of ['client', 'client alice', 'admin', 'reader']) expect(of(label).publish.filter((s) => s.startsWith('_INBOX'))).toEqual([]);
    expect(of('client').publish).toEqual(['ringkv.c.api.>', 'ringkv.c.node.*.api.>']);
  });

  it('gives the read-only client the subjects of get and status, and none that writes', () => {
    expect(of('reader').publish).toEqual(['ringkv.c.api.get', 'ringkv.c.api.status', 'ringkv.c.node.*.api.get', 'ringkv.c.node.*.api.status', 'ringkv.c.node.*.api.local.get']);
    expect(of('reader').subscribe).toEqual(['_INBOX_reader.>']);
    expect(of('admin').publish).not.toContain('ringkv.c.node.*.inspect-peer');
  });

  it('refuses two users with one inbox prefix, and names that are no subject token', () => {
    expect(() => secureNatsConfig('c', [...users, { ...users[2]!, identity: { nkey: 'UOTHER' } }])).toThrow(/inbox prefix of its own/);
    expect(() => clientInboxPrefix('a.b')).toThrow();
    expect(() => clientInboxPrefix('*')).toThrow();
    expect(roleInboxPrefix('admin')).toBe('_INBOX_admin');
  });

  it('writes each user with its permissions and where its replies arrive', () => {
    const conf = secureNatsConfig('c', users);
    expect(conf).toContain('# client alice: replies arrive on _INBOX_client_alice.>');
    expect(conf).toContain('{ nkey: "UALICE"');
    expect(conf).toContain('subscribe: { allow: ["_INBOX_client_alice.>"] }');
  });
});
