/**
 * The memory report of `ringkv bench --memory` (issue 8): each node's JavaScript heap and resident
 * set after the load, and again at the end of the run. A node keeps its keys in LMDB, not in
 * JavaScript maps, so its heap must stay flat as the record count grows (heap with 1,000,000 records
 * within 1.5x of the heap with 10,000); RSS also counts the LMDB pages the process has touched
 * through its memory map, which grow with the data and are given back by the kernel under pressure.
 *
 * Readings come from each node's api.status answer (ProcessMemory, stamped by the node runtime).
 */
import type { RingkvClient } from '../client/client.js';
import { readEachNode } from './node-status.js';

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

/**
 * Asks every member of the cluster for its memory. A node that does not answer is left out, and
 * `onMissing` is told why (the report says who is missing rather than failing the whole run).
 */
export async function readClusterMemory(client: RingkvClient, onMissing?: (node: string, why: string) => void): Promise<NodeMemoryReading[]> {
  const readings = await readEachNode(client, (status) => status.memory, onMissing);
  return readings.map(({ node, value }) => ({ node, ...value }));
}
