/**
 * The client library against a real nats-server that requires a user and password, and one that
 * requires a token: the right credentials connect, wrong ones fail with NATS_AUTH (not NO_CLUSTER)
 * and an error that never contains the secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { RingkvError } from '../../src/client/errors.js';
import { exitCodeForError, exitCodes } from '../../src/cli/exit-codes.js';
import { startNatsServer, type NatsServerHandle } from '../support/nats-server.js';

async function refusal(p: Promise<unknown>): Promise<RingkvError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RingkvError);
  return err as RingkvError;
}

describe('NATS authentication of the client', () => {
  let userServer: NatsServerHandle;
  let tokenServer: NatsServerHandle;
  beforeAll(async () => {
    userServer = await startNatsServer({ args: ['--user', 'ringkv-client', '--pass', 'right-pass-417'] });
    tokenServer = await startNatsServer({ args: ['--auth', 'right-token-923'] });
  });
  afterAll(async () => {
    await userServer?.stop();
    await tokenServer?.stop();
  });

  it('connects with user and password in the URL or as options', async () => {
    const inUrl = await RingkvClient.connect({ servers: `nats://ringkv-client:right-pass-417@127.0.0.1:${userServer.port}` });
    await inUrl.close();
    const asOptions = await RingkvClient.connect({ servers: userServer.url, user: 'ringkv-client', password: 'right-pass-417' });
    await asOptions.close();
  });

  it('a wrong password is NATS_AUTH with exit code 8, and the message does not carry it', async () => {
    const err = await refusal(RingkvClient.connect({ servers: `nats://ringkv-client:wrong-pass-555@127.0.0.1:${userServer.port}` }));
    expect(err.code).toBe('NATS_AUTH');
    expect(exitCodeForError(err)).toBe(exitCodes.natsAuth);
    expect(err.message).not.toContain('wrong-pass-555');
  });

  it('connects with a token, and a wrong token is NATS_AUTH without the token in the message', async () => {
    const ok = await RingkvClient.connect({ servers: tokenServer.url, token: 'right-token-923' });
    await ok.close();
    const err = await refusal(RingkvClient.connect({ servers: tokenServer.url, token: 'wrong-token-777' }));
    expect(err.code).toBe('NATS_AUTH');
    expect(err.message).not.toContain('wrong-token-777');
  });
});
