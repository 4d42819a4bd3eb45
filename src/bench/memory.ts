/**
 * The memory report of `ringkv bench --memory` (issue 8): each node's JavaScript heap and resident
 * set after the load, and again at the end of the run. A node keeps its keys in LMDB, not in
 * JavaScript maps, so its heap must stay flat as the record count grows (heap with 1,000,000 records
 * within 1.5x of the heap with 10,000); RSS also counts the LMDB pages the process has touched
 * through its memory map, which grow with the data and are given back by the kernel under pressure.
 *
 * Readings come from each node's api.status answer (ProcessMemory, stamped by the node runtime).
 */
import type { RingkvClient, RingkvError } from '../client/client.js';

export interface NodeMemoryReading {
  node: string;
  heapUsedBytes: number;
  heapAfterGcBytes?: number;
  heapTotalBytes: number;
  externalBytes: number;
  rssBytes: number;
}

export interface MemoryReport {
  /** After the load phase, before the first level. */
  afterLoad: NodeMemoryReading[];
  /** After the last level. */
  atEnd: NodeMemoryReading[];
}

/** How often a node is asked before it is left out: a status answer is cheap, and a node busy with a GC pause or a burst of hinted handoff may miss one deadline. */
const memoryAttempts = 3;

/**
 * Asks every member of the cluster for its memory. A node that does not answer after
 * `memoryAttempts` tries is left out, and `onMissing` is told why (the report says who is missing
 * rather than failing the whole run).
 */
export async function readClusterMemory(client: RingkvClient, onMissing?: (node: string, why: string) => void): Promise<NodeMemoryReading[]> {
  const members = (await client.status()).members.map((m) => m.nodeId);
  const readings = await Promise.all(
    members.map(async (node) => {
      let why = 'no memory in its status answer';
      for (let attempt = 1; attempt <= memoryAttempts; attempt++) {
        try {
          const memory = (await client.status({ via: node })).memory;
          if (memory) return { node, ...memory };
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
  return readings.filter((r): r is NodeMemoryReading => r !== undefined);
}
