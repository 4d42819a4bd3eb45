// Hinted handoff's I/O (src/runtime/handoff-io.ts), alone on the simulator's store and network:
// batches of hints for one reachable target, hints cleared once delivered or dropped for departed
// members, and a peer's batch merged and acknowledged only after its commit.
import { describe, expect, it } from 'vitest';
import type { HandoffItem } from '../../actors/handoff.events.js';
import type { DvvSet } from '../../src/core/dvv.js';
import { applyWrite } from '../../src/core/replica-write.js';
import type { Hint } from '../../src/ports/store.js';
import { createHandoffIo } from '../../src/runtime/handoff-io.js';
import { createOutbound } from '../../src/runtime/outbound-io.js';
import { recorder, rolePorts } from '../support/role-ports.js';

const enc = new TextEncoder();

async function setup() {
  const t = await rolePorts();
  const out = createOutbound({ shared: t.shared, transport: t.transport });
  const io = createHandoffIo({ nodeId: 'n1', store: t.store, clock: t.clock, log: t.log, send: out.send });
  /** Writes `key` (partition 1) here with a hint for each of `targets`. */
  const hinted = async (key: string, targets: string[]) => {
    const write = { kind: 'coordinate' as const, context: [], value: enc.encode(`v-${key}`), siblingsMax: 8 };
    const done = t.store.update(1, enc.encode(key), (current) => applyWrite(current, write, 'n1.e1'), { targets, now: t.clock.now() });
    await t.run();
    await done;
  };
  return { t, io, hinted };
}

type Collected = { type: string; target: string | null; hints: Hint[]; items: HandoffItem[]; bytes: number };

describe('handoff-io', () => {
  it('collects a batch for the first target that is not down, with each object as stored, within the batch limits', async () => {
    const { t, io, hinted } = await setup();
    await hinted('a', ['n3']);
    await hinted('b', ['n2']);
    await hinted('c', ['n2']);
    await hinted('d', ['n2']);
    const self = recorder<Collected>();
    io.collectBatch({ self }, { down: ['n3'], itemsMax: 2, bytesMax: 1_000_000 });
    expect(self.events).toHaveLength(1);
    const batch = self.events[0]!;
    expect(batch.target).toBe('n2');
    expect(batch.items.map((i) => new TextDecoder().decode(i.key))).toEqual(['b', 'c']);
    expect(batch.hints.map((h) => h.target)).toEqual(['n2', 'n2']);
    expect(batch.items[0]!.state).toEqual(t.store.get(1, enc.encode('b')));
    expect(batch.bytes).toBeGreaterThan(0);
    // Nobody reachable: an empty batch, so the machine knows to wait.
    io.collectBatch({ self }, { down: ['n2', 'n3'], itemsMax: 2, bytesMax: 1_000_000 });
    expect(self.events[1]).toMatchObject({ target: null, items: [], hints: [] });
  });

  it('clears delivered hints and counts them in the tally', async () => {
    const { t, io, hinted } = await setup();
    await hinted('a', ['n2']);
    await hinted('b', ['n2']);
    const self = recorder();
    const hints = [...t.store.hints()];
    io.clearHints({ self }, { hints, bytes: 40 });
    await t.run();
    expect(self.events).toEqual([{ type: 'handoff.cleared', removed: 2 }]);
    expect(t.store.hintCount()).toBe(0);
    expect(io.deliveries.total).toBe(2);
    expect(io.deliveries.totalBytes).toBe(40);
  });

  it("drops a departed member's hints in steps of itemsMax, keeps the objects, and answers even when there is nothing to drop", async () => {
    const { t, io, hinted } = await setup();
    await hinted('a', ['n9']);
    await hinted('b', ['n9']);
    await hinted('c', ['n9', 'n2']);
    const self = recorder();
    io.dropHints({ self }, { targets: ['n9'], itemsMax: 2 });
    await t.run();
    expect(self.events).toEqual([{ type: 'handoff.dropped', removed: 2, more: true }]);
    io.dropHints({ self }, { targets: ['n9'], itemsMax: 2 });
    await t.run();
    expect(self.events[1]).toEqual({ type: 'handoff.dropped', removed: 1, more: false });
    expect([...t.store.hints()].map((h) => h.target)).toEqual(['n2']);
    expect(io.deliveries.dropped).toBe(3);
    expect(t.store.get(1, enc.encode('a'))).toBeDefined();
    // Nothing left for n9: answered after the machine's transition, not during it.
    io.dropHints({ self }, { targets: ['n9'], itemsMax: 2 });
    expect(self.events).toHaveLength(2);
    await Promise.resolve();
    expect(self.events[2]).toEqual({ type: 'handoff.dropped', removed: 0, more: false });
  });

  it("merges a peer's batch (never an overwrite) and acknowledges it only after the commit, with the kind asked for", async () => {
    const { t, io, hinted } = await setup();
    await hinted('a', []);
    const mine = t.store.get(1, enc.encode('a'))!;
    const theirs: DvvSet = applyWrite(undefined, { kind: 'coordinate', context: [], value: enc.encode('theirs'), siblingsMax: 8 }, 'n2.e1').next!;
    let committed = 0;
    io.applyBatch({ from: 'n2', reqId: 'b1', items: [{ p: 1, key: enc.encode('a'), state: theirs }] });
    io.applyBatch({ from: 'n2', reqId: 't1', items: [{ p: 1, key: enc.encode('z'), state: theirs }] }, 'handoff.transfer.ok', () => committed++);
    expect(t.peer).toEqual([]);
    await t.run();
    expect(t.peer.map((m) => [m.role, m.env.kind, m.env.reqId])).toEqual([
      ['handoff', 'handoff.batch.ok', 'b1'],
      ['handoff', 'handoff.transfer.ok', 't1'],
    ]);
    expect(committed).toBe(1);
    // Both siblings stay: the peer's state was merged with the one here.
    expect(t.store.get(1, enc.encode('a'))!.map(([id]) => id).sort()).toEqual([mine[0]![0], 'n2.e1'].sort());
  });
});
