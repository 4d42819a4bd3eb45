import { describe, expect, it } from 'vitest';
import {
  checkInboxPrefix,
  inboxPrefixOf,
  isInboxSubject,
  isNatsAuthRefused,
  mergeNatsSettings,
  natsConnectionOptions,
  NatsSettingsError,
  redactSecrets,
  redactUrl,
  secretsOf,
} from '../../src/adapters/nats/connection-options.js';

const files: Record<string, string> = { '/ca.pem': 'CA', '/c.pem': 'CERT', '/k.pem': 'KEY', '/seed': 'SUAEXAMPLE\n' };
const readFile = (p: string): string => {
  const f = files[p];
  if (f === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return f;
};

describe('NATS connection options', () => {
  it('flags win over the nats CLI environment variables, and empty values count as unset', () => {
    const s = mergeNatsSettings({ user: 'flag', token: '' }, { NATS_USER: 'env', NATS_PASSWORD: 'pw', NATS_TOKEN: 'tok', NATS_URL: 'nats://h:1' });
    expect(s).toEqual({ user: 'flag', password: 'pw', token: 'tok', servers: 'nats://h:1' });
  });

  it('takes user and password out of a nats://user:pass@host URL', () => {
    const o = natsConnectionOptions({ servers: 'nats://alice:s%40cret@127.0.0.1:4300' }, readFile);
    expect(o).toEqual({ servers: ['127.0.0.1:4300'], user: 'alice', pass: 's@cret' });
  });

  it('a tls:// URL requires TLS; CA, certificate and key are read before connecting', () => {
    expect(natsConnectionOptions({ servers: 'tls://h:4443' }, readFile).tls).toEqual({});
    expect(natsConnectionOptions({ servers: 'h', caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' }, readFile).tls).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY', maxVersion: 'TLSv1.2' });
    expect(natsConnectionOptions({ servers: 'h' }, readFile).tls).toBeUndefined();
  });

  it('a certificate without its key, or an unreadable file, is a clear error', () => {
    expect(() => natsConnectionOptions({ certFile: '/c.pem' }, readFile)).toThrow(NatsSettingsError);
    expect(() => natsConnectionOptions({ caFile: '/missing' }, readFile)).toThrow(/CA certificate at \/missing \(ENOENT\)/);
  });

  it('token, nkey and creds become the matching authenticator', () => {
    expect(natsConnectionOptions({ token: 't0k' }, readFile)).toMatchObject({ token: 't0k' });
    expect(typeof natsConnectionOptions({ nkeyFile: '/seed' }, readFile).authenticator).toBe('function');
    files['/u.creds'] = 'creds';
    expect(typeof natsConnectionOptions({ credsFile: '/u.creds' }, readFile).authenticator).toBe('function');
  });

  it('redacts credentials in URLs and every secret in messages', () => {
    expect(redactUrl('nats://a:b@h:1,tls://c:d@h:2')).toBe('nats://***@h:1,tls://***@h:2');
    const secrets = secretsOf({ servers: 'nats://u:hunter2@h', token: 'tok123' });
    expect(redactSecrets('failed hunter2 and tok123 at nats://u:hunter2@h', secrets)).not.toMatch(/hunter2|tok123/);
  });

  it('tells an authorization refusal from anything else', () => {
    expect(isNatsAuthRefused(Object.assign(new Error("'Authorization Violation'"), { name: 'AuthorizationError' }))).toBe(true);
    expect(isNatsAuthRefused(new Error('x', { cause: new Error('Authorization Violation') }))).toBe(true);
    expect(isNatsAuthRefused(new Error('connection refused'))).toBe(false);
    // A server that refuses the client certificate sends a TLS alert; a server certificate this
    // client cannot verify is not a refusal of the client's credentials.
    expect(isNatsAuthRefused(Object.assign(new Error('sslv3 alert bad certificate'), { code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' }))).toBe(true);
    expect(isNatsAuthRefused(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }))).toBe(false);
  });

  it('takes an inbox prefix from the flag or RINGKV_INBOX_PREFIX, and only one of the _INBOX family', () => {
    expect(mergeNatsSettings({}, { RINGKV_INBOX_PREFIX: '_INBOX_client' })).toEqual({ inboxPrefix: '_INBOX_client' });
    expect(mergeNatsSettings({ inboxPrefix: '_INBOX_admin' }, { RINGKV_INBOX_PREFIX: '_INBOX_client' }).inboxPrefix).toBe('_INBOX_admin');
    expect(natsConnectionOptions({ inboxPrefix: '_INBOX_client_alice' }, readFile)).toMatchObject({ inboxPrefix: '_INBOX_client_alice' });
    for (const ok of ['_INBOX', '_INBOX_node', '_INBOX.app.one', '_INBOX-x']) expect(checkInboxPrefix(ok)).toBe(ok);
    for (const bad of ['', 'replies', '_INBOX.>', '_INBOX.*', '_INBOX.', '_INBOX..x', '_INBOXES', 'x._INBOX', '_INBOX_a b', `_INBOX_${'x'.repeat(200)}`]) {
      expect(() => natsConnectionOptions({ inboxPrefix: bad }, readFile), bad).toThrow(NatsSettingsError);
    }
  });

  it('tells an inbox reply subject from any other', () => {
    for (const s of ['_INBOX.abc.1', '_INBOX_client.abc.1', '_INBOX_client_alice.x', '_INBOX-x.y']) expect(isInboxSubject(s), s).toBe(true);
    for (const s of ['_INBOX', '_INBOXES.x', 'ringkv.c.node.n1.gossip', 'ringkv.c.admin.cluster', '', 'a._INBOX.b']) expect(isInboxSubject(s), s).toBe(false);
  });

  it("reads a connection's inbox prefix from nats.js's options, _INBOX when it has none", () => {
    expect(inboxPrefixOf({ options: { inboxPrefix: '_INBOX_node' } })).toBe('_INBOX_node');
    expect(inboxPrefixOf({ options: {} })).toBe('_INBOX');
    expect(inboxPrefixOf({})).toBe('_INBOX');
  });
});
