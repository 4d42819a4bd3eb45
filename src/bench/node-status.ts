/**
 * One reading from every member's api.status answer (its memory, its cost counters): what the bench
 * reports per node. Each node is asked on its own (`via`), up to `statusAttempts` times: a status
 * answer is cheap, and a node busy with a GC pause or a burst of hinted handoff may miss one deadline.
 */
import type { RingkvClient, RingkvError } from '../client/client.js';
import type { ApiStatusOk } from '../protocol/messages.js';

const statusAttempts = 3;

/**
 * `pick` takes what is wanted from a node's status (undefined: the node does not report it). A node
 * that does not answer after the last attempt, or does not report it, is left out and named to
 * `onMissing` with the reason.
 */
export async function readEachNode<T extends object>(
  client: RingkvClient,
  pick: (status: ApiStatusOk) => T | undefined,
  onMissing?: (node: string, why: string) => void,
): Promise<{ node: string; value: T }[]> {
  const members = (await client.status()).members.map((m) => m.nodeId);
  const readings = await Promise.all(
    members.map(async (node) => {
      let why = 'not in its status answer';
      for (let attempt = 1; attempt <= statusAttempts; attempt++) {
        try {
          const value = pick(await client.status({ via: node }));
          if (value !== undefined) return { node, value };
          break;
        } catch (err) {
          why = `${(err as RingkvError).code ?? 'ERROR'}: ${(err as Error).message}`;
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
      onMissing?.(node, why);
      return undefined;
    }),
  );
  return readings.filter((r): r is { node: string; value: T } => r !== undefined);
}
