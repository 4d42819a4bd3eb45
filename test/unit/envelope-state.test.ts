/**
 * encodeStateAnswer splices already-encoded state bytes into an answer envelope; it must give
 * exactly the bytes encodeEnvelope gives for the decoded state, for any state and any header.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../src/protocol/codec.js';
import { decodeEnvelope, encodeEnvelope, encodeStateAnswer, protocolVersion } from '../../src/protocol/envelope.js';

const dvvSet = fc.array(
  fc.tuple(fc.string({ maxLength: 20 }), fc.nat(1000), fc.array(fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }), { maxLength: 4 })),
  { maxLength: 5 },
);
const header = fc.record({
  kind: fc.constantFrom('replica.get.ok', 'api.local.get.ok'),
  from: fc.string({ maxLength: 64 }),
  to: fc.string({ maxLength: 64 }),
  reqId: fc.string({ maxLength: 80 }),
});

describe('encodeStateAnswer', () => {
  it('equals encodeEnvelope of the decoded state, byte for byte', () => {
    fc.assert(
      fc.property(header, dvvSet, (h, state) => {
        const head = { v: protocolVersion, ...h };
        const spliced = encodeStateAnswer(head, encode(state));
        expect(Buffer.from(spliced).equals(Buffer.from(encodeEnvelope({ ...head, body: { state } })))).toBe(true);
        const body = (decodeEnvelope(spliced) as { body: unknown }).body;
        expect(Buffer.from(encode(body)).equals(Buffer.from(encode({ state: decode(encode(state)) })))).toBe(true);
      }),
    );
  });

  it('answers state null when the store has nothing', () => {
    const head = { v: protocolVersion, kind: 'replica.get.ok', from: 'n1', to: 'n2', reqId: 'c-1.1' };
    expect(encodeStateAnswer(head, undefined)).toEqual(encodeEnvelope({ ...head, body: { state: null } }));
  });
});
