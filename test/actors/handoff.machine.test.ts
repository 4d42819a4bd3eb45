/**
 * The handoff machine through xstate's pure transition functions: it delivers one batch at a time to
 * a target that is up, removes hints only after the target's ack, retries after a timeout, stops
 * sending to a target judged down, and applies batches that peers deliver to it.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { HandoffEvent } from '../../actors/handoff.events.js';
import { type HandoffInput, handoffMachine } from '../../actors/handoff.machine.js';
import type { Hint } from '../../src/ports/store.js';

type Snapshot = SnapshotFrom<typeof handoffMachine>;
interface Effect {
  type: string;
  params?: unknown;
}

const input: HandoffInput = { nodeId: 'n1', batchItemsMax: 10, batchBytesMax: 1000, rateBytesPerSec: 1000, attemptTimeoutMs: 500 };
const key = new TextEncoder().encode('k');
const hint: Hint = { target: 'n3', partition: 2, key, seq: 7, since: 0 };
const item = { p: 2, key, state: [['n1/e', 1, [new TextEncoder().encode('v')]]] as [string, number, Uint8Array[]][] };

function step(s: Snapshot, event: HandoffEvent): [Snapshot, Effect[]] {
  const [next, actions] = transition(handoffMachine, s, event);
  return [next, actions.map((a) => ({ type: a.type, params: a.params }))];
}

const types = (fx: Effect[]) => fx.map((e) => e.type).filter((t) => !t.startsWith('xstate.'));

describe('handoff machine', () => {
  it('delivers a batch and removes its hints only after the target acks the commit', () => {
    let [s] = initialTransition(handoffMachine, input);
    let fx: Effect[];
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(types(fx)).toEqual(['collectBatch']);
    [s, fx] = step(s, { type: 'handoff.collected', target: 'n3', hints: [hint], items: [item], bytes: 40 });
    const send = fx.find((e) => e.type === 'send')!.params as { to: string; kind: string; reqId: string; body: { items: unknown[] } };
    expect(send).toMatchObject({ to: 'n3', kind: 'handoff.batch', body: { items: [item] } });
    expect(types(fx)).not.toContain('clearHints');

    // An ack from someone else, or for another batch, changes nothing.
    [s, fx] = step(s, { type: 'handoff.batch.ok', from: 'n2', reqId: send.reqId, body: {} });
    expect(types(fx)).toEqual([]);
    [s, fx] = step(s, { type: 'handoff.batch.ok', from: 'n3', reqId: send.reqId, body: {} });
    expect(fx.find((e) => e.type === 'clearHints')!.params).toEqual({ hints: [hint], bytes: 40 });
    [s, fx] = step(s, { type: 'handoff.cleared', removed: 1 });
    expect(s.value).toBe('pacing');
    [s, fx] = step(s, { type: 'paced' });
    expect(types(fx)).toEqual(['collectBatch']);
    [s] = step(s, { type: 'handoff.collected', target: null, hints: [], items: [], bytes: 0 });
    expect(s.value).toBe('idle');
  });

  it('keeps the hints when the target does not ack in time, and tries again later', () => {
    let [s] = initialTransition(handoffMachine, input);
    let fx: Effect[];
    [s] = step(s, { type: 'handoff.tick' });
    [s] = step(s, { type: 'handoff.collected', target: 'n3', hints: [hint], items: [item], bytes: 40 });
    [s, fx] = step(s, { type: 'attemptTimedOut' });
    expect(s.value).toBe('idle');
    expect(types(fx)).not.toContain('clearHints');
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(types(fx)).toEqual(['collectBatch']);
  });

  it('abandons a delivery to a target judged down, and leaves it out of the next collection', () => {
    let [s] = initialTransition(handoffMachine, input);
    let fx: Effect[];
    [s] = step(s, { type: 'handoff.tick' });
    [s] = step(s, { type: 'handoff.collected', target: 'n3', hints: [hint], items: [item], bytes: 40 });
    [s] = step(s, { type: 'member.down', nodeId: 'n3' });
    expect(s.value).toBe('idle');
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(fx.find((e) => e.type === 'collectBatch')!.params).toMatchObject({ down: ['n3'] });
    // Back up: delivery starts at once.
    [s] = step(s, { type: 'handoff.collected', target: null, hints: [], items: [], bytes: 0 });
    [s, fx] = step(s, { type: 'member.up', nodeId: 'n3' });
    expect(fx.find((e) => e.type === 'collectBatch')!.params).toMatchObject({ down: [] });
  });

  it('applies a batch a peer delivers, in any state', () => {
    const [s] = initialTransition(handoffMachine, input);
    const [, fx] = step(s, { type: 'handoff.batch', from: 'n2', reqId: 'handoff-3', body: { items: [item] } });
    expect(fx.find((e) => e.type === 'applyBatch')!.params).toEqual({ from: 'n2', reqId: 'handoff-3', items: [item] });
  });
});
