// The node's settings and the node machine's input (src/runtime/node-input.ts): defaults filled in,
// configuration over them, the anti-entropy tree shape checked, and gossip seeded per node.
import { describe, expect, it } from 'vitest';
import { gossipRoundMsDefault } from '../../actors/gossip.machine.js';
import { initialState, ringOf } from '../../src/core/cluster-state.js';
import { fanoutDefault } from '../../src/core/merkle.js';
import { defaultLimits } from '../../src/protocol/limits.js';
import { coordinatorsMaxDefault, requestTimeoutMsDefault } from '../../src/runtime/node-api.js';
import { hashSeed, nodeInput, nodeSettings, treeShape } from '../../src/runtime/node-input.js';

const base = { nodeId: 'n1', cluster: 'c', members: ['n1', 'n2', 'n3'] };

describe('node-input', () => {
  it('fills the settings from the defaults, with the configuration over them', () => {
    const d = nodeSettings(base);
    expect(d).toMatchObject({ limits: defaultLimits, roundMs: gossipRoundMsDefault, n: 3, aae: { fanout: fanoutDefault, paused: false } });
    const c = nodeSettings({ ...base, gossipRoundMs: 0, quorum: { n: 5 }, limits: { keyBytesMax: 10 }, antiEntropy: { intervalMs: 0, paused: true } });
    expect(c).toMatchObject({ roundMs: 0, n: 5, limits: { ...defaultLimits, keyBytesMax: 10 }, aae: { intervalMs: 0, paused: true } });
  });

  it('refuses a tree shape that does not fit the store, naming anti-entropy', () => {
    expect(treeShape(1024, nodeSettings(base))).toEqual({ segments: 1024, fanout: fanoutDefault });
    expect(() => treeShape(1000, nodeSettings({ ...base, antiEntropy: { fanout: 3 } }))).toThrow(/^anti-entropy trees: /);
  });

  it('builds each machine its input: one ring, one n, the round scaling the failure detector, gossip seeded by the clock id unless given', () => {
    const cluster = initialState(base.members, 8);
    const ring = ringOf(cluster);
    const settings = nodeSettings({ ...base, gossipRoundMs: 400 });
    const facts = { nodeId: 'n1', dotId: 'n1.e1', cluster, ring, shape: { segments: 1024, fanout: fanoutDefault }, incarnation: 99, now: 1234, seed: undefined };
    const input = nodeInput(base, settings, facts);
    expect(input).toMatchObject({ nodeId: 'n1', cluster: 'c', ring, requestTimeoutMs: requestTimeoutMsDefault, coordinatorsMax: coordinatorsMaxDefault });
    expect(input.transfer).toMatchObject({ nodeId: 'n1', ring, n: 3, now: 1234 });
    expect(input.antiEntropy).toMatchObject({ nodeId: 'n1', ring, n: 3, shape: facts.shape });
    expect(input.gossip).toMatchObject({ nodeId: 'n1', cluster, n: 3, incarnation: 99, seed: hashSeed('n1.e1') });
    expect(input.gossip.phi).toMatchObject({ firstIntervalMs: 400, acceptablePauseMs: 400, minStdDeviationMs: 200 });
    expect(nodeInput(base, settings, { ...facts, seed: 5 }).gossip.seed).toBe(5);
    expect(hashSeed('n1.e1')).not.toBe(hashSeed('n2.e1'));
  });
});
