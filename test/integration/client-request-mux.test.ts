/**
 * RequestMux against a real nats-server: the requests made in one run of JavaScript are published
 * together once it ends (so nats.js writes them in one socket write), each still gets its own
 * answer, and a request failed before its publish never goes out.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MuxError, RequestMux } from '../../src/client/request-mux.js';
import { startNatsServer, type NatsServerHandle } from '../support/nats-server.js';

const te = new TextEncoder();
const td = new TextDecoder();

let server: NatsServerHandle;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await server?.stop();
});

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  return nc;
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

describe('RequestMux', () => {
  it('publishes the requests of one run together at its end, and matches each answer to its request', async () => {
    const responder = await conn();
    responder.subscribe('echo', { callback: (_err, msg) => msg.respond(te.encode(`re:${td.decode(msg.data)}`)) });
    await responder.flush();

    const nc = await conn();
    const mux = new RequestMux(nc);
    const before = nc.stats().outMsgs;
    const answers = [1, 2, 3].map((i) => mux.request('echo', te.encode(`q${i}`), 2000));
    // Some promise hops later, still in the same run: nothing has reached nats.js yet.
    await Promise.resolve();
    await Promise.resolve();
    const alsoThisRun = mux.request('echo', te.encode('q4'), 2000);
    expect(nc.stats().outMsgs).toBe(before);
    // The mux's tick was queued before this one: by now all four are published.
    await nextTick();
    expect(nc.stats().outMsgs).toBe(before + 4);
    expect((await Promise.all([...answers, alsoThisRun])).map((b) => td.decode(b))).toEqual(['re:q1', 're:q2', 're:q3', 're:q4']);
    mux.close();
  });

  it('does not publish a request that failed before its turn came', async () => {
    const nc = await conn();
    const mux = new RequestMux(nc);
    const before = nc.stats().outMsgs;
    const pending = mux.request('nobody', te.encode('x'), 2000);
    mux.close();
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MuxError);
    expect((err as MuxError).reason).toBe('closed');
    await nextTick();
    expect(nc.stats().outMsgs).toBe(before);
  });

  it('fails a request with no responders, published at the end of the run like the others', async () => {
    const nc = await conn();
    const mux = new RequestMux(nc);
    const err = await mux.request('nobody.listens', te.encode('x'), 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MuxError);
    expect((err as MuxError).reason).toBe('noResponders');
    mux.close();
  });
});
