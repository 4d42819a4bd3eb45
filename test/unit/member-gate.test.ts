import { describe, expect, it } from 'vitest';
import type { Log, LogFields } from '../../src/ports/log.js';
import type { Inbound } from '../../src/ports/transport.js';
import { encodeEnvelope, protocolVersion } from '../../src/protocol/envelope.js';
import { seal } from '../../src/protocol/seal.js';
import { nodeSubject } from '../../src/protocol/subjects.js';
import { createMemberGate, newGateStats, warnEveryMs } from '../../src/runtime/member-gate.js';
import { testSealKey } from '../support/cluster-secret.js';

const key = testSealKey('c');
function setup() {
  let now = 1_000_000;
  const warnings: [string, LogFields | undefined][] = [];
  const log: Log = { debug() {}, info() {}, warn: (m, f) => void warnings.push([m, f]), error() {}, child: () => log };
  const stats = newGateStats();
  const gate = createMemberGate({ key, clusterName: 'c', now: () => now, log, stats });
  return { gate, stats, warnings, advance: (ms: number) => (now += ms), now: () => now };
}
const env = (kind: string) => encodeEnvelope({ v: protocolVersion, kind, from: 'mallory', to: 'n1', reqId: '1', body: {} });
const at = (role: Inbound['role'], bytes: Uint8Array, replyTo?: string): Inbound => ({ role, bytes, subject: nodeSubject('c', 'n1', role), ...(replyTo ? { replyTo } : {}) });

describe('the member gate', () => {
  it("passes a member's sealed message as its payload, and unsigned ones only on api and inspect", () => {
    const { gate, stats } = setup();
    const payload = env('replica.put');
    const passed = gate(at('replica', seal(key, nodeSubject('c', 'n1', 'replica'), payload, 1_000_000)));
    expect(passed?.member).toBe(true);
    expect(Buffer.from(passed!.bytes).equals(Buffer.from(payload))).toBe(true);
    expect(gate(at('api', env('api.get'), 'inbox'))?.member).toBe(false);
    expect(gate(at('inspect', env('inspect.follow'), 'inbox'))?.member).toBe(false);
    for (const role of ['replica', 'handoff', 'aae', 'gossip'] as const) expect(gate(at(role, env('x')))).toBeUndefined();
    expect(stats.authenticated).toBe(1);
    expect(stats.unauthenticated).toEqual({ 'replica/unsigned': 1, 'handoff/unsigned': 1, 'aae/unsigned': 1, 'gossip/unsigned': 1 });
  });

  it('grants nothing to a sealed message that fails on api or inspect, but lets whoever waits be told', () => {
    const { gate, stats } = setup();
    const outsider = { ...testSealKey('c'), clusterId: key.clusterId };
    // A forged forward is not taken as a member's: the router refuses it whole (BAD_REQUEST).
    expect(gate(at('api', seal(outsider, nodeSubject('c', 'n1', 'api'), env('api.put'), 1_000_000), 'inbox'))).toMatchObject({ member: false, sealRefused: 'bad-mac' });
    expect(gate(at('api', seal(outsider, nodeSubject('c', 'n1', 'api'), env('api.put'), 1_000_000)))).toBeUndefined();
    const admin = gate(at('inspect', seal(outsider, nodeSubject('c', 'n1', 'inspect'), env('inspect.follow'), 1_000_000), 'inbox'));
    expect(admin).toMatchObject({ member: false, sealRefused: 'bad-mac' });
    expect(stats.unauthenticated).toEqual({ 'api/bad-mac': 2, 'inspect/bad-mac': 1 });
  });

  it('warns at most once per reason per window, saying how many it stood for, and names another cluster', () => {
    const { gate, stats, warnings, advance } = setup();
    for (let i = 0; i < 1000; i++) gate(at('gossip', env('gossip.digest')));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![1]).toMatchObject({ role: 'gossip', reason: 'unsigned', claimedFrom: 'mallory', claimedKind: 'gossip.digest' });
    const other = testSealKey('c');
    gate(at('gossip', seal(other, nodeSubject('c', 'n1', 'gossip'), env('gossip.digest'), 1_000_000)));
    expect(warnings).toHaveLength(2);
    expect(warnings[1]![0]).toContain('another cluster named c shares this NATS');
    expect(warnings[1]![1]).toMatchObject({ claimedClusterId: other.clusterId, clusterId: key.clusterId });
    expect(stats.foreignCluster).toBe(1);
    advance(warnEveryMs);
    gate(at('gossip', env('gossip.digest')));
    expect(warnings).toHaveLength(3);
    expect(warnings[2]![1]).toMatchObject({ suppressedSinceLastWarn: 999 });
    expect(stats.unauthenticated['gossip/unsigned']).toBe(1001);
  });

  it("drops a member's message it took before, one sealed before it started, and a forward without its reply subject sealed", () => {
    const { gate, stats, warnings, advance } = setup();
    const subject = nodeSubject('c', 'n1', 'gossip');
    const claim = seal(key, subject, env('gossip.claim'), 1_000_000);
    expect(gate(at('gossip', claim))?.member).toBe(true);
    for (let i = 0; i < 100; i++) expect(gate(at('gossip', claim))).toBeUndefined();
    expect(gate(at('gossip', seal(key, subject, env('gossip.claim'), 999_999)))).toBeUndefined();
    const forwardSubject = nodeSubject('c', 'n1', 'forward');
    expect(gate(at('forward', seal(key, forwardSubject, env('api.put'), 1_000_000), '_INBOX.x'))).toBeUndefined();
    const bound = seal(key, forwardSubject, env('api.put'), 1_000_000, '_INBOX.c.1');
    expect(gate(at('forward', bound, '_INBOX.mallory.1'))).toBeUndefined();
    expect(gate(at('forward', bound, '_INBOX.c.1'))?.member).toBe(true);
    expect(gate(at('forward', bound, '_INBOX.c.1'))).toBeUndefined();
    expect(stats.replayed).toEqual({ 'gossip/replayed': 100, 'gossip/before-start': 1, 'forward/reply-unbound': 1, 'forward/replayed': 1 });
    expect(stats.unauthenticated).toEqual({ 'forward/bad-mac': 1 });
    expect(stats.authenticated).toBe(2);
    // Logged once per reason per window, like every other refusal.
    expect(warnings.filter(([m]) => m.includes('may be a replay'))).toHaveLength(3);
    advance(warnEveryMs);
    gate(at('gossip', claim));
    expect(warnings.at(-1)![1]).toMatchObject({ reason: 'replayed', suppressedSinceLastWarn: 100 });
  });
});
