// The node's epoch while it runs (src/runtime/epoch-io.ts), alone on the simulator's store and
// clock: the one writer of shared.identity renews it when a dot of the current clock id could be
// made twice, stores it, and renews at most once per turn for corrupt objects.
import { describe, expect, it } from 'vitest';
import type { DvvSet } from '../../src/core/dvv.js';
import type { CorruptObject, Store } from '../../src/ports/store.js';
import { createEpochIo } from '../../src/runtime/epoch-io.js';
import { dotIdOf } from '../../src/runtime/identity.js';
import { rolePorts } from '../support/role-ports.js';

async function setup(store?: (store: Store) => Store) {
  const t = await rolePorts();
  let n = 0;
  const io = createEpochIo({ shared: t.shared, store: store ? store(t.store) : t.store, clock: t.clock, newEpoch: () => `fresh${++n}` });
  return { t, io };
}

const stateBy = (dotId: string): DvvSet => [[dotId, 1, [new Uint8Array([1])]]] as DvvSet;

describe('epoch-io', () => {
  it('renews at once: the new clock id is what the next dot reads, and it is stored as running', async () => {
    const { t, io } = await setup();
    io.renewEpochNow('a test');
    expect(t.shared.identity).toMatchObject({ nodeId: 'n1', epoch: 'fresh1', dotId: dotIdOf('n1', 'fresh1'), isNewEpoch: true, clusterId: 'cluster-id-1' });
    await t.run();
    expect(t.store.getMeta('identity')).toEqual({ nodeId: 'n1', epoch: 'fresh1', running: true, clusterId: 'cluster-id-1' });
    expect(t.log.lines.map((l) => l.msg)).toEqual(['new epoch: a test']);
    expect(t.log.lines[0]!.fields).toEqual({ from: 'e1', to: 'fresh1' });
  });

  it('renews before a drop only when a dropped state carries a dot of the current clock id', async () => {
    const { t, io } = await setup();
    io.renewEpochBeforeDrop([stateBy('n2.e1'), stateBy('n1.old')]);
    expect(t.shared.identity.epoch).toBe('e1');
    io.renewEpochBeforeDrop([stateBy('n2.e1'), stateBy(t.shared.identity.dotId)]);
    expect(t.shared.identity.epoch).toBe('fresh1');
    // The old clock id is not the current one any more: dropping its dots needs no new epoch.
    io.renewEpochBeforeDrop([stateBy('n1.e1')]);
    expect(t.shared.identity.epoch).toBe('fresh1');
  });

  it('counts and logs every corrupt object, and renews at most once per turn for them', async () => {
    let watcher: ((found: CorruptObject) => void) | undefined;
    const { t, io } = await setup((store) => Object.assign(Object.create(store) as Store, { watchCorruption: (w: (found: CorruptObject) => void) => (watcher = w) }));
    io.watchCorruption();
    const found = (partition: number): CorruptObject => ({ partition, key: new Uint8Array([1]), where: 'read' });
    watcher!(found(1));
    watcher!(found(2));
    expect(t.shared.stats.objectsCorrupt).toBe(2);
    expect(t.shared.identity.epoch).toBe('fresh1');
    await t.run(1);
    watcher!(found(3));
    expect(t.shared.identity.epoch).toBe('fresh2');
    expect(t.log.lines.filter((l) => l.level === 'warn')).toHaveLength(3);
  });
});
