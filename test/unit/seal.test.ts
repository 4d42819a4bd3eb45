import { describe, expect, it } from 'vitest';
import { clusterIdOf } from '../../src/protocol/cluster-id.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { idBytes, isSealed, macBytes, openSealed, seal, sealWindowMs, type SealKey } from '../../src/protocol/seal.js';
import { nodeSubject } from '../../src/protocol/subjects.js';

const te = new TextEncoder();
const keyOf = (secret: string, cluster = 'c1'): SealKey => {
  const bytes = te.encode(secret);
  return { clusterId: clusterIdOf(bytes, cluster), secret: bytes };
};
const key = keyOf('a'.repeat(40));
const subject = nodeSubject('c1', 'n2', 'replica');
const payload = encodeEnvelope({ v: protocolVersion, kind: 'replica.put', from: 'n1', to: 'n2', reqId: '1', body: { p: 3 } });
const now = 1_700_000_000_000;

describe('seal and openSealed', () => {
  it('opens what it sealed, handing back the payload byte for byte', () => {
    const sealed = seal(key, subject, payload, now);
    expect(isSealed(sealed)).toBe(true);
    expect(isSealed(payload)).toBe(false);
    const opened = openSealed(key, subject, sealed, now + 10);
    expect(opened.ok).toBe(true);
    if (opened.ok) {
      expect(Buffer.from(opened.payload).equals(Buffer.from(payload))).toBe(true);
      expect(opened.sentAtMs).toBe(now);
    }
    // 4 bytes of frame, the cluster id, the time, the message id, the mac: a fixed overhead whatever the payload.
    expect(sealed.length - payload.length).toBe(4 + key.clusterId.length + 8 + idBytes + macBytes);
  });

  it('refuses a message sealed with another secret (a non-member)', () => {
    const outsider = { ...keyOf('b'.repeat(40)), clusterId: key.clusterId };
    expect(openSealed(key, subject, seal(outsider, subject, payload, now), now)).toMatchObject({ ok: false, reason: 'bad-mac' });
  });

  it('refuses a message replayed onto another subject: another node, or another role of the same node', () => {
    const sealed = seal(key, subject, payload, now);
    expect(openSealed(key, nodeSubject('c1', 'n3', 'replica'), sealed, now)).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(openSealed(key, nodeSubject('c1', 'n2', 'gossip'), sealed, now)).toMatchObject({ ok: false, reason: 'bad-mac' });
  });

  it('refuses a message of another cluster id, and says which id it claims', () => {
    const other = keyOf('c'.repeat(40));
    const opened = openSealed(key, subject, seal(other, subject, payload, now), now);
    expect(opened).toMatchObject({ ok: false, reason: 'other-cluster', clusterId: other.clusterId });
    // The same secret under another cluster name gives another id too.
    expect(keyOf('a'.repeat(40), 'c2').clusterId).not.toBe(key.clusterId);
  });

  it('refuses a rewritten cluster id even with the right length (the id is under the mac)', () => {
    const sealed = Buffer.from(seal(key, subject, payload, now));
    const forgedId = 'f'.repeat(key.clusterId.length);
    sealed.write(forgedId, 4, 'utf8');
    const victim = { ...key, clusterId: forgedId };
    expect(openSealed(victim, subject, sealed, now)).toMatchObject({ ok: false, reason: 'bad-mac' });
  });

  it('refuses every truncation and every flipped byte', () => {
    const sealed = seal(key, subject, payload, now);
    for (let n = 0; n < sealed.length; n++) {
      expect(openSealed(key, subject, sealed.subarray(0, n), now).ok).toBe(false);
    }
    for (let i = 0; i < sealed.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const flipped = Buffer.from(sealed);
        flipped[i] = flipped[i]! ^ bit;
        expect(openSealed(key, subject, flipped, now).ok, `byte ${i} bit ${bit}`).toBe(false);
      }
    }
  });

  it('refuses an unsigned envelope and a frame of an unknown version', () => {
    expect(openSealed(key, subject, payload, now)).toMatchObject({ ok: false, reason: 'unsigned' });
    const sealed = Buffer.from(seal(key, subject, payload, now));
    sealed[1] = 1;
    expect(openSealed(key, subject, sealed, now)).toMatchObject({ ok: false, reason: 'malformed' });
    const flags = Buffer.from(seal(key, subject, payload, now));
    flags[2] = 0x02;
    expect(openSealed(key, subject, flags, now)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('refuses a seal older (or newer) than the window: a captured message replays only briefly', () => {
    const sealed = seal(key, subject, payload, now);
    expect(openSealed(key, subject, sealed, now + sealWindowMs).ok).toBe(true);
    expect(openSealed(key, subject, sealed, now + sealWindowMs + 1)).toMatchObject({ ok: false, reason: 'stale' });
    expect(openSealed(key, subject, sealed, now - sealWindowMs - 1)).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('gives every message an id of its own: one sender per key object, a counter that only grows', () => {
    const a = openSealed(key, subject, seal(key, subject, payload, now), now);
    const b = openSealed(key, subject, seal(key, subject, payload, now), now);
    const other = { ...key };
    const c = openSealed(key, subject, seal(other, subject, payload, now), now);
    if (!a.ok || !b.ok || !c.ok) throw new Error('did not open');
    expect(b.sender).toBe(a.sender);
    expect(b.counter).toBe(a.counter + 1);
    expect(c.sender).not.toBe(a.sender);
    expect(a.sender).toHaveLength(8);
  });

  it('binds the reply subject when the sender seals it: another reply subject fails the mac', () => {
    const sealed = seal(key, subject, payload, now, '_INBOX.abc.1');
    expect(openSealed(key, subject, sealed, now, '_INBOX.abc.1')).toMatchObject({ ok: true, replyBound: true });
    expect(openSealed(key, subject, sealed, now, '_INBOX.mallory.1')).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(openSealed(key, subject, sealed, now)).toMatchObject({ ok: false, reason: 'bad-mac' });
    // Unbound: the reply subject does not matter, and the receiver is told it was not bound.
    expect(openSealed(key, subject, seal(key, subject, payload, now), now, '_INBOX.x')).toMatchObject({ ok: true, replyBound: false });
  });
});
