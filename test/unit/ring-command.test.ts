/** `ringkv ring` rebuilds the ring from a status answer exactly as the nodes built it. */
import { describe, expect, it } from 'vitest';
import { ringOfStatus } from '../../src/cli/ring-command.js';
import { statusOf } from '../../actors/node.machine.js';
import { claimInitial } from '../../src/core/ring.js';

describe('ringkv ring', () => {
  it('recovers every owner from the members and the partitions they list', () => {
    const ring = claimInitial(['a', 'b', 'c', 'd', 'e'], 64);
    const status = statusOf({ cluster: 'x', ring, quorumDefault: { n: 3, r: 2, w: 2 }, nodeId: 'a', down: {} } as never);
    expect(ringOfStatus(status)).toEqual(ring);
  });
});
