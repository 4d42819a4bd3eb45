/**
 * Issue 18, item 8: a write whose outcome is unknown is reported as TIMEOUT, never as NO_CLUSTER
 * ("could not be sent"). The reproduction: a node subscription that takes every request and never
 * answers, and puts sent to it with `via`. Each put's attempt timer and the operation's deadline
 * fire within a millisecond of each other; before the fix, a put whose attempt timer fired first
 * found nothing left to ask and ended as NO_CLUSTER, although it had been sent (and, on a real node,
 * possibly applied). Hundreds of puts at once make the two timers land in either order.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/client.js';
import { nodeOpWildcard } from '../../src/protocol/subjects.js';
import { startNatsServer, type NatsServerHandle } from '../support/nats-server.js';

let server: NatsServerHandle;
let silent: NatsConnection;
const cluster = 'silent-node';

beforeAll(async () => {
  server = await startNatsServer();
  silent = await connect({ servers: server.url });
  // Takes every request addressed to node "mute" and never answers (a wedged node).
  silent.subscribe(nodeOpWildcard(cluster, 'mute', 'api'), { callback: () => undefined });
  await silent.flush();
});

afterAll(async () => {
  await silent?.close();
  await server?.stop();
});

async function outcomes(client: RingkvClient, count: number, timeoutMs: number, op: 'put' | 'del'): Promise<Map<string, number>> {
  const codes = new Map<string, number>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      try {
        if (op === 'put') await client.putString(`k${i}`, 'v', { via: 'mute', timeoutMs });
        else await client.delete(`k${i}`, { via: 'mute', timeoutMs, context: new Uint8Array([0x90]) });
        codes.set('ok', (codes.get('ok') ?? 0) + 1);
      } catch (err) {
        const code = err instanceof RingkvError ? err.code : String(err);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }),
  );
  return codes;
}

describe('a write sent to a node that never answers', () => {
  it('ends as TIMEOUT (outcome unknown), never NO_CLUSTER, for every one of 1,000 puts and 300 deletes', async () => {
    const client = await RingkvClient.connect({ servers: server.url, cluster });
    try {
      // Rounds with different deadlines, so that the attempt timer and the deadline land on either
      // side of each other's millisecond.
      for (const timeoutMs of [20, 37, 50, 61, 80]) {
        const puts = await outcomes(client, 200, timeoutMs, 'put');
        expect(Object.fromEntries(puts)).toEqual({ TIMEOUT: 200 });
      }
      const dels = await outcomes(client, 300, 33, 'del');
      expect(Object.fromEntries(dels)).toEqual({ TIMEOUT: 300 });
    } finally {
      await client.close();
    }
  }, 60_000);
});
