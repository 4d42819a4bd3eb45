/**
 * Anti-entropy messages are validated in the router before any actor sees them (DESIGN.md §5):
 * well-formed bodies pass, malformed ones (wrong types, indices out of range, hash lengths that do
 * not match, oversized lists) are dropped and counted, and api.aae checks its op.
 */
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../actors/node.events.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { aaeItemsMax } from '../../src/protocol/aae-messages.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { checkAaeBody, checkClientBody } from '../../src/protocol/validation.js';
import type { Transport } from '../../src/ports/transport.js';
import { createRouter } from '../../src/runtime/router.js';

const q = 64;
const key = new TextEncoder().encode('k');
const state = [['n1/e', 1, [new Uint8Array([1])]]];
const check = (kind: string, body: unknown) => checkAaeBody(kind, body, q, defaultLimits);

describe('aae message validation', () => {
  it('accepts well-formed bodies of every kind', () => {
    expect(check('aae.tree', { p: 3, shape: [1024, 32], level: 0, nodes: [0], hashes: new Uint8Array(8) })).toBe(true);
    expect(check('aae.tree', { p: 3, shape: [1024, 32], level: 1, nodes: [2, 5, 31], hashes: new Uint8Array(24) })).toBe(true);
    expect(check('aae.tree.ok', { level: 0, nodes: [0], children: new Uint8Array(256) })).toBe(true);
    expect(check('aae.tree.ok', { level: 0, nodes: [], children: new Uint8Array(0) })).toBe(true);
    expect(check('aae.segment', { p: 3, shape: [1024, 32], segments: [1, 1023], keys: [key], hashes: new Uint8Array(8) })).toBe(true);
    expect(check('aae.segment.ok', { objects: [[key, state]], want: [key], complete: false })).toBe(true);
    expect(check('aae.put', { p: 63, objects: [[key, state]] })).toBe(true);
    expect(check('aae.put.ok', { repaired: 0 })).toBe(true);
    expect(check('aae.error', { code: 'OVERLOADED', message: 'paused' })).toBe(true);
  });

  it('refuses malformed bodies', () => {
    const bad: [string, unknown][] = [
      ['aae.tree', { p: 64, shape: [1024, 32], level: 0, nodes: [0], hashes: new Uint8Array(8) }],
      ['aae.tree', { p: 3, shape: [1000, 32], level: 0, nodes: [0], hashes: new Uint8Array(8) }],
      ['aae.tree', { p: 3, shape: [1024, 32], level: 2, nodes: [0], hashes: new Uint8Array(8) }],
      ['aae.tree', { p: 3, shape: [1024, 32], level: 1, nodes: [32], hashes: new Uint8Array(8) }],
      ['aae.tree', { p: 3, shape: [1024, 32], level: 1, nodes: [3, 2], hashes: new Uint8Array(16) }],
      ['aae.tree', { p: 3, shape: [1024, 32], level: 0, nodes: [0], hashes: new Uint8Array(7) }],
      ['aae.tree.ok', { level: 0, nodes: [0], children: new Uint8Array(12) }],
      ['aae.tree.ok', { level: 0, nodes: [], children: new Uint8Array(8) }],
      ['aae.segment', { p: 3, shape: [1024, 32], segments: [1024], keys: [], hashes: new Uint8Array(0) }],
      ['aae.segment', { p: 3, shape: [1024, 32], segments: [1], keys: [key, key], hashes: new Uint8Array(8) }],
      ['aae.segment', { p: 3, shape: [1024, 32], segments: [1], keys: [new Uint8Array(0)], hashes: new Uint8Array(8) }],
      ['aae.segment', { p: 3, shape: [1024, 32], segments: [1], keys: [new Uint8Array(defaultLimits.keyBytesMax + 1)], hashes: new Uint8Array(8) }],
      ['aae.segment.ok', { objects: [[key, [['n1/e', '0', [null]]]]], want: [], complete: true }],
      ['aae.segment.ok', { objects: [], want: [], complete: 'yes' }],
      ['aae.segment.ok', { objects: [], want: Array.from({ length: aaeItemsMax + 1 }, () => key), complete: true }],
      ['aae.put', { p: 3, objects: [[key]] }],
      ['aae.put', { objects: [] }],
      ['aae.put.ok', { repaired: -1 }],
      ['aae.error', { code: 1, message: 'x' }],
      ['aae.nonsense', {}],
      ['aae.put', [1, 2]],
    ];
    for (const [kind, body] of bad) expect(check(kind, body), `${kind} ${JSON.stringify(body)}`).toBe(false);
  });

  it('checks the op of api.aae', () => {
    expect(checkClientBody('api.aae', { op: 'pause' }, defaultLimits).ok).toBe(true);
    expect(checkClientBody('api.aae', { op: 'explode' }, defaultLimits)).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
  });

  it('the router drops and counts a bad aae message, and delivers a good one with its size', () => {
    const delivered: NodeEvent[] = [];
    const stats = { received: 0, droppedInvalid: 0, rejected: 0 };
    const transport = { send() {}, forward() {}, reply() {}, async listen() {}, async close() {} } as unknown as Transport;
    const route = createRouter({ nodeId: 'n1', q, limits: defaultLimits, transport, deliver: (e) => delivered.push(e), stats, now: () => 0 });
    const envelope = (kind: string, body: unknown) => encodeEnvelope({ v: protocolVersion, kind, from: 'n2', to: 'n1', reqId: 'exchange-1.2', body });

    route({ role: 'aae', bytes: envelope('aae.put', { p: 99, objects: [] }) });
    route({ role: 'aae', bytes: new Uint8Array([0xc1]) });
    expect(stats.droppedInvalid).toBe(2);
    expect(delivered).toEqual([]);

    const good = envelope('aae.put.ok', { repaired: 2 });
    route({ role: 'aae', bytes: good });
    expect(delivered).toEqual([{ type: 'aae.put.ok', from: 'n2', reqId: 'exchange-1.2', body: { repaired: 2 }, bytes: good.length }]);
  });
});
