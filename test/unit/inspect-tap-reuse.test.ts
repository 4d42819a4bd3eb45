/**
 * The inspection tap on a real node machine whose coordinators are reused: a request served by an
 * idle coordinator (coordinator.start, no spawn) is followed whole from its start to its return to
 * idle, reads like a spawned one's (states checking -> ... -> idle), and the requests the same actor
 * served before and after it are not in the session.
 */
import { createActor, createMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { coordinatorMachine } from '../../actors/coordinator.machine.js';
import type { NodeEvent } from '../../actors/node.events.js';
import { nodeMachine } from '../../actors/node.machine.js';
import { summarizeTrace } from '../../src/runtime/inspect-client.js';
import type { InspectRecord } from '../../src/runtime/inspect-protocol.js';
import { InspectTap } from '../../src/runtime/inspect-tap.js';
import { claimInitial } from '../../src/core/ring.js';
import { nodeTestInput } from '../support/node-input.js';

const stub = createMachine({});
const ring = claimInitial(['n1', 'n2', 'n3'], 8);
const key = new TextEncoder().encode('k');

function start() {
  const sent: { reqId: string }[] = [];
  let node: ReturnType<typeof createActor<typeof nodeMachine>> | undefined;
  const machine = nodeMachine.provide({
    actions: { answerClient: () => {}, dropLate: () => {} },
    actors: {
      coordinator: coordinatorMachine.provide({
        actions: {
          send: (_, p) => void sent.push(p),
          sendAll: (_, ps) => void sent.push(...ps),
          answerClient: () => {},
          tellNode: (_, e) => void node!.send(e),
        },
      }),
      replica: stub,
      gossip: stub,
      handoff: stub,
      antiEntropy: stub,
      transfer: stub,
    } as never,
  });
  const input = nodeTestInput(ring);
  node = createActor(machine, { input, id: 'n1' });
  const tap = new InspectTap({ nodeId: 'n1', clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} } });
  tap.attach(node);
  node.start();
  return { node, tap, sent };
}

const get = (reqId: string): NodeEvent => ({ type: 'api.get', from: 'client', reqId, replyTo: `_INBOX.${reqId}`, key, options: {}, forwarded: false, bytes: new Uint8Array() });
const getOk = (from: string, reqId: string): NodeEvent => ({ type: 'replica.get.ok', from, reqId, body: { state: null } });

describe('InspectTap: a reused coordinator', () => {
  it('follows the request an idle coordinator takes, from its start to idle, and nothing of the others', () => {
    const { node, tap, sent } = start();
    const records: InspectRecord[] = [];
    const ends: unknown[] = [];
    const serve = (reqId: string) => {
      sent.length = 0;
      node.send(get(reqId));
      const id = sent[0]!.reqId;
      for (const from of ['n1', 'n2', 'n3']) node.send(getOk(from, id));
      return id;
    };
    serve('a'); // spawns coordinator-0
    tap.follow({ session: 's', request: 'b', durationMs: 10_000, sampleEvery: 1 }, { records: (m) => records.push(...m.records), end: (m) => ends.push(m) });
    const b = serve('b'); // the idle coordinator-0 takes it
    serve('c'); // and then this one
    tap.stop('s');

    const mine = records.filter((r) => r.actor === 'coordinator-0');
    expect(mine[0]).toMatchObject({ kind: 'start', machine: 'coordinator', input: { id: b, client: { reqId: 'b' } } });
    expect(mine.at(-1)).toMatchObject({ kind: 'done', state: 'idle' });
    // Nothing of request c: no event or action carries its id.
    expect(JSON.stringify(records)).not.toContain('coordinator-0.2');
    const s = summarizeTrace(records, 'b');
    expect(s.coordinator).toMatchObject({ node: 'n1', actor: 'coordinator-0', op: 'get' });
    expect(s.states).toEqual(['checking', 'collecting', 'repairing', 'idle']);
    expect(s.asked.sort()).toEqual(['n1', 'n2', 'n3']);
    expect(s.answered.map((a) => a.node)).toEqual(['n1', 'n2', 'n3']);
    expect(s.clientAnswer).toMatchObject({ kind: 'api.get.ok' });
    node.stop();
  });
});
