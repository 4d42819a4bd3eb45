// The simulator's adapters on their own: SimClock, SimStore, SimNetwork and the PRNG.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/core/prng.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { SimClock } from '../../src/adapters/sim/sim-clock.js';
import { SimNetwork } from '../../src/adapters/sim/sim-network.js';
import { SimStore } from '../../src/adapters/sim/sim-store.js';
import type { Inbound } from '../../src/ports/transport.js';

const key = new TextEncoder().encode('k');
const state = (v: string, n = 1): DvvSet => [['a/1', n, [new TextEncoder().encode(v)]]];
const text = (set: DvvSet | undefined) => (set ? set.flatMap(([, , vals]) => vals.map((v) => (v ? Buffer.from(v).toString() : null))) : undefined);

describe('Prng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('keeps int, chance and pick in range', () => {
    const p = new Prng(7);
    for (let i = 0; i < 1000; i++) {
      const x = p.int(-3, 5);
      expect(x).toBeGreaterThanOrEqual(-3);
      expect(x).toBeLessThanOrEqual(5);
      expect(['x', 'y']).toContain(p.pick(['x', 'y']));
      const f = p.next();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(p.chance(0)).toBe(false);
    expect(p.chance(1)).toBe(true);
  });

  it('forks streams that do not depend on how much the parent drew', () => {
    const a = new Prng(5);
    const b = new Prng(5);
    b.nextUint32();
    expect(a.fork('net').nextUint32()).toBe(b.fork('net').nextUint32());
    expect(a.fork('net').nextUint32()).not.toBe(a.fork('store').nextUint32());
  });
});

describe('SimClock', () => {
  it('runs timers in deadline order, equal deadlines in the order they were set', async () => {
    const clock = new SimClock();
    const order: string[] = [];
    clock.setTimeout(() => order.push('b@10'), 10);
    clock.setTimeout(() => order.push('a@5'), 5);
    clock.setTimeout(() => order.push('c@10'), 10);
    clock.setTimeout(() => order.push('d@10'), 10);
    const cancelled = clock.setTimeout(() => order.push('never'), 7);
    clock.clearTimeout(cancelled);
    clock.clearTimeout(cancelled);
    expect(await clock.runUntilIdle()).toBe(true);
    expect(order).toEqual(['a@5', 'b@10', 'c@10', 'd@10']);
    expect(clock.now()).toBe(10);
  });

  it('never runs a callback synchronously, and drains microtasks between timers', async () => {
    const clock = new SimClock();
    const order: string[] = [];
    clock.setTimeout(() => {
      order.push('t1');
      // A chain of promise callbacks and a queued microtask, as createNode and the store make.
      void Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => {
          queueMicrotask(() => order.push('t1 chain'));
        });
    }, 0);
    clock.setTimeout(() => order.push('t2'), 0);
    expect(order).toEqual([]);
    await clock.runUntilIdle();
    expect(order).toEqual(['t1', 't1 chain', 't2']);
  });

  it('runs until a time, and until a promise settles', async () => {
    const clock = new SimClock();
    let fired = 0;
    clock.setTimeout(() => fired++, 50);
    clock.setTimeout(() => fired++, 150);
    await clock.runUntil(100);
    expect([clock.now(), fired]).toEqual([100, 1]);
    const value = await clock.runUntilSettled(new Promise<string>((resolve) => clock.setTimeout(() => resolve('done'), 30)));
    expect([value, clock.now()]).toEqual(['done', 130]);
    await expect(clock.runUntilSettled(new Promise(() => {}))).rejects.toThrow(/deadlock/);
  });

  it('cancels every timer of a disposed view and ignores its later ones', async () => {
    const clock = new SimClock();
    const view = clock.view();
    const fired: string[] = [];
    view.setTimeout(() => fired.push('view'), 5);
    clock.setTimeout(() => fired.push('clock'), 5);
    view.dispose();
    view.setTimeout(() => fired.push('late'), 1);
    await clock.runUntilIdle();
    expect(fired).toEqual(['clock']);
  });
});

