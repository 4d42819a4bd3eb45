/**
 * Client batches on a real nats-server (src/client/request-mux.ts): the requests one tick makes for
 * one subject leave as one batch envelope with one reply token, and every answer, whether it comes
 * alone or inside a batch of answers, reaches the request whose reqId it carries. A request alone
 * for its subject, or without a reqId, still travels as itself. "No responders" fails every request
 * of a batch.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MuxError, RequestMux } from '../../src/client/request-mux.js';
import { batchItems, batchKind, encodeBatch } from '../../src/protocol/batch.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { startNatsServer, type NatsServerHandle } from '../support/nats-server.js';

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

const request = (reqId: string) => encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'c', to: '', reqId, body: { n: reqId } });
const answer = (reqId: string) => encodeEnvelope({ v: protocolVersion, kind: 'api.get.ok', from: 'n1', to: 'c', reqId, body: { echo: reqId } });
const reqIdOf = (bytes: Uint8Array) => {
  const env = decodeEnvelope(bytes);
  if (typeof env === 'string') throw new Error(env);
  return env.reqId;
};

/** A responder that unpacks batches and answers in the given way; it records what it received. */
async function responder(subject: string, mode: 'batched' | 'alone'): Promise<{ received: string[][] }> {
  const nc = await conn();
  const received: string[][] = [];
  nc.subscribe(subject, {
    callback: (_err, msg) => {
      const env = decodeEnvelope(msg.data);
      if (typeof env === 'string') throw new Error(env);
      const items = env.kind === batchKind ? (batchItems(env.body) as Uint8Array[]) : [msg.data];
      const ids = items.map(reqIdOf);
      received.push(ids);
      // Answered in reverse order, so that matching by arrival order would fail.
      const answers = [...ids].reverse().map(answer);
      if (mode === 'batched' && answers.length > 1) msg.respond(encodeBatch('n1', '', answers));
      else for (const a of answers) nc.publish(msg.reply!, a);
    },
  });
  await nc.flush();
  return { received };
}

describe('client batches', () => {
  for (const mode of ['batched', 'alone'] as const) {
    it(`sends one tick's requests for one subject as one message and matches answers sent ${mode} by reqId`, async () => {
      const r = await responder(`echo.${mode}`, mode);
      const nc = await conn();
      const mux = new RequestMux(nc);
      const before = nc.stats().outMsgs;
      const ids = ['a', 'b', 'c', 'd'];
      const answers = Promise.all(ids.map((id) => mux.request(`echo.${mode}`, request(id), 2000, id)));
      const got = (await answers).map(reqIdOf);
      expect(got).toEqual(ids);
      expect(nc.stats().outMsgs - before).toBe(1);
      expect(r.received).toEqual([ids]);
      expect(mux.inFlight()).toBe(0);
      mux.close();
    });
  }

  it('sends a request alone as itself when it is the only one for its subject or has no reqId', async () => {
    const r = await responder('echo.single', 'alone');
    const nc = await conn();
    const mux = new RequestMux(nc);
    const one = await mux.request('echo.single', request('x'), 2000, 'x');
    expect(reqIdOf(one)).toBe('x');
    const [p, q] = await Promise.all([mux.request('echo.single', request('y'), 2000), mux.request('echo.single', request('z'), 2000)]);
    expect([reqIdOf(p), reqIdOf(q)]).toEqual(['y', 'z']);
    // Each of these three arrived as a plain envelope, not a batch.
    expect(r.received).toEqual([['x'], ['y'], ['z']]);
    mux.close();
  });

  it('fails every request of a batch with noResponders when nothing subscribes', async () => {
    const nc = await conn();
    const mux = new RequestMux(nc);
    const results = await Promise.allSettled(['1', '2', '3'].map((id) => mux.request('nobody.here', request(id), 2000, id)));
    for (const res of results) {
      expect(res.status).toBe('rejected');
      expect(((res as PromiseRejectedResult).reason as MuxError).reason).toBe('noResponders');
    }
    expect(mux.inFlight()).toBe(0);
    mux.close();
  });

  it('lets a request whose answer never comes wait out its own deadline while its batch neighbours are answered', async () => {
    const nc0 = await conn();
    nc0.subscribe('echo.partial', {
      callback: (_err, msg) => {
        const env = decodeEnvelope(msg.data);
        if (typeof env === 'string') return;
        // Answers only the first item; garbage and an unknown reqId for the rest are ignored by the mux.
        const first = (batchItems(env.body) as Uint8Array[])[0]!;
        msg.respond(encodeBatch('n1', '', [answer(reqIdOf(first)), new Uint8Array([0xc1]), answer('nobody')]));
      },
    });
    await nc0.flush();
    const nc = await conn();
    const mux = new RequestMux(nc);
    const [a, b] = await Promise.allSettled([mux.request('echo.partial', request('p'), 300, 'p'), mux.request('echo.partial', request('q'), 300, 'q')]);
    expect(a.status).toBe('fulfilled');
    expect(((b as PromiseRejectedResult).reason as MuxError).reason).toBe('timeout');
    expect(mux.inFlight()).toBe(0);
    mux.close();
  });
});
