/**
 * The coordinator core and the xstate coordinator machine are the same protocol: for any sequence
 * of replica answers, duplicates, errors, stray request ids and wake-ups, both answer the client the
 * same way the same number of times (exactly once when the request is over) and send the same
 * replica messages in the same order. Replica answers carrying another request id reach the machine
 * only through the node's routing, which drops them; the core drops them itself. The machine is what nodes run today; the core is what the
 * request path moves to, so this test is what lets the one replace the other.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { type CoreEvent, startRequest, step } from '../../actors/coordinator.core.js';
import { type CoordinatorInput, coordinatorMachine } from '../../actors/coordinator.machine.js';
import { type DvvSet, update } from '../../src/core/dvv.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const stateA: DvvSet = update([], [], 'n1/e1', bytes('A'));
const stateB: DvvSet = update([], [], 'n2/e2', bytes('B'));
const states = [stateA, stateB, null] as const;
const nodes = ['n1', 'n2', 'n3', 'n4'] as const;

function inputOf(op: 'put' | 'get', alive: string[], w: number, r: number, primariesNeeded: number, sloppy: boolean): CoordinatorInput {
  return {
    op,
    id: 'coordinator-4',
    nodeId: 'n1',
    client: { replyTo: '_INBOX.c', from: 'client', reqId: '1', kind: op === 'get' ? 'api.get' : 'api.put' },
    partition: 5,
    key: bytes('k'),
    preferenceList: ['n1', 'n2', 'n3'],
    targets: alive.map((node) => (node === 'n4' ? { node, hintFor: 'n3' } : { node })),
    localHints: [],
    quorum: { n: 3, r, w },
    primariesNeeded,
    sloppy,
    timeoutMs: 1000,
    readRepairWaitMs: 50,
    context: [],
    value: bytes('v'),
  };
}

const eventArb: fc.Arbitrary<CoreEvent> = fc.oneof(
  fc.record({ from: fc.constantFrom(...nodes), s: fc.constantFrom(stateA, stateB), id: fc.constantFrom('coordinator-4', 'other') }).map(
    ({ from, s, id }): CoreEvent => ({ type: 'replica.coordinate.ok', from, reqId: id, body: { state: s } }),
  ),
  fc.record({ from: fc.constantFrom(...nodes), id: fc.constantFrom('coordinator-4', 'other') }).map(
    ({ from, id }): CoreEvent => ({ type: 'replica.put.ok', from, reqId: id, body: {} }),
  ),
  fc.record({ from: fc.constantFrom(...nodes), s: fc.constantFrom(...states), id: fc.constantFrom('coordinator-4', 'other') }).map(
    ({ from, s, id }): CoreEvent => ({ type: 'replica.get.ok', from, reqId: id, body: { state: s } }),
  ),
  fc.constantFrom(...nodes).map((from): CoreEvent => ({ type: 'replica.error', from, reqId: 'coordinator-4', body: { code: 'X', message: 'y' } })),
  fc.constantFrom('coordinator-4', 'other').map((reqId): CoreEvent => ({ type: 'deadline', reqId })),
  fc.constantFrom('coordinator-4', 'other').map((reqId): CoreEvent => ({ type: 'repairWaitOver', reqId })),
);

/** The I/O a run asked for, in order: client answers and replica messages. */
type Io = ['answer', unknown] | ['send', unknown];

function ioOf(effects: readonly { type: string; params?: unknown }[]): Io[] {
  return effects.flatMap((e): Io[] => {
    if (e.type === 'answerClient') return [['answer', e.params]];
    if (e.type === 'send') return [['send', e.params]];
    if (e.type === 'sendAll') return (e.params as unknown[]).map((p): Io => ['send', p]);
    return [];
  });
}

describe('coordinator core and coordinator machine', () => {
  it('ask the same replicas and answer the client the same way for any sequence of events', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('put' as const, 'get' as const),
        fc.subarray([...nodes], { minLength: 0 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        fc.array(eventArb, { maxLength: 12 }),
        (op, alive, w, r, pn, sloppy, events) => {
          // A put runs on one of its targets, this node first (create-node only starts it so).
          const targets = op === 'put' ? ['n1', ...alive.filter((n) => n !== 'n1')] : alive;
          const input = inputOf(op, targets, w, r, pn, sloppy);

          let [snapshot, actions] = initialTransition(coordinatorMachine, input);
          const machineIo = ioOf(actions);
          let core = startRequest(input, 0);
          const coreIo = ioOf(core.effects);
          for (const event of events) {
            // The node routes a replica answer to a coordinator only when it carries the request id
            // the coordinator serves (actors/node-routes.ts coordinatorFor); the core checks the id
            // itself, so the stray answers go to the core and not to the machine.
            const routed = !event.type.startsWith('replica.') || event.reqId === input.id;
            if (routed) {
              [snapshot, actions] = transition(coordinatorMachine, snapshot, event);
              machineIo.push(...ioOf(actions));
            }
            core = step(core.request, event, 0);
            coreIo.push(...ioOf(core.effects));
          }
          expect(coreIo).toEqual(machineIo);
          // Over in one exactly when over in the other, and then answered exactly once.
          expect(core.request.state === 'done').toBe(snapshot.value === 'idle');
          const answered = coreIo.filter(([k]) => k === 'answer').length;
          expect(answered).toBeLessThanOrEqual(1);
          if (core.request.state === 'done' || core.request.state === 'repairing') expect(answered).toBe(1);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
