import { describe, expect, it } from 'vitest';
import { ClusterIdMismatchError, loadIdentity, markCleanStop } from '../../src/runtime/identity.js';
import { MemoryStore } from '../../src/runtime/loop-ports.js';

describe('the cluster id in a node identity', () => {
  it('is stored at the first start, kept by later ones, and a start with another id (the wrong secret) is refused', async () => {
    const store = new MemoryStore();
    const first = await loadIdentity(store, 'n1', () => 'e1', 'id-a');
    expect(first.clusterId).toBe('id-a');
    await markCleanStop(store, first);
    const again = await loadIdentity(store, 'n1', () => 'e2', 'id-a');
    expect(again).toMatchObject({ epoch: 'e1', clusterId: 'id-a', isNewEpoch: false });
    await markCleanStop(store, again);
    const wrong = loadIdentity(store, 'n1', () => 'e3', 'id-b');
    await expect(wrong).rejects.toBeInstanceOf(ClusterIdMismatchError);
    await expect(loadIdentity(store, 'n1', () => 'e3', 'id-b')).rejects.toMatchObject({ code: 'CLUSTER_MISMATCH' });
    // Refusing changed nothing: the right secret still starts it with its epoch.
    expect(await loadIdentity(store, 'n1', () => 'e4', 'id-a')).toMatchObject({ epoch: 'e1', clusterId: 'id-a' });
  });
});
