/**
 * NatsTransport against a real nats-server: directed messages, the api queue group, forwarding
 * with the client's reply address, sends that must never throw, and publishes held while the
 * connection is down (two servers in one NATS cluster, one killed).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { connectNats, NatsTransport } from '../../src/adapters/nats/nats-transport.js';
import type { Inbound } from '../../src/ports/transport.js';
import { batchBytesMax } from '../../src/protocol/batch.js';
import { decode } from '../../src/protocol/codec.js';
import { apiSubject, nodeSubject } from '../../src/protocol/subjects.js';
import { startNatsServer, startNatsServerPair, type NatsServerHandle } from '../support/nats-server.js';

const te = new TextEncoder();
const td = new TextDecoder();

let server: NatsServerHandle;
const connections: NatsConnection[] = [];
let clusterSeq = 0;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  for (const nc of connections) await nc.close();
  await server?.stop();
});

async function conn(name: string): Promise<NatsConnection> {
  const nc = await connectNats(server.url, name);
  connections.push(nc);
  return nc;
}

/** A fresh cluster name per test, so tests never see each other's messages. */
function cluster(): string {
  return `t${++clusterSeq}`;
}

/** Resolves once `count` messages have arrived, with what arrived. */
function collector(count: number) {
  const got: Inbound[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  return {
    got,
    all,
    handler: (msg: Inbound) => {
      got.push(msg);
      if (got.length === count) done();
    },
  };
}

function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms))]);
}

