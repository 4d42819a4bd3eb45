/**
 * The node machine's coordinator slots: a coordinator that has finished a request stays idle in its
 * slot and serves the next request (no spawn), and an answer that arrives late for the finished
 * request is dropped, never counted by the request now in its slot (each coordinator has its own request id, coordinator-<slot>.<seq>).
 * The other children are stubs: only the node and its coordinators run.
 */
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import { coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { nodeMachine } from '../../actors/node.machine.js';
import { coordinatorChildId } from '../../actors/node-routes.js';
import type { SendParams } from '../../actors/replica.machine.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { nodeTestInput } from '../support/node-input.js';

const idle = createMachine({});
const ring = claimInitial(['n1', 'n2', 'n3'], 8);
const key = new TextEncoder().encode('k');

function start() {
  const sent: SendParams[] = [];
  const answers: AnswerParams[] = [];
  let late = 0;
  let actor: ReturnType<typeof createActor<typeof nodeMachine>> | undefined;
  const machine = nodeMachine.provide({
    actions: { answerClient: (_, p) => void answers.push(p), dropLate: () => void late++ },
    actors: {
      coordinator: coordinatorMachine.provide({
        actions: {
          send: (_, p) => void sent.push(p),
          sendAll: (_, ps) => void sent.push(...ps),
          answerClient: (_, p) => void answers.push(p),
          // As the runtime does: the coordinator's report goes to the node.
          tellNode: (_, e) => void actor!.send(e),
        },
      }),
      replica: idle,
      gossip: idle,
      handoff: idle,
      antiEntropy: idle,
      transfer: idle,
    } as never,
  });
  const input = nodeTestInput(ring);
  actor = createActor(machine, { input });
  actor.start();
  return { actor, sent, answers, late: () => late };
}

const get = (reqId: string): NodeEvent => ({
  type: 'api.get',
  from: 'client',
  reqId,
  replyTo: `_INBOX.${reqId}`,
  key,
  options: {},
  forwarded: false,
  bytes: new Uint8Array(),
});
const getOk = (from: string, reqId: string): NodeEvent => ({ type: 'replica.get.ok', from, reqId, body: { state: null } });

describe('node machine: coordinator slots', () => {
  it('spawns a coordinator only when no idle one is free', () => {
    const { actor, sent } = start();
    actor.send(get('a'));
    actor.send(get('b'));
    const [a, b] = [sent[0]!.reqId, sent[3]!.reqId];
    expect([coordinatorChildId(a), coordinatorChildId(b)]).toEqual(['coordinator-0', 'coordinator-1']);
    for (const from of ['n1', 'n2', 'n3']) actor.send(getOk(from, b));
    expect(actor.getSnapshot().context).toMatchObject({ coordinators: 1, slots: 2, freeSlots: [1] });
    sent.length = 0;
    actor.send(get('c'));
    expect(coordinatorChildId(sent[0]!.reqId)).toBe('coordinator-1');
    actor.send(get('d'));
    expect(coordinatorChildId(sent[3]!.reqId)).toBe('coordinator-2');
    expect(Object.keys(actor.getSnapshot().children).filter((id) => id.startsWith('coordinator-')).sort()).toEqual(['coordinator-0', 'coordinator-1', 'coordinator-2']);
    actor.stop();
  });

  it('reuses a finished coordinator slot and drops a late answer meant for the finished coordinator', () => {
    // The key must be one that n1 replicates, so that n1 coordinates it.
    expect(preferenceList(ring, partitionOf(key, ring.q), 3)).toContain('n1');
    const { actor, sent, answers, late } = start();

    actor.send(get('a'));
    const first = sent[0]!.reqId;
    expect(coordinatorChildId(first)).toBe('coordinator-0');
    for (const from of ['n1', 'n2', 'n3']) actor.send(getOk(from, first));
    expect(answers.map((a) => a.reqId)).toEqual(['a']);
    expect(actor.getSnapshot().context.coordinators).toBe(0);
    expect(actor.getSnapshot().context.freeSlots).toEqual([0]);
    const firstChild = actor.getSnapshot().children['coordinator-0'];
    // Idle, not finished: it waits in its slot for the next request.
    expect(firstChild?.getSnapshot()).toMatchObject({ status: 'active', value: 'idle' });
    // A late answer for the request it finished is dropped while it is idle, too.
    actor.send(getOk('n2', first));
    expect(late()).toBe(1);

    sent.length = 0;
    actor.send(get('b'));
    const second = sent[0]!.reqId;
    expect(coordinatorChildId(second)).toBe('coordinator-0');
    expect(second).not.toBe(first);
    // The same actor serves the second request (no spawn), with nothing left of the first.
    const child = actor.getSnapshot().children['coordinator-0'] as unknown as { getSnapshot(): { value: unknown; context: Record<string, unknown> } };
    expect(child).toBe(firstChild);
    expect(child.getSnapshot().value).toBe('collecting');
    expect(child.getSnapshot().context).toMatchObject({ id: second, answers: {}, acked: [], state: [], client: { reqId: 'b' } });

    // A duplicate of the first request's answers: late, so dropped, and b still lacks its quorum.
    actor.send(getOk('n2', first));
    actor.send(getOk('n3', first));
    expect(late()).toBe(3);
    expect(answers.map((a) => a.reqId)).toEqual(['a']);

    actor.send(getOk('n2', second));
    actor.send(getOk('n3', second));
    expect(answers.map((a) => a.reqId)).toEqual(['a', 'b']);
    // Unknown and malformed request ids are late answers too.
    actor.send(getOk('n2', 'coordinator-7.99'));
    actor.send(getOk('n2', 'coordinator-x'));
    expect(late()).toBe(5);
    // The third replica's answer ends b's read-repair wait: the slot is free again.
    actor.send(getOk('n1', second));
    expect(late()).toBe(5);
    expect(actor.getSnapshot().context).toMatchObject({ coordinators: 0, slots: 1, freeSlots: [0] });
    actor.stop();
  });
});
