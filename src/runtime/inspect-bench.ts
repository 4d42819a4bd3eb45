/**
 * What the inspection tap costs: one node (createNode, N=R=W=1) driven through its router with an
 * in-memory transport and store, so that only the actors, the router and the tap are measured.
 *
 *   npx tsx src/runtime/inspect-bench.ts [requests]
 *
 * Modes, run in rounds and interleaved so that drift hits all alike:
 * - off:            nobody watches (the tap has no observer on the actor system)
 * - flag observer:  what a permanent createActor `inspect` option with a flag check would cost
 * - on, unrelated:  a follow session for another request id (every event is checked, none recorded)
 * - on, everything: a follow session recording everything (sampleEvery 1; the rate limit drops most)
 *
 * A second, quieter measurement drives bare actors (a root that spawns a child per request, two
 * events, done) with the same modes, without the node's I/O around them.
 */
import { silentLog } from '../ports/log.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { createActor, enqueueActions, setup } from 'xstate';
import { createNode, type RunningNode } from './create-node.js';
import { clock, LoopTransport, loopSeal, MemoryStore } from './loop-ports.js';
import { InspectTap } from './inspect-tap.js';

async function drive(transport: LoopTransport, requests: number, inFlight: number, bodies: Uint8Array[]): Promise<number> {
  let next = 0;
  // Puts and gets alternate on fresh keys, so that no key gathers siblings from round to round.
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const replyTo = `r.${i}`;
      await new Promise<void>((resolve) => {
        transport.waiting.set(replyTo, resolve);
        transport.handler!({ role: 'api', bytes: bodies[i % bodies.length]!, replyTo });
      });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (performance.now() - started) / requests;
}

function requestBodies(count: number, prefix: string): Uint8Array[] {
  const text = new TextEncoder();
  return Array.from({ length: count }, (_, i) => {
    const key = text.encode(`${prefix}-${i - (i % 2)}`);
    return encodeEnvelope({
      v: protocolVersion,
      kind: i % 2 === 0 ? 'api.put' : 'api.get',
      from: 'bench',
      to: 'n1',
      reqId: `${prefix}-${i}`,
      body: i % 2 === 0 ? { key, value: text.encode('v'.repeat(64)), n: 1, r: 1, w: 1 } : { key, n: 1, r: 1 },
    });
  });
}

type Mode = 'off' | 'flag observer' | 'on, unrelated' | 'on, everything';

function rotate<T>(xs: T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20_000);
  const rounds = 9;
  const transport = new LoopTransport();
  const node: RunningNode = await createNode(
    { nodeId: 'n1', cluster: 'bench', members: ['n1'], partitions: 8, readRepairWaitMs: 0 },
    { transport, seal: loopSeal(), store: new MemoryStore(), clock, log: silentLog, newEpoch: () => 'bench' },
  );
  const modes: Mode[] = ['off', 'flag observer', 'on, unrelated', 'on, everything'];
  const results = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  await drive(transport, requests, 64, requestBodies(requests, 'warm-up'));
  for (let round = 0; round < rounds; round++) {
    // The order rotates from round to round, so that no mode always follows the costliest one.
    for (const mode of rotate(modes, round)) {
      let stop = () => {};
      if (mode === 'flag observer') {
        let watching = false;
        const sub = node.actor.system.inspect(() => {
          if (!watching) return;
          watching = false;
        });
        stop = () => sub.unsubscribe();
      } else if (mode !== 'off') {
        const opened = node.inspect.tap.follow(
          { session: `bench-${round}`, durationMs: 600_000, sampleEvery: 1, ...(mode === 'on, unrelated' ? { request: 'nobody' } : {}) },
          { records: () => {}, end: () => {} },
        );
        if (!opened.ok) throw new Error(opened.error.message);
        stop = () => void node.inspect.tap.stop(`bench-${round}`);
      }
      const bodies = requestBodies(requests, `${round}-${mode}`);
      results.get(mode)!.push(await drive(transport, requests, 64, bodies));
      stop();
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results.get('off')!);
  process.stdout.write(`${requests} requests (puts and gets alternating, 64 in flight), median of ${rounds} rounds\n`);
  for (const mode of modes) {
    const m = median(results.get(mode)!);
    process.stdout.write(`${mode.padEnd(16)} ${(m * 1000).toFixed(1).padStart(7)} µs/request  ${(1000 / m).toFixed(0).padStart(6)} requests/s  ratio ${(m / base).toFixed(3)}\n`);
  }
  await node.stop();
  actorLevel(rounds);
}

/** Bare actors: what the tap adds to xstate's own work per spawned actor and event. */
function actorLevel(rounds: number): void {
  const child = setup({}).createMachine({
    id: 'child',
    initial: 'a',
    states: { a: { on: { go: 'b' } }, b: { on: { go: 'done' } }, done: { type: 'final' } },
  });
  const root = setup({ types: { events: {} as { type: string; to?: string; id?: string } }, actors: { child } }).createMachine({
    id: 'root',
    on: {
      spawn: { actions: enqueueActions(({ enqueue, event }) => enqueue.spawnChild('child', { id: event.id!, input: { client: { reqId: event.id, from: 'bench' } } })) },
      go: { actions: enqueueActions(({ enqueue, event }) => enqueue.sendTo(event.to!, { type: 'go' })) },
      'xstate.done.actor.*': { actions: enqueueActions(({ enqueue, event }) => enqueue.stopChild((event as unknown as { actorId: string }).actorId)) },
    },
  });
  const perRequest = 20_000;
  const modes: Mode[] = ['off', 'flag observer', 'on, unrelated', 'on, everything'];
  const results = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  for (let round = 0; round < rounds; round++) {
    // The order rotates from round to round, so that no mode always follows the costliest one.
    for (const mode of rotate(modes, round)) {
      let watching = false;
      const actor = createActor(root, mode === 'flag observer' ? { inspect: () => void (watching &&= false) } : {});
      actor.start();
      const tap = new InspectTap({ nodeId: 'n1', clock });
      tap.attach(actor);
      if (mode.startsWith('on')) {
        tap.follow({ session: 's', durationMs: 600_000, sampleEvery: 1, ...(mode === 'on, unrelated' ? { request: 'nobody' } : {}) }, { records: () => {}, end: () => {} });
      }
      const started = performance.now();
      for (let i = 0; i < perRequest; i++) {
        const id = `c${i}`;
        actor.send({ type: 'spawn', id });
        actor.send({ type: 'go', to: id });
        actor.send({ type: 'go', to: id });
      }
      results.get(mode)!.push((performance.now() - started) / perRequest);
      tap.close();
      actor.stop();
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results.get('off')!);
  process.stdout.write(`\nbare actors: spawn a child, two events, done; ${perRequest} per round, median of ${rounds} rounds\n`);
  for (const mode of modes) {
    const m = median(results.get(mode)!);
    process.stdout.write(`${mode.padEnd(16)} ${(m * 1000).toFixed(1).padStart(7)} µs/request  ratio ${(m / base).toFixed(3)}\n`);
  }
}

await main();