describe('NatsTransport', () => {
  it('delivers directed messages to the addressed node and role, in order', async () => {
    const c = cluster();
    const a = new NatsTransport({ nc: await conn('a'), cluster: c, nodeId: 'a' });
    const b = new NatsTransport({ nc: await conn('b'), cluster: c, nodeId: 'b' });
    const atA = collector(1);
    const atB = collector(3);
    await a.listen(atA.handler);
    await b.listen(atB.handler);

    a.send('b', 'replica', te.encode('one'));
    a.send('b', 'gossip', te.encode('two'));
    a.send('b', 'replica', te.encode('three'));
    b.send('a', 'handoff', te.encode('back'));
    await within(Promise.all([atA.all, atB.all]));

    expect(atB.got.map((m) => [m.role, td.decode(m.bytes), m.replyTo])).toEqual([
      ['replica', 'one', undefined],
      ['gossip', 'two', undefined],
      ['replica', 'three', undefined],
    ]);
    expect(atA.got.map((m) => [m.role, td.decode(m.bytes)])).toEqual([['handoff', 'back']]);
    await a.close();
    await b.close();
  });

  it('sends what one turn has for the same role of a peer as one batch message, in order', async () => {
    const c = cluster();
    const a = new NatsTransport({ nc: await conn('a'), cluster: c, nodeId: 'a' });
    // A raw subscriber in b's place sees the NATS messages themselves.
    const raw = await conn('raw');
    const seen: Uint8Array[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    raw.subscribe(nodeSubject(c, 'b', 'replica'), {
      callback: (_err, msg) => {
        seen.push(msg.data);
        if (seen.length === 3) done();
      },
    });
    await raw.flush();

    // One turn: five small envelopes, then one too large to share a batch, then two more.
    for (let i = 0; i < 5; i++) a.send('b', 'replica', te.encode(`m${i}`));
    a.send('b', 'replica', new Uint8Array(batchBytesMax + 1));
    a.send('b', 'replica', te.encode('m5'));
    a.send('b', 'replica', te.encode('m6'));
    await within(all);

    const items = (bytes: Uint8Array) => {
      const env = decode(bytes) as { kind: string; from: string; to: string; body: { items: Uint8Array[] } };
      expect(env).toMatchObject({ kind: 'batch', from: 'a', to: 'b' });
      return env.body.items.map((item) => td.decode(item));
    };
    expect(items(seen[0]!)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(seen[1]!.length).toBe(batchBytesMax + 1);
    expect(items(seen[2]!)).toEqual(['m5', 'm6']);
    expect(a.sentEnvelopes).toBe(8);
    expect(a.sentMessages).toBe(3);
    await a.close();
  });

  it('publishes the replies and forwards of a turn together with its sends, at the end of the turn', async () => {
    const c = cluster();
    const nc = await conn('a');
    const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
    const raw = await conn('raw');
    const seen: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const note = (what: string) => (_err: unknown, msg: { data: Uint8Array; reply?: string }) => {
      seen.push(`${what}:${td.decode(msg.data)}:${msg.reply ?? ''}`);
      if (seen.length === 4) done();
    };
    raw.subscribe('_INBOX.test.>', { callback: note('reply') });
    raw.subscribe(nodeSubject(c, 'b', 'forward'), { callback: note('forward') });
    raw.subscribe(nodeSubject(c, 'b', 'gossip'), { callback: note('gossip') });
    await raw.flush();

    const before = nc.stats().outMsgs;
    a.reply('_INBOX.test.1', te.encode('r1'));
    a.forward('b', te.encode('f1'), '_INBOX.test.2');
    a.send('b', 'gossip', te.encode('g1'));
    await Promise.resolve();
    a.reply('_INBOX.test.3', te.encode('r2'));
    // Nothing has reached nats.js yet: all four wait for the turn's one flush.
    expect(nc.stats().outMsgs).toBe(before);
    await new Promise((resolve) => setImmediate(resolve));
    expect(nc.stats().outMsgs).toBe(before + 4);
    await within(all);
    expect(seen.sort()).toEqual(['forward:f1:_INBOX.test.2', 'gossip:g1:', 'reply:r1:', 'reply:r2:'].sort());
    await a.close();
  });

  it('answers only inbox subjects: a reply or forward to any other subject is dropped and counted', async () => {
    const c = cluster();
    const nc = await conn('a');
    const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
    const raw = await conn('raw');
    const seen: string[] = [];
    raw.subscribe(`ringkv.${c}.>`, { callback: (_e, m) => seen.push(m.subject) });
    raw.subscribe('_INBOX_client.>', { callback: (_e, m) => seen.push(m.subject) });
    await raw.flush();
    // Reply subjects a requester may name: the cluster's own subjects, and inbox look-alikes.
    for (const s of [nodeSubject(c, 'b', 'gossip'), `ringkv.${c}.admin.cluster`, '_INBOXES.x', '_INBOX', 'x._INBOX.y']) a.reply(s, te.encode('no'));
    a.forward('b', te.encode('no'), nodeSubject(c, 'b', 'replica'));
    a.reply('_INBOX_client.ok', te.encode('yes'));
    await nc.flush();
    await raw.flush();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toEqual(['_INBOX_client.ok']);
    expect(a.refusedReplies).toBe(6);
    await a.close();
  });

  it('publishes what waits at close', async () => {
    const c = cluster();
    const a = new NatsTransport({ nc: await conn('a'), cluster: c, nodeId: 'a' });
    const b = new NatsTransport({ nc: await conn('b'), cluster: c, nodeId: 'b' });
    const atB = collector(1);
    await b.listen(atB.handler);
    a.send('b', 'gossip', te.encode('last words'));
    await a.close();
    await within(atB.all);
    expect(td.decode(atB.got[0]!.bytes)).toBe('last words');
    await b.close();
  });

  it('ignores directed subjects whose last token is not a role', async () => {
    const c = cluster();
    const nc = await conn('a');
    const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
    const atA = collector(1);
    await a.listen(atA.handler);
    nc.publish(`ringkv.${c}.node.a.bogus`, te.encode('x'));
    a.send('a', 'inspect', te.encode('y'));
    await within(atA.all);
    expect(atA.got.map((m) => [m.role, td.decode(m.bytes)])).toEqual([['inspect', 'y']]);
    expect(a.droppedReceives).toBe(1);
    await a.close();
  });

  it('delivers each api request to exactly one node of the queue group', async () => {
    const c = cluster();
    const requests = 200;
    const a = new NatsTransport({ nc: await conn('a'), cluster: c, nodeId: 'a' });
    const b = new NatsTransport({ nc: await conn('b'), cluster: c, nodeId: 'b' });
    const got: string[] = [];
    const atA: string[] = [];
    const atB: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const roles = new Set<string>();
    const on = (mine: string[]) => (msg: Inbound) => {
      roles.add(msg.role);
      mine.push(td.decode(msg.bytes));
      got.push(td.decode(msg.bytes));
      if (got.length === requests) done();
    };
    await a.listen(on(atA));
    await b.listen(on(atB));

    const client = await conn('client');
    for (let i = 0; i < requests; i++) client.publish(apiSubject(c, i % 2 ? 'put' : 'get'), te.encode(`r${i}`));
    await within(all);
    await client.flush();
    // Give a duplicate delivery, if there were one, the time to show up.
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(got.length).toBe(requests);
    expect([...roles]).toEqual(['api']);
    expect(new Set(got).size).toBe(requests);
    expect(atA.length).toBeGreaterThan(0);
    expect(atB.length).toBeGreaterThan(0);
    await a.close();
    await b.close();
  });

  it('forwards a client request with its reply address, and the other node answers', async () => {
    const c = cluster();
    const nodes: Record<string, NatsTransport> = {};
    const seen: Inbound[] = [];
    for (const id of ['a', 'b']) {
      const t = new NatsTransport({ nc: await conn(id), cluster: c, nodeId: id });
      const other = id === 'a' ? 'b' : 'a';
      // First byte 0: fresh from the client, so forward it; 1: forwarded, so answer it.
      await t.listen((msg) => {
        seen.push(msg);
        if (msg.bytes[0] === 0) t.forward(other, Uint8Array.of(1, ...te.encode(id)), msg.replyTo!);
        else t.reply(msg.replyTo!, te.encode(`${td.decode(msg.bytes.subarray(1))}->${id}`));
      });
      nodes[id] = t;
    }
    const client = await conn('client');
    for (let i = 0; i < 10; i++) {
      const answer = td.decode((await client.request(apiSubject(c, 'get'), Uint8Array.of(0), { timeout: 2000 })).data);
      expect(['a->b', 'b->a']).toContain(answer);
    }
    // Each request arrived twice: once from the client on the api role, once forwarded on the node-only
    // forward role; both with the client's inbox.
    expect(seen.length).toBe(20);
    expect(seen.every((m) => m.replyTo?.startsWith('_INBOX.'))).toBe(true);
    expect(seen.filter((m) => m.role === 'api').length).toBe(10);
    expect(seen.filter((m) => m.role === 'forward').length).toBe(10);
    for (const t of Object.values(nodes)) await t.close();
  });

  it('never throws from send, forward or reply', async () => {
    const c = cluster();
    const nc = await conn('a');
    const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
    expect(() => a.send('nobody', 'replica', te.encode('x'))).not.toThrow();
    expect(() => a.forward('nobody', te.encode('x'), '_INBOX.nobody')).not.toThrow();
    expect(() => a.reply('_INBOX.nobody', te.encode('x'))).not.toThrow();
    expect(a.droppedSends).toBe(0);

    // Over the server's max_payload (8MB): the client refuses it; we count it instead of throwing.
    expect(() => a.send('nobody', 'replica', new Uint8Array(9 * 1024 * 1024))).not.toThrow();
    expect(a.droppedSends).toBe(1);
    // An empty reply subject is no inbox: refused, and counted as such.
    expect(() => a.reply('', te.encode('x'))).not.toThrow();
    expect(a.refusedReplies).toBe(1);
    expect(a.droppedSends).toBe(1);

    const closed = await connectNats(server.url, 'closed');
    const z = new NatsTransport({ nc: closed, cluster: c, nodeId: 'z' });
    await closed.close();
    expect(() => z.send('a', 'gossip', te.encode('x'))).not.toThrow();
    expect(() => z.forward('a', te.encode('x'), '_INBOX.x')).not.toThrow();
    expect(() => z.reply('_INBOX.x', te.encode('x'))).not.toThrow();
    expect(z.droppedSends).toBe(3);
    await expect(z.close()).resolves.toBeUndefined();
  });

  it('stops receiving on close() and leaves the connection open', async () => {
    const c = cluster();
    const nc = await conn('a');
    const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
    const got: Inbound[] = [];
    await a.listen((m) => got.push(m));
    const sender = await conn('sender');
    sender.publish(nodeSubject(c, 'a', 'replica'), te.encode('before'));
    await sender.flush();
    await within(
      (async () => {
        while (got.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
    );
    await a.close();
    expect(nc.isClosed()).toBe(false);
    sender.publish(nodeSubject(c, 'a', 'replica'), te.encode('after'));
    await sender.flush();
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got.map((m) => td.decode(m.bytes))).toEqual(['before']);
  });

  it('holds what it publishes while the connection is down and sends it, in order, once reconnected', { timeout: 30_000 }, async () => {
    const { a: serverA, b: serverB } = await startNatsServerPair('transport-reconnect');
    try {
      const c = cluster();
      // The peer on B; the transport's connection on A, which tells it of B (to reconnect to).
      const peer = await connect({ servers: serverB.url });
      connections.push(peer);
      const seen: string[] = [];
      peer.subscribe(nodeSubject(c, 'b', 'replica'), { callback: (_err, msg) => seen.push(td.decode(msg.data)) });
      peer.subscribe('_INBOX.held.>', { callback: (_err, msg) => seen.push(`reply:${td.decode(msg.data)}`) });
      await peer.flush();
      const nc = await connectNats(serverA.url, 'a');
      connections.push(nc);
      const a = new NatsTransport({ nc, cluster: c, nodeId: 'a' });
      // Through A, over the route, the peer hears the transport.
      for (let i = 0; !seen.includes('probe'); i++) {
        if (i > 100) throw new Error('the peer on B does not hear the transport on A');
        a.send('b', 'replica', te.encode('probe'));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      seen.length = 0;
      // Sent right as the drop is seen: before nats.js redials, which empties its outbound buffer.
      const sentWhileDown = new Promise<void>((resolve) => {
        void (async () => {
          for await (const s of nc.status()) {
            if (s.type === 'disconnect') {
              a.send('b', 'replica', te.encode('one'));
              a.reply('_INBOX.held.1', te.encode('two'));
              a.reply('_INBOX.held.2', te.encode('three'));
              resolve();
              return;
            }
          }
        })();
      });
      await serverA.stop();
      await within(sentWhileDown);
      await within(
        (async () => {
          while (seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
        })(),
      );
      expect(seen).toEqual(['one', 'reply:two', 'reply:three']);
      expect(a.heldSends).toBeGreaterThan(0);
      expect(a.droppedSends).toBe(0);
      await a.close();
    } finally {
      await serverA.stop();
      await serverB.stop();
    }
  });
});