describe('SimStore', () => {
  it('lets reads see an issued update before it commits, and resolves it only after the commit', async () => {
    const clock = new SimClock();
    const store = new SimStore(clock, new Prng(1), { commitDelayMinMs: 5, commitDelayMaxMs: 5 });
    let done = false;
    const p = store.update(0, key, () => ({ next: state('x'), result: 'r' })).then((r) => {
      done = true;
      return r;
    });
    expect(text(store.get(0, key))).toEqual(['x']);
    expect([...store.keys(0)].map((k) => Buffer.from(k).toString())).toEqual(['k']);
    await clock.runUntil(4);
    expect(done).toBe(false);
    await clock.runUntil(5);
    expect(done).toBe(true);
    expect(await p).toBe('r');
  });

  it('commits in issue order and loses only uncommitted writes in a crash', async () => {
    const clock = new SimClock();
    const store = new SimStore(clock, new Prng(2), { commitDelayMinMs: 1, commitDelayMaxMs: 20 });
    const settled: number[] = [];
    for (let i = 1; i <= 5; i++) void store.update(0, key, () => ({ next: state(`v${i}`, i), result: i })).then((r) => settled.push(r));
    await clock.runUntilSettled(new Promise<void>((resolve) => clock.setTimeout(resolve, 0)));
    while (settled.length < 2) await clock.step();
    store.crash();
    await clock.runUntilIdle();
    expect(settled).toEqual(settled.slice().sort());
    expect(text(store.get(0, key))).toEqual([`v${settled.length}`]);
    expect(store.stats.lostOnCrash).toBe(5 - settled.length);
  });

  it('fences the handles of a dead incarnation and loses everything in a wipe', async () => {
    const clock = new SimClock();
    const store = new SimStore(clock, new Prng(3));
    const before = store.open();
    await clock.runUntilSettled(before.putMeta('identity', { nodeId: 'n1', epoch: 'e1' }));
    store.crash();
    const late = before.update(0, key, () => ({ next: state('zombie'), result: 0 }));
    let lateSettled = false;
    void late.then(() => (lateSettled = true));
    await clock.runUntilIdle();
    expect([store.get(0, key), lateSettled]).toEqual([undefined, false]);
    expect(store.open().getMeta('identity')).toEqual({ nodeId: 'n1', epoch: 'e1' });
    store.wipe();
    expect(store.open().getMeta('identity')).toBeUndefined();
  });

  it('stores copies: changing a value after update does not change the store', async () => {
    const clock = new SimClock();
    const store = new SimStore(clock, new Prng(4));
    const s = state('abc');
    void store.update(0, key, () => ({ next: s, result: 0 }));
    (s[0]![2][0] as Uint8Array)[0] = 0x7a;
    await clock.runUntilIdle();
    expect(text(store.get(0, key))).toEqual(['abc']);
  });
});

describe('SimNetwork', () => {
  const setup = () => {
    const clock = new SimClock();
    const net = new SimNetwork(clock, new Prng(9));
    const got: Record<string, string[]> = { n1: [], n2: [] };
    const listen = async (id: 'n1' | 'n2') => {
      const t = net.attach(id);
      await t.listen((m: Inbound) => got[id]!.push(`${m.role}:${Buffer.from(m.bytes).toString()}`));
      return t;
    };
    return { clock, net, got, listen };
  };
  const bytes = (s: string) => new TextEncoder().encode(s);

  it('delivers after the link delay, and not across a partition', async () => {
    const { clock, net, got, listen } = setup();
    const t1 = await listen('n1');
    await listen('n2');
    t1.send('n2', 'replica', bytes('one'));
    net.partition(['n1'], ['n2']);
    t1.send('n2', 'replica', bytes('cut'));
    await clock.runUntilIdle();
    net.heal();
    t1.send('n2', 'replica', bytes('two'));
    await clock.runUntilIdle();
    // 'one' was on the wire when the partition began: a cut cable loses it too.
    expect(got.n2).toEqual(['replica:two']);
    expect(net.stats.cut).toBe(2);
  });

  it('a crashed node neither sends nor receives; its restart listens on a new transport', async () => {
    const { clock, net, got, listen } = setup();
    const t1 = await listen('n1');
    const t2 = await listen('n2');
    t1.send('n2', 'replica', bytes('in flight'));
    net.crash('n2');
    t2.send('n1', 'replica', bytes('from the dead'));
    await clock.runUntilIdle();
    await listen('n2');
    t1.send('n2', 'replica', bytes('after restart'));
    await clock.runUntilIdle();
    expect(got).toEqual({ n1: [], n2: ['replica:after restart'] });
  });

  it('routes client requests to a live node of the queue group and replies to the client address', async () => {
    const { clock, net, got, listen } = setup();
    await listen('n1');
    const t2 = await listen('n2');
    net.crash('n1');
    const replies: string[] = [];
    const client = net.client('c1', (replyTo, b) => replies.push(`${replyTo}:${Buffer.from(b).toString()}`));
    for (let i = 0; i < 5; i++) client.request(bytes(`req${i}`), client.address(i));
    await clock.runUntilIdle();
    expect(got.n2).toHaveLength(5);
    t2.reply(client.address(3), bytes('answer'));
    await clock.runUntilIdle();
    expect(replies).toEqual(['sim-client.c1.3:answer']);
  });

  it('drops and duplicates with the probabilities of the link', async () => {
    const { clock, net, got, listen } = setup();
    const t1 = await listen('n1');
    await listen('n2');
    net.setLinkFaults('n1', 'n2', { drop: 0.3, duplicate: 0.3, delayMinMs: 1, delayMaxMs: 30 });
    for (let i = 0; i < 1000; i++) t1.send('n2', 'replica', bytes(String(i)));
    await clock.runUntilIdle();
    expect(net.stats.dropped).toBeGreaterThan(200);
    expect(net.stats.duplicated).toBeGreaterThan(120);
    expect(got.n2!.length).toBe(1000 - net.stats.dropped + net.stats.duplicated);
    // A delay range wider than zero reorders.
    const order = got.n2!.map((m) => Number(m.slice('replica:'.length)));
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
  });
});
