/**
 * A coordinator's replica.put requests of one turn, per replica they go to, as one replica.puts
 * envelope (src/protocol/messages.ts): each item carries only the fields of its request, the state
 * as the bytes it was encoded as once (encoded-states.ts). One encode per peer and turn where a batch
 * of replica.put envelopes cost one per item, and about 70 fewer bytes per item on the wire.
 *
 * The turn's requests go out from a microtask: after the coordinator's batch that made them and
 * before the transport's end-of-turn flush (and the store's group commit, which flushes the
 * transport first), so they leave with the turn as they did one by one. A lone request goes as a
 * plain replica.put; a turn's worth is cut into envelopes of at most replicaPutsItemsMax items and
 * about batchBytesMax bytes.
 */
import type { DvvSet } from '../core/dvv.js';
import { batchBytesMax } from '../protocol/batch.js';
import { encodeEnvelope, protocolVersion } from '../protocol/envelope.js';
import { type ReplicaPutBody, type ReplicaPutsItem, replicaPutsItemsMax } from '../protocol/messages.js';
import type { Transport } from '../ports/transport.js';
import { encodedState } from './encoded-states.js';

/** Room in an envelope for one item's own fields besides its key and state (reqId, p, headers). */
const itemOverheadBytes = 64;

export interface ReplicaPutsOutbox {
  /** A replica.put for `to` (another node), sent with the turn's others. */
  add(to: string, reqId: string, body: ReplicaPutBody): void;
}

export function createReplicaPutsOutbox(nodeId: string, transport: Transport): ReplicaPutsOutbox {
  let pending = new Map<string, ReplicaPutsItem[]>();
  let flushQueued = false;

  const sendItems = (to: string, items: ReplicaPutsItem[]) => {
    if (items.length === 1) {
      const [reqId, p, key, state, hint] = items[0]!;
      const body = hint === null ? { p, key, state } : { p, key, state, hint };
      transport.send(to, 'replica', encodeEnvelope({ v: protocolVersion, kind: 'replica.put', from: nodeId, to, reqId, body }));
      return;
    }
    transport.send(to, 'replica', encodeEnvelope({ v: protocolVersion, kind: 'replica.puts', from: nodeId, to, reqId: '', body: { items } }));
  };

  const flush = () => {
    flushQueued = false;
    const turn = pending;
    pending = new Map();
    for (const [to, items] of turn) {
      let start = 0;
      let bytes = 0;
      for (let i = 0; i < items.length; i++) {
        const size = items[i]![2].length + items[i]![3].length + itemOverheadBytes;
        if (i > start && (i - start >= replicaPutsItemsMax || bytes + size > batchBytesMax)) {
          sendItems(to, items.slice(start, i));
          start = i;
          bytes = 0;
        }
        bytes += size;
      }
      sendItems(to, start === 0 ? items : items.slice(start));
    }
  };

  return {
    add(to, reqId, body) {
      const item: ReplicaPutsItem = [reqId, body.p, body.key, encodedState(body.state as DvvSet), body.hint ?? null];
      const items = pending.get(to);
      if (items) items.push(item);
      else pending.set(to, [item]);
      if (flushQueued) return;
      flushQueued = true;
      queueMicrotask(flush);
    },
  };
}
