/**
 * Graceful stop (issue 18, item 4), on real processes: three `ringkv node` processes on a real
 * nats-server, a client with 16 puts in flight (N=3, W=2; half of them sent with `via` to the node
 * that will stop), and SIGTERM to one node mid-run. So that the stopping node surely holds puts it
 * has not answered yet, the two other nodes are paused (SIGSTOP) just before the SIGTERM and
 * resumed 700 ms after: every put waits for one of them. The test asserts
 *
 * - /readyz of the stopping node turns false before the process exits;
 * - every put made during the run is answered, ok or a clear error code (none hangs, none is
 *   reported as "not sent" when it may have been applied), and the client carries on through the
 *   stop (puts succeed while it stops and after);
 * - the node exits 0 within the documented bound (drain: the request deadline + 1 s; then at most
 *   5 s to close NATS and LMDB), having answered what it coordinated;
 * - every acknowledged put reads back (R=2) from the other two nodes, and after the node restarts
 *   on its data, from all three (the restart keeps its epoch: it stopped cleanly).
 *
 * A node that left the cluster exits 11 (exitCodes.nodeLeft): test/faults/left-node-exit.test.ts,
 * test/integration/membership-leave.test.ts and test/faults/departed-hints.test.ts check it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../src/bench/free-port.js';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { drainMsDefault, stopCloseMsMax } from '../../src/server/node-process.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { startNatsServer, tempDir, type NatsServerHandle } from '../support/nats-server.js';

const inFlight = 16;
const requestTimeoutMs = 3_000;
const victim = 'n1';
/** Paused around the stop, so the victim's puts wait for them. */
const slow = ['n2', 'n3'];

let nats: NatsServerHandle | undefined;
let cluster: Cluster | undefined;
let client: RingkvClient | undefined;

afterEach(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stopAll();
  await nats?.stop();
});

function httpPortOf(c: Cluster, id: string): number {
  const port = Number(/"msg":"http serving"[^\n]*"port":(\d+)/.exec(c.logs(id))?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no http port in the log of ${id}`);
  return port;
}

async function readyz(port: number): Promise<number | 'down'> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) })).status;
  } catch {
    return 'down';
  }
}

describe('SIGTERM under load', () => {
  it('goes unready, answers every put in flight, exits 0 in bounded time, and loses no acknowledged write', { timeout: 120_000 }, async () => {
    nats = await startNatsServer();
    cluster = await startCluster({
      nodes: 3,
      natsUrl: nats.url,
      dataRoot: tempDir('ringkv-stop-'),
      cluster: 'stop',
      args: ['--request-timeout-ms', String(requestTimeoutMs), '--http-port', '0', '--http-host', '127.0.0.1', '--gossip-round-ms', '250'],
    });
    const port = httpPortOf(cluster, victim);
    expect(await readyz(port)).toBe(200);
    client = await RingkvClient.connect({ servers: nats.url, cluster: 'stop', timeoutMs: requestTimeoutMs });
    const c = client;

    const acked = new Map<string, string>();
    const failures = new Map<string, number>();
    // Puts sent with `via` to the stopping node are never hedged: each one the node took must be
    // answered by it (a drain that dropped them would leave them to TIMEOUT), and each it refused
    // (NOT_READY) or could no longer take (no responders) goes to the next node at once.
    const viaFailures = new Map<string, number>();
    let okDuringStop = 0;
    let stopping = false;
    let running = true;
    let seq = 0;
    const lane = async (viaVictim: boolean) => {
      while (running) {
        const key = `k${seq++}`;
        const value = `v-${key}`;
        try {
          await c.putString(key, value, viaVictim ? { via: victim } : {});
          acked.set(key, value);
          if (stopping) okDuringStop++;
        } catch (err) {
          const code = err instanceof RingkvError ? err.code : `thrown: ${String(err)}`;
          failures.set(code, (failures.get(code) ?? 0) + 1);
          if (viaVictim) viaFailures.set(code, (viaFailures.get(code) ?? 0) + 1);
        }
      }
    };
    const lanes = Array.from({ length: inFlight }, (_, i) => lane(i % 2 === 0));
    await sleep(1_500);

    // Readiness is polled while the node stops: it must say 503 before the process is gone.
    const seen: (number | 'down')[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        seen.push(await readyz(port));
        await sleep(20);
      }
    })();
    for (const id of slow) cluster.signal(id, 'SIGSTOP');
    await sleep(300);
    const t0 = Date.now();
    stopping = true;
    const stopped = cluster.kill(victim, 'SIGTERM');
    await sleep(700);
    for (const id of slow) cluster.signal(id, 'SIGCONT');
    await stopped;
    const stopMs = Date.now() - t0;
    polling = false;
    await poller;
    await sleep(1_000); // puts keep going on the other two nodes
    running = false;
    await Promise.all(lanes);
    const log = cluster.logs(victim);
    const drained = log.split('\n').find((l) => l.includes('"msg":"drained"') || l.includes('requests still in flight'));
    process.stdout.write(
      `stop took ${stopMs} ms; ${drained ?? '(no drain line)'}; ${acked.size} puts acknowledged, ${okDuringStop} while and after it stopped; failures ${JSON.stringify(Object.fromEntries(failures))}\n`,
    );

    expect(cluster.lastExit(victim)).toEqual({ code: 0, signal: null });
    expect(stopMs).toBeLessThan(drainMsDefault(requestTimeoutMs) + stopCloseMsMax);
    expect(log).toContain('"msg":"drained"');
    expect(log).toContain('"msg":"stopped"');
    expect(seen).toContain(503);
    expect(seen.indexOf(503)).toBeLessThan(seen.lastIndexOf('down') === -1 ? seen.length : seen.lastIndexOf('down'));
    expect(seen.slice(seen.indexOf(503)).every((s) => s !== 200)).toBe(true);
    // Every put ended: ok, or a code that says what happened. None says "not sent" (NO_CLUSTER) while
    // two nodes serve; an unknown outcome is TIMEOUT.
    for (const code of failures.keys()) expect(['TIMEOUT', 'UNAVAILABLE', 'OVERLOADED'], `failure code ${code}`).toContain(code);
    expect(Object.fromEntries(viaFailures), 'puts sent to the stopping node').toEqual({});
    expect(okDuringStop).toBeGreaterThan(50);

    const check = async (label: string) => {
      const missing: string[] = [];
      for (const [key, value] of acked) {
        const got = await c.getString(key, { r: 2 });
        if (!got.values.includes(value)) missing.push(key);
      }
      expect(missing, `${label}: acknowledged puts that do not read back`).toEqual([]);
    };
    await check('with the node stopped');
    await cluster.restart(victim);
    const lines = cluster.servingLines(victim);
    expect(lines.at(-1)!.epoch).toBe(lines[0]!.epoch);
    await check('after the restart');
  });
});
