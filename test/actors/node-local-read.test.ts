/**
 * Client-driven reads at the node (api.local.get): the node reads its own state of the key and
 * answers the client directly, with no coordinator and no replica transition (readLocal); a node that is not one of the key's targets by its own ring
 * says NOT_OWNER (the client's ring is stale), and a bad quorum gets BAD_REQUEST. A node that stands
 * in for a primary it believes down (a fallback target) answers too.
 */
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { AnswerParams } from '../../actors/coordinator.machine.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { nodeMachine } from '../../actors/node.machine.js';
import type { ReadAndReplyParams } from '../../actors/replica.machine.js';
import { claimInitial, partitionOf, preferenceList } from '../../src/core/ring.js';
import { nodeTestInput } from '../support/node-input.js';

const idle = createMachine({});
const ring = claimInitial(['n1', 'n2', 'n3', 'n4'], 8);
const text = new TextEncoder();

function start() {
  const answers: AnswerParams[] = [];
  const reads: ReadAndReplyParams[] = [];
  const machine = nodeMachine.provide({
    actions: { answerClient: (_, p) => void answers.push(p), readLocal: (_, p) => void reads.push(p) },
    actors: {
      coordinator: idle,
      replica: idle,
      gossip: idle,
      handoff: idle,
      antiEntropy: idle,
      transfer: idle,
    } as never,
  });
  const input = nodeTestInput(ring);
  const actor = createActor(machine, { input });
  actor.start();
  return { actor, answers, reads };
}

const localGet = (key: Uint8Array, reqId: string, options: Record<string, number> = {}): NodeEvent => ({
  type: 'api.local.get',
  from: 'client',
  reqId,
  replyTo: `_INBOX.${reqId}`,
  key,
  options,
  forwarded: false,
  bytes: new Uint8Array(),
});

/** A key whose 3-node preference list does (or does not) hold n1. */
function keyWhere(holdsN1: boolean): { key: Uint8Array; primaries: string[] } {
  for (let i = 0; ; i++) {
    const key = text.encode(`k${i}`);
    const primaries = preferenceList(ring, partitionOf(key, ring.q), 3);
    if (primaries.includes('n1') === holdsN1) return { key, primaries };
  }
}

describe('api.local.get at the node', () => {
  it('reads its own state of the key, which answers the client itself', () => {
    const { actor, answers, reads } = start();
    const { key } = keyWhere(true);
    actor.send(localGet(key, 'r1'));
    expect(answers).toEqual([]);
    expect(reads).toEqual([{ type: 'replica.local.get', replyTo: '_INBOX.r1', from: 'client', reqId: 'r1', p: partitionOf(key, ring.q), key }]);
  });

  it('says NOT_OWNER when this node is not one of the key\'s targets, and reads nothing', () => {
    const { actor, answers, reads } = start();
    const { key } = keyWhere(false);
    actor.send(localGet(key, 'r2'));
    expect(reads).toEqual([]);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ replyTo: '_INBOX.r2', kind: 'error', body: { code: 'NOT_OWNER' } });
  });

  it('answers as a fallback target when it stands in for a primary it believes down', () => {
    const { actor, answers, reads } = start();
    const { key, primaries } = keyWhere(false);
    actor.send(localGet(key, 'r3'));
    expect(answers).toHaveLength(1);
    // n1 is the only node outside the preference list: with a primary down, it stands in.
    actor.send({ type: 'member.down', nodeId: primaries[0]! });
    actor.send(localGet(key, 'r4'));
    expect(answers).toHaveLength(1);
    expect(reads.map((r) => r.reqId)).toEqual(['r4']);
  });

  it('refuses a bad quorum with BAD_REQUEST', () => {
    const { actor, answers, reads } = start();
    const { key } = keyWhere(true);
    actor.send(localGet(key, 'r5', { n: 2, r: 3 }));
    expect(reads).toEqual([]);
    expect(answers[0]).toMatchObject({ kind: 'error', body: { code: 'BAD_REQUEST' } });
  });
});
