/** `ringkv demo cart` end to end: real processes, a SIGKILL in the middle, no acknowledged item lost. */
import { describe, expect, it } from 'vitest';
import { mergeCarts, runCartDemo } from '../../src/cli/demo-cart-command.js';
import { ensureBuilt } from '../support/cluster.js';

describe('demo cart', () => {
  it('merges carts by union', () => {
    expect(mergeCarts([{ items: ['b', 'a'] }, { items: ['c', 'a'] }])).toEqual({ items: ['a', 'b', 'c'] });
  });

  it('keeps every acknowledged item although a node is killed', { timeout: 90_000 }, async () => {
    ensureBuilt();
    const report = await runCartDemo({ itemsPerClient: 10, log: () => {} });
    expect(report.itemsAcked).toBeGreaterThanOrEqual(15);
    expect(report.missing).toEqual([]);
    expect(report.finalItems).toBeGreaterThanOrEqual(report.itemsAcked);
  });
});
