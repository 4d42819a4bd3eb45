/**
 * The node machine's input for tests that run it alone (its children stubbed or provided): node n1,
 * N=3 R=2 W=2, default limits, and deadlines long enough that no test meets one by accident.
 */
import type { NodeInput } from '../../actors/node.machine.js';
import type { Ring } from '../../src/core/ring.js';
import { defaultLimits } from '../../src/protocol/limits.js';

export function nodeTestInput(ring: Ring): NodeInput {
  return {
    nodeId: 'n1',
    cluster: 'test',
    ring,
    quorumDefault: { n: 3, r: 2, w: 2 },
    limits: defaultLimits,
    requestTimeoutMs: 60_000,
    readRepairWaitMs: 60_000,
    fallbackWaitMs: 60_000,
    coordinatorsMax: 16,
    writesInFlightMax: 16,
    // The children's inputs are left out: these tests stub or provide the children.
  } as unknown as NodeInput;
}
