import { describe, expect, it } from 'vitest';
import { jetStreamDurability, ringkvAssumedDurability, ringkvDefaultDurability, ringkvDurability, ringkvFsyncDurability } from '../../src/bench/durability.js';

describe('durability reported by the bench', () => {
  it('says JetStream fsyncs every 2 minutes, fixed before nats-server 2.10', () => {
    const d = jetStreamDurability('2.9.10', false);
    expect(d.mode).toBe('replicated');
    expect(d.flush).toMatch(/every 2 min/);
    expect(d.flush).toMatch(/2\.9\.10/);
    expect(d.ack).toMatch(/quorum/);
  });

  it('names sync_interval from 2.10 on, and says when the setting is only assumed', () => {
    expect(jetStreamDurability('2.10.4', true)).toMatchObject({ mode: 'replicated', flush: expect.stringMatching(/sync_interval/) });
    expect(jetStreamDurability('2.11.0', false).mode).toMatch(/assumed/);
    expect(jetStreamDurability(undefined, false).mode).toMatch(/assumed/);
  });

  it("says ringkv acks after the LMDB commit and flushes within a second", () => {
    expect(ringkvDefaultDurability).toMatchObject({ mode: 'committed', ack: expect.stringMatching(/LMDB commit/), flush: expect.stringMatching(/1 s/) });
    expect(ringkvAssumedDurability.mode).toMatch(/assumed/);
  });

  it('reports the mode the ringkv nodes say they run (api.status), and says when it is assumed or mixed', () => {
    expect(ringkvDurability(['committed', 'committed', undefined])).toEqual(ringkvDefaultDurability);
    expect(ringkvDurability(['fsync', 'fsync', 'fsync'])).toEqual(ringkvFsyncDurability);
    expect(ringkvFsyncDurability).toMatchObject({ mode: 'fsync', ack: expect.stringMatching(/fdatasync/) });
    expect(ringkvDurability([undefined, undefined])).toEqual(ringkvAssumedDurability);
    expect(ringkvDurability([])).toEqual(ringkvAssumedDurability);
    expect(ringkvDurability(['committed', 'fsync']).mode).toBe('mixed (committed, fsync)');
  });
});
