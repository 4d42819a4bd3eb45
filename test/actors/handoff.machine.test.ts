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
import type { ClusterState, MembershipStatus } from '../../src/core/cluster-state.js';
import fc from 'fast-check';

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

  /** A cluster state whose members have the given statuses. */
  const cluster = (statuses: Record<string, MembershipStatus>): ClusterState => ({
    members: Object.fromEntries(Object.entries(statuses).map(([id, status]) => [id, { status, staged: null, version: 2, by: 'n1' }])),
    ring: { version: 3, by: 'n1', q: 4, owners: ['n1', 'n2', 'n1', 'n2'] },
  });

  it('drops the hints of members that have departed (exiting or removed) before it delivers, and never sends to them', () => {
    let [s] = initialTransition(handoffMachine, input);
    let fx: Effect[];
    // No member has departed: a tick collects as before.
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(types(fx)).toEqual(['collectBatch']);
    [s] = step(s, { type: 'handoff.collected', target: null, hints: [], items: [], bytes: 0 });
    // n3 was force-removed and n4 has left: their hints can never be delivered.
    [s, fx] = step(s, { type: 'cluster.changed', cluster: cluster({ n1: 'valid', n2: 'valid', n3: 'removed', n4: 'exiting', n5: 'leaving' }) });
    expect(types(fx)).toEqual([]);
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(s.value).toBe('dropping');
    expect(fx.find((e) => e.type === 'dropHints')!.params).toEqual({ targets: ['n3', 'n4'], itemsMax: input.batchItemsMax * 16 });
    expect(types(fx)).not.toContain('collectBatch');
    // More than one step's worth: it drops again at once.
    [s, fx] = step(s, { type: 'handoff.dropped', removed: 160, more: true });
    expect(types(fx)).toEqual(['dropHints']);
    // Then it delivers the others' hints, leaving the departed out of the collection.
    [s, fx] = step(s, { type: 'handoff.dropped', removed: 3, more: false });
    expect(s.value).toBe('collecting');
    expect((fx.find((e) => e.type === 'collectBatch')!.params as { down: string[] }).down.sort()).toEqual(['n3', 'n4']);
    // A member that comes back into the cluster state (a later register won) is delivered to again.
    [s] = step(s, { type: 'handoff.collected', target: null, hints: [], items: [], bytes: 0 });
    [s] = step(s, { type: 'cluster.changed', cluster: cluster({ n1: 'valid', n2: 'valid', n3: 'removed', n4: 'valid' }) });
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(fx.find((e) => e.type === 'dropHints')!.params).toMatchObject({ targets: ['n3'] });
    [s, fx] = step(s, { type: 'handoff.dropped', removed: 0, more: false });
    expect(fx.find((e) => e.type === 'collectBatch')!.params).toMatchObject({ down: ['n3'] });
  });

  it('drops the hints of members departed before the node started (its stored cluster state)', () => {
    let [s] = initialTransition(handoffMachine, { ...input, departed: ['n3'] });
    let fx: Effect[];
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(fx.find((e) => e.type === 'dropHints')!.params).toMatchObject({ targets: ['n3'] });
  });

  it('abandons a delivery whose target departs while the batch is in flight, and drops its hints next', () => {
    let [s] = initialTransition(handoffMachine, input);
    let fx: Effect[];
    [s] = step(s, { type: 'handoff.tick' });
    [s] = step(s, { type: 'handoff.collected', target: 'n3', hints: [hint], items: [item], bytes: 40 });
    expect(s.value).toBe('delivering');
    // Another member departing changes nothing for the batch in flight.
    [s] = step(s, { type: 'cluster.changed', cluster: cluster({ n1: 'valid', n3: 'valid', n4: 'removed' }) });
    expect(s.value).toBe('delivering');
    [s, fx] = step(s, { type: 'cluster.changed', cluster: cluster({ n1: 'valid', n3: 'exiting', n4: 'removed' }) });
    expect(s.value).toBe('idle');
    expect(types(fx)).not.toContain('clearHints');
    [s, fx] = step(s, { type: 'handoff.tick' });
    expect(fx.find((e) => e.type === 'dropHints')!.params).toMatchObject({ targets: ['n3', 'n4'] });
  });

  it('takes any cluster state in any state without failing, and drops exactly the departed members', () => {
    const statuses: MembershipStatus[] = ['joining', 'valid', 'leaving', 'exiting', 'removed'];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('n2', 'n3', 'n4', 'n5'), fc.constantFrom(...statuses)), fc.boolean(), (members, inFlight) => {
        let [s] = initialTransition(handoffMachine, input);
        [s] = step(s, { type: 'handoff.tick' });
        if (inFlight) [s] = step(s, { type: 'handoff.collected', target: 'n3', hints: [hint], items: [item], bytes: 40 });
        [s] = step(s, { type: 'cluster.changed', cluster: cluster(members) });
        // A malformed state (no members) counts as none departed.
        [s] = step(s, { type: 'cluster.changed', cluster: { ...cluster(members), members: null as never } });
        [s] = step(s, { type: 'cluster.changed', cluster: cluster(members) });
        expect(s.status).toBe('active');
        const departed = Object.keys(members).filter((id) => members[id] === 'exiting' || members[id] === 'removed').sort();
        expect(Object.keys(s.context.gone).sort()).toEqual(departed);
        if (inFlight) expect(s.value).toBe(departed.includes('n3') ? 'idle' : 'delivering');
      }),
      { numRuns: 200 },
    );
  });
});
