/**
 * Batching end to end on real node processes (DESIGN.md §3): many concurrent requests from one
 * client take far fewer NATS messages than requests, both ways, and every answer reaches its caller;
 * a node answers every item of a client batch alone, so bad items get their own error with their
 * reqId next to good ones; a single-request client (plain NATS request/reply) still works.
 */
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/client.js';
import { batchItems, batchKind, encodeBatch } from '../../src/protocol/batch.js';
import { encode } from '../../src/protocol/codec.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion, type Envelope } from '../../src/protocol/envelope.js';
import { apiSubject, nodeOpSubject } from '../../src/protocol/subjects.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';

const text = new TextEncoder();
const untext = new TextDecoder();
const clusterName = 'clientbatch';

let nats: NatsServerHandle;
let cluster: Cluster;
let client: RingkvClient;
let raw: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  cluster = await startCluster({ nodes: 3, natsUrl: nats.url, dataRoot: tempDir('ringkv-clientbatch-'), cluster: clusterName });
  client = await RingkvClient.connect({ servers: nats.url, cluster: clusterName, timeoutMs: 5000 });
  raw = await connect({ servers: nats.url });
});

afterAll(async () => {
  await client?.close();
  await raw?.close();
  await cluster?.stopAll();
  await nats?.stop();
});

/** The client's request session (src/client/request-session.ts): its connection and multiplexer. */
const sessionOf = (c: RingkvClient) => (c as unknown as { session: { nc: NatsConnection; mux: { sentMessages: number; sentRequests: number } } }).session;
/** The client's own connection, to count what it published and received. */
const statsOf = (c: RingkvClient) => sessionOf(c).nc.stats();

describe('client batches on a real cluster', () => {
  it('sends and receives far fewer NATS messages than requests, and every answer reaches its caller', async () => {
    const count = 400;
    await client.put('warm', text.encode('w'));
    const before = statsOf(client);
    await Promise.all(Array.from({ length: count }, (_, i) => client.put(`k${i}`, text.encode(`v${i}`))));
    const mux = sessionOf(client).mux;
    const afterPuts = { requests: mux.sentRequests, messages: mux.sentMessages };
    const got = await Promise.all(Array.from({ length: count }, (_, i) => client.get(`k${i}`)));
    const after = statsOf(client);
    for (let i = 0; i < count; i++) expect(got[i]!.values.map((v) => untext.decode(v))).toEqual([`v${i}`]);
    // The first attempts of the concurrent puts leave in one tick and share messages; hedges fire from
    // their own timers, one tick each, and travel alone (what is left to batch, see the README).
    expect(afterPuts.requests - afterPuts.messages).toBeGreaterThanOrEqual(count / 4);
    expect(mux.sentMessages).toBeLessThan(mux.sentRequests);
    expect(after.outMsgs - before.outMsgs).toBeLessThanOrEqual(mux.sentMessages);
    // The answers a node owes this client in one turn come back as one message.
    expect(after.inMsgs - before.inMsgs).toBeLessThan(mux.sentRequests);
  });

  it('answers every item of a client batch alone: good ones with their answer, bad ones with their own error and reqId', async () => {
    const env = (kind: string, reqId: string, body: unknown) => encodeEnvelope({ v: protocolVersion, kind, from: 'raw', to: '', reqId, body });
    await client.put('batch-key', text.encode('there'));
    const items: unknown[] = [
      env('api.get', 'good-1', { key: text.encode('batch-key') }),
      new Uint8Array([0xc1, 0xff]),
      env('replica.get', 'wrong-kind', { p: 0, key: text.encode('x') }),
      env('api.get', 'too-large', { key: new Uint8Array(5000) }),
      // A batch goes on one operation's subject: every item must be that operation.
      env('api.put', 'wrong-op', { key: text.encode('batch-key'), value: text.encode('v'), context: null }),
      encodeBatch('raw', '', [env('api.get', 'inner', { key: text.encode('batch-key') })]),
      env('api.get', 'good-2', { key: text.encode('missing-key') }),
    ];
    const inbox = createInbox();
    const answers: Envelope[] = [];
    const sub = raw.subscribe(inbox, {
      callback: (_err, msg) => {
        const e = decodeEnvelope(msg.data);
        if (typeof e === 'string') throw new Error(e);
        const all = e.kind === batchKind ? (batchItems(e.body) as Uint8Array[]).map((b) => decodeEnvelope(b) as Envelope) : [e];
        answers.push(...all);
      },
    });
    raw.publish(nodeOpSubject(clusterName, 'n1', 'api', 'get'), encode({ v: protocolVersion, kind: batchKind, from: 'raw', to: 'n1', reqId: '', body: { items } }), { reply: inbox });
    const deadline = Date.now() + 5000;
    while (answers.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    sub.unsubscribe();
    const byId = new Map(answers.map((a) => [a.reqId, a]));
    expect(byId.get('good-1')).toMatchObject({ kind: 'api.get.ok' });
    expect(byId.get('good-2')).toMatchObject({ kind: 'api.get.ok' });
    expect(byId.get('wrong-kind')).toMatchObject({ kind: 'error', body: { code: 'BAD_REQUEST' } });
    expect(byId.get('too-large')).toMatchObject({ kind: 'error', body: { code: 'TOO_LARGE' } });
    expect(byId.get('wrong-op')).toMatchObject({ kind: 'error', body: { code: 'WRONG_SUBJECT' } });
    // The garbage item and the batch in the batch have no reqId to give back (the inner batch's is '').
    expect(answers.filter((a) => a.reqId === '').map((a) => (a.body as { code: string }).code)).toEqual(['BAD_REQUEST', 'BAD_REQUEST']);
    expect(answers).toHaveLength(7);
  });

  it('still answers a single-request client that sends one plain envelope with nats request/reply', async () => {
    await client.put('single', text.encode('one'));
    const req = encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'old', to: '', reqId: '7', body: { key: text.encode('single') } });
    const reply = await raw.request(apiSubject(clusterName, 'get'), req, { timeout: 5000 });
    const env = decodeEnvelope(reply.data);
    if (typeof env === 'string') throw new Error(env);
    expect(env).toMatchObject({ kind: 'api.get.ok', reqId: '7' });
    expect(((env.body as { values: Uint8Array[] }).values ?? []).map((v) => untext.decode(v))).toEqual(['one']);
  });
});
