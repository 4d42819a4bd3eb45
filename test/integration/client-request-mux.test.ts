/**
 * RequestMux against a real nats-server: the requests made in one run of JavaScript are published
 * together once it ends (so nats.js writes them in one socket write), each still gets its own
 * answer, and a request failed before its publish never goes out. A request made while the
 * connection is down waits for the reconnect (nats.js drops what is published in between).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MuxError, RequestMux } from '../../src/client/request-mux.js';
import { startNatsServer, startNatsServerPair, type NatsServerHandle } from '../support/nats-server.js';

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

  it('holds a request made while the connection is down and sends it once reconnected', { timeout: 30_000 }, async () => {
    // Two servers in one NATS cluster: the responder on B, the mux's connection on A (then B).
    const { a, b } = await startNatsServerPair('mux-reconnect');
    try {
      const responder = await connect({ servers: b.url });
      connections.push(responder);
      responder.subscribe('echo.b', { callback: (_err, msg) => msg.respond(te.encode(`re:${td.decode(msg.data)}`)) });
      await responder.flush();
      const nc = await connect({ servers: [a.url, b.url], noRandomize: true, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
      connections.push(nc);
      const mux = new RequestMux(nc);
      for (let i = 0; ; i++) {
        const ok = await mux.request('echo.b', te.encode('probe'), 500).then(() => true, () => false);
        if (ok) break;
        if (i > 50) throw new Error('the responder on B does not answer through A');
      }
      // Asked right as the drop is seen: before nats.js redials, which empties its outbound buffer.
      const answer = new Promise<Uint8Array>((resolve, reject) => {
        void (async () => {
          for await (const s of nc.status()) {
            if (s.type === 'disconnect') {
              mux.request('echo.b', te.encode('held'), 10_000).then(resolve, reject);
              return;
            }
          }
        })();
      });
      await a.stop();
      const t0 = performance.now();
      expect(td.decode(await answer)).toBe('re:held');
      expect(performance.now() - t0).toBeLessThan(5_000);
      mux.close();
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
