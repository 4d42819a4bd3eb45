/**
 * The router unpacks batch envelopes (src/protocol/batch.ts) item by item: every item is decoded,
 * validated and counted as if it had arrived alone, so a bad item is dropped on its own and the
 * good ones around it still reach the node, in order.
 */
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { batchItemsMax, encodeBatch } from '../../src/protocol/batch.js';
import { encode } from '../../src/protocol/codec.js';
import { decodeEnvelope, encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import type { Transport } from '../../src/ports/transport.js';
import { createRouter, type RouterStats } from '../../src/runtime/router.js';

const q = 64;
const key = new TextEncoder().encode('k');
const state = [['n2/e', 1, [new Uint8Array([7])]]];

function setup() {
  const delivered: NodeEvent[] = [];
  const replies: { replyTo: string; bytes: Uint8Array }[] = [];
  const transport = { reply: (replyTo: string, bytes: Uint8Array) => replies.push({ replyTo, bytes }) } as unknown as Transport;
  const stats: RouterStats = { received: 0, droppedInvalid: 0, rejected: 0 };
  const route = createRouter({ nodeId: 'n1', q, limits: defaultLimits, transport, deliver: (e) => delivered.push(e), stats, now: () => 0 });
  return { delivered, replies, stats, route };
}

const envelope = (kind: string, reqId: string, body: unknown) => encodeEnvelope({ v: protocolVersion, kind, from: 'n2', to: 'n1', reqId, body });

describe('router: batches', () => {
  it('routes every item of a batch, in order, as if each had come alone', () => {
    const { delivered, stats, route } = setup();
    const items = [
      envelope('replica.get', 'c-1.1', { p: 3, key }),
      envelope('replica.put', 'c-2.2', { p: 4, key, state }),
      envelope('replica.get.ok', 'c-3.3', { state: null }),
    ];
    route({ role: 'replica', bytes: encodeBatch('n2', 'n1', items) });
    expect(delivered.map((e) => [e.type, (e as { reqId: string }).reqId])).toEqual([
      ['replica.get', 'c-1.1'],
      ['replica.put', 'c-2.2'],
      ['replica.get.ok', 'c-3.3'],
    ]);
    expect(stats).toMatchObject({ received: 3, droppedInvalid: 0, batches: 1 });
  });

  it('turns a replica.puts into one replica.put per item, its state decoded beside its bytes; a bad item is dropped alone', () => {
    const { delivered, stats, route } = setup();
    const stateBytes = encode(state);
    const items: unknown[] = [
      ['c-1', 3, key, stateBytes, null],
      ['c-2', q, key, stateBytes, null], // no such partition
      ['c-3', 4, key, encode({ not: 'a dvv set' }), null],
      ['c-4', 4, key, new Uint8Array([0xc1]), null], // not MessagePack
      ['c-5', 5, key, stateBytes, 'n3'],
      ['c-6', 5, key, stateBytes],
    ];
    route({ role: 'replica', bytes: envelope('replica.puts', '', { items }) });
    // Bytes compared as bytes, whatever their class (a decode gives Buffers).
    const plain = (x: unknown): unknown => (x instanceof Uint8Array ? [...x] : Array.isArray(x) ? x.map(plain) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)])) : x);
    expect(plain(delivered)).toEqual(
      plain([
        { type: 'replica.put', from: 'n2', reqId: 'c-1', body: { p: 3, key, state, encoded: stateBytes } },
        { type: 'replica.put', from: 'n2', reqId: 'c-5', body: { p: 5, key, state, hint: 'n3', encoded: stateBytes } },
      ]),
    );
    expect(stats.droppedInvalid).toBe(4);
    // `encoded` is the router's alone: one a peer sends is dropped, whatever the state's form.
    route({ role: 'replica', bytes: envelope('replica.put', 'c-7', { p: 3, key, state, encoded: new Uint8Array([1]) }) });
    expect('encoded' in (delivered.at(-1) as { body: object }).body).toBe(false);
    delivered.pop();
    // Not on another role, and not empty.
    route({ role: 'handoff', bytes: envelope('replica.puts', '', { items }) });
    route({ role: 'replica', bytes: envelope('replica.puts', '', { items: [] }) });
    expect(delivered).toHaveLength(2);
  });

  it('drops a bad item on its own and delivers the good ones around it', () => {
    const { delivered, stats, route } = setup();
    const items: unknown[] = [
      envelope('replica.get', 'good-1', { p: 3, key }),
      new Uint8Array([0xc1]), // not MessagePack
      envelope('replica.get', 'bad-partition', { p: q, key }), // fails validation
      envelope('gossip.digest', 'wrong-role', { heartbeats: {} }), // a kind of another role
      'not bytes',
      encodeBatch('n2', 'n1', [envelope('replica.get', 'nested', { p: 1, key })]), // a batch in a batch
      encode({ v: 99, kind: 'replica.get', from: 'n2', to: 'n1', reqId: 'old', body: { p: 1, key } }), // wrong version
      envelope('replica.get', 'good-2', { p: 5, key }),
    ];
    const batch = encodeEnvelope({ v: protocolVersion, kind: 'batch', from: 'n2', to: 'n1', reqId: '', body: { items } });
    route({ role: 'replica', bytes: batch });
    expect(delivered.map((e) => (e as { reqId: string }).reqId)).toEqual(['good-1', 'good-2']);
    expect(stats).toMatchObject({ received: 8, droppedInvalid: 6, batches: 1 });
  });

  it('drops a batch whose body is not a list of items, or that has too many', () => {
    const { delivered, stats, route } = setup();
    route({ role: 'replica', bytes: encodeEnvelope({ v: protocolVersion, kind: 'batch', from: 'n2', to: 'n1', reqId: '', body: { items: 'x' } }) });
    const many = Array.from({ length: batchItemsMax + 1 }, (_, i) => envelope('replica.get', `r${i}`, { p: 1, key }));
    route({ role: 'replica', bytes: encodeBatch('n2', 'n1', many) });
    expect(delivered).toEqual([]);
    expect(stats.droppedInvalid).toBe(2);
  });

  it('routes every item of a client batch on the api role with the batch reply address', () => {
    const { delivered, replies, stats, route } = setup();
    const get = (reqId: string) => encodeEnvelope({ v: protocolVersion, kind: 'api.get', from: 'client', to: '', reqId, body: { key } });
    route({ role: 'api', bytes: encodeBatch('client', 'n1', [get('1'), get('2')]), replyTo: '_INBOX.x.7' });
    expect(delivered.map((e) => [e.type, (e as { reqId: string }).reqId, (e as { replyTo: string }).replyTo])).toEqual([
      ['api.get', '1', '_INBOX.x.7'],
      ['api.get', '2', '_INBOX.x.7'],
    ]);
    expect(replies).toEqual([]);
    expect(stats).toMatchObject({ received: 2, rejected: 0, batches: 1 });
  });

  it('answers each bad item of a client batch alone, with its reqId, and routes its good neighbours', () => {
    const { delivered, replies, stats, route } = setup();
    const env = (kind: string, reqId: string, body: unknown) => encodeEnvelope({ v: protocolVersion, kind, from: 'client', to: '', reqId, body });
    const items: unknown[] = [
      env('api.get', 'good-1', { key }),
      new Uint8Array([0xc1, 0xff]), // garbage
      env('replica.get', 'wrong-kind', { p: 1, key }),
      env('api.put', 'too-large', { key, value: new Uint8Array(defaultLimits.valueBytesMax + 1), context: null }),
      encodeBatch('client', 'n1', [env('api.get', 'inner', { key })]), // a batch in a batch
      'not bytes',
      env('api.get', 'good-2', { key }),
    ];
    route({ role: 'api', bytes: encode({ v: protocolVersion, kind: 'batch', from: 'client', to: 'n1', reqId: '', body: { items } }), replyTo: '_INBOX.x.8' });
    expect(delivered.map((e) => (e as { reqId: string }).reqId)).toEqual(['good-1', 'good-2']);
    const answers = replies.map((r) => {
      expect(r.replyTo).toBe('_INBOX.x.8');
      const a = decodeEnvelope(r.bytes);
      if (typeof a === 'string') throw new Error(a);
      return [a.reqId, (a.body as { code: string }).code];
    });
    expect(answers).toEqual([
      ['', 'BAD_REQUEST'],
      ['wrong-kind', 'BAD_REQUEST'],
      ['too-large', 'TOO_LARGE'],
      ['', 'BAD_REQUEST'],
      ['', 'BAD_REQUEST'],
    ]);
    expect(stats).toMatchObject({ received: 7, rejected: 5, batches: 1 });
  });

  it('refuses a client batch whose body is not a list of items with one BAD_REQUEST', () => {
    const { delivered, replies, stats, route } = setup();
    route({ role: 'api', bytes: encodeEnvelope({ v: protocolVersion, kind: 'batch', from: 'client', to: 'n1', reqId: 'b', body: { items: 'x' } }), replyTo: '_INBOX.x.9' });
    expect(delivered).toEqual([]);
    expect(stats.rejected).toBe(1);
    expect(decodeEnvelope(replies[0]!.bytes)).toMatchObject({ kind: 'error', reqId: 'b', body: { code: 'BAD_REQUEST' } });
  });

  it('keeps each item its own size for the anti-entropy pacing', () => {
    const { delivered, route } = setup();
    const small = envelope('aae.put.ok', 'x-1.1', { repaired: 1 });
    const large = envelope('aae.put.ok', 'x-1.2', { repaired: 2, pad: new Uint8Array(500) });
    route({ role: 'aae', bytes: encodeBatch('n2', 'n1', [small, large]) });
    expect(delivered.map((e) => (e as { bytes: number }).bytes)).toEqual([small.length, large.length]);
  });
});
