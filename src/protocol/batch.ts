/**
 * Batches (issue 8, item 3b): envelopes for the same role of the same peer that are ready in the same
 * event-loop turn travel as one NATS message, an envelope of kind `batch` whose body is
 * `{ items: [bytes, ...] }`, each item one complete encoded envelope. A NATS message costs the
 * sender a publish and a socket write and the server a routing step, whatever its size; under load
 * most of a node's traffic is small replica messages to the same two peers, so one message per peer
 * per turn saves most of that.
 *
 * The receiver's router unpacks a batch and routes every item exactly as if it had arrived alone:
 * decoded, validated and counted item by item, so a bad item is dropped (or refused) on its own and
 * never takes the others with it. A batch never holds a batch.
 */
import { encode } from './codec.js';
import { protocolVersion, type Envelope } from './envelope.js';

export const batchKind = 'batch';
/** The most items one batch may carry; the sender flushes earlier, the receiver drops a larger one. */
export const batchItemsMax = 1024;
/**
 * The most item bytes the sender puts in one batch: well below nats-server's default max_payload
 * (1 MiB), so that a batch is never refused for its size. An item larger than this travels alone.
 */
export const batchBytesMax = 256 * 1024;

export interface BatchBody {
  items: Uint8Array[];
}

export function encodeBatch(from: string, to: string, items: Uint8Array[]): Uint8Array {
  const env: Envelope<BatchBody> = { v: protocolVersion, kind: batchKind, from, to, reqId: '', body: { items } };
  return encode(env);
}

/** The items of a decoded batch envelope, or a sentence saying why the batch is refused as a whole. */
export function batchItems(body: unknown): Uint8Array[] | string {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as BatchBody).items)) return 'a batch body must be { items: [bytes] }';
  const items = (body as BatchBody).items;
  if (items.length > batchItemsMax) return `a batch may carry at most ${batchItemsMax} items, not ${items.length}`;
  return items;
}
