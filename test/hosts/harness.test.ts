/**
 * The multi-host harness itself (test/support/hosts.ts), on three namespaces: the servers form one
 * NATS cluster, a one-way cut stops exactly one direction, a partition both, heal restores them, a
 * killed server comes back into the cluster. Skipped where the machine cannot make namespaces.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHosts, type Hosts, hostsUnavailable } from '../support/hosts.js';

const unavailable = hostsUnavailable();
if (unavailable) console.warn(`multi-host tests skipped: ${unavailable}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(unavailable !== undefined)('multi-host harness', () => {
  let hosts: Hosts;
  const conns = new Map<string, NatsConnection>();

  beforeAll(async () => {
    hosts = await createHosts({ hosts: 3 });
    for (const h of hosts.hosts) conns.set(h.id, await connect({ servers: h.natsUrl, name: `harness-${h.id}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 }));
  }, 60_000);

  afterAll(async () => {
    for (const nc of conns.values()) await nc.close().catch(() => undefined);
    await hosts?.destroy();
  });

  /** Whether a message published on `from`'s server reaches a subscriber on `to`'s within the wait. */
  async function delivers(from: string, to: string, waitMs = 1500): Promise<boolean> {
    const subject = `harness.${from}.${to}.${Math.random().toString(36).slice(2)}`;
    const sub = conns.get(to)!.subscribe(subject, { max: 1 });
    // A connection whose server was just restarted is still redialling: its flush fails, and then
    // nothing is delivered yet.
    if (!(await conns.get(to)!.flush().then(() => true, () => false))) {
      sub.unsubscribe();
      return false;
    }
    // Interest crosses routes asynchronously: publish a few times until it is seen or the wait ends.
    const got = (async () => {
      for await (const _ of sub) return true;
      return false;
    })();
    const deadline = Date.now() + waitMs;
    let seen = false;
    void got.then((v) => (seen = v));
    while (!seen && Date.now() < deadline) {
      conns.get(from)!.publish(subject, 'x');
      await sleep(100);
    }
    sub.unsubscribe();
    return seen;
  }

  /** Waits until `check` holds (polling), or fails after `ms`. */
  async function eventually(check: () => Promise<boolean>, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not reached in time');
    }
  }

  it('routes between every pair of hosts', async () => {
    await eventually(async () => (await delivers('h1', 'h2')) && (await delivers('h2', 'h3')) && (await delivers('h3', 'h1')), 15_000);
  });

  it('a partition stops traffic between the groups and heal brings it back', async () => {
    hosts.partition([['h1'], ['h2', 'h3']]);
    // A cut route is noticed after a few pings; until then nothing crosses either (packets drop).
    expect(await delivers('h1', 'h2', 1000)).toBe(false);
    expect(await delivers('h3', 'h1', 1000)).toBe(false);
    expect(await delivers('h2', 'h3', 1000)).toBe(true);
    hosts.heal();
    await eventually(async () => (await delivers('h1', 'h2')) && (await delivers('h3', 'h1')), 30_000);
  }, 60_000);

  it('a one-way cut drops only what the cut side receives', async () => {
    // h2 drops what h1 sends. TCP needs both ways, so the route h1-h2 stalls, but h1's own
    // server still takes its clients' messages and h3 still reaches both.
    hosts.cut(['h1'], ['h2']);
    expect(await delivers('h1', 'h2', 1000)).toBe(false);
    expect(await delivers('h3', 'h2', 1000)).toBe(true);
    expect(await delivers('h3', 'h1', 1000)).toBe(true);
    hosts.heal();
    await eventually(async () => delivers('h1', 'h2'), 30_000);
  }, 60_000);

  it('a killed server comes back into the NATS cluster', async () => {
    await hosts.killNats('h3');
    expect(await delivers('h1', 'h2', 1000)).toBe(true);
    await hosts.startNats('h3');
    await eventually(async () => (await delivers('h1', 'h3')) && (await delivers('h3', 'h2')), 30_000);
  }, 60_000);
});
