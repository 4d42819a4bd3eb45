/**
 * `ringkv sim-scale`: the membership machinery at size in the simulator (src/sim/scale.ts): N nodes
 * on a ring of Q partitions under a steady load, a join of J nodes, then a leave of L, with gossip
 * volume, rounds until every node routes by each new ring, partitions moved against the least a
 * balanced claim must move, the spread of partitions per node, and the simulator's own time.
 *
 *   ringkv sim-scale                      100 nodes, Q = 1024, join 10, leave 10
 *   ringkv sim-scale --nodes 20 --partitions 256 --joins 2 --leaves 2 --json
 */
import { type Command, InvalidArgumentError } from 'commander';
import { isValidPartitionCount } from '../core/ring.js';

interface ScaleCommandOptions {
  seed: number;
  nodes: number;
  partitions: number;
  joins: number;
  leaves: number;
  load: number;
}

function wholeNumber(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || value < min || value > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return value;
  };
}

function partitionCount(text: string): number {
  const q = wholeNumber('partitions', 1, 1 << 16)(text);
  if (!isValidPartitionCount(q)) throw new InvalidArgumentError('partitions must be a power of two.');
  return q;
}

export function registerSimScaleCommand(program: Command): Command {
  return program
    .command('sim-scale')
    .description('the simulator at size: N nodes, Q partitions, a join and a leave under load; gossip, convergence, partitions moved, spread')
    .option('--seed <seed>', 'the seed (32-bit)', wholeNumber('seed', 0, 0xffff_ffff), 1)
    .option('--nodes <count>', 'nodes of the first ring', wholeNumber('nodes', 3, 1000), 100)
    .option('--partitions <q>', 'partitions of the ring (a power of two)', partitionCount, 1024)
    .option('--joins <count>', 'nodes that join (one commit)', wholeNumber('joins', 0, 1000), 10)
    .option('--leaves <count>', 'members that leave after the join (one commit)', wholeNumber('leaves', 0, 1000), 10)
    .option('--load <count>', 'put/get requests in flight all the time', wholeNumber('load', 0, 1000), 2)
    .action(async (o: ScaleCommandOptions, cmd: Command) => {
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      if (o.leaves >= o.nodes) throw new InvalidArgumentError('--leaves must leave at least one node of the first ring.');
      // Loaded on demand: it pulls in the actors and the simulated adapters.
      const { runScale } = await import('../sim/scale.js');
      const started = Date.now();
      const report = await runScale({
        seed: o.seed,
        nodes: o.nodes,
        partitions: o.partitions,
        joins: o.joins,
        leaves: o.leaves,
        load: o.load,
        ...(json ? {} : { progress: (line: string) => process.stderr.write(`${Math.round((Date.now() - started) / 1000)} s  ${line}\n`) }),
      });
      if (json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const spread = (s: { nodes: number; min: number; max: number; mean: number }) => `${s.nodes} owners, ${s.min}-${s.max} partitions each (mean ${s.mean})`;
      const lines = [
        `${o.nodes} nodes, Q = ${o.partitions}: ${spread(report.initialSpread)}`,
        `gossip: ${report.gossipBytesPerRoundPerNode} bytes per round per node`,
        ...report.steps.map(
          (s) =>
            `${s.step} of ${s.nodes.length}: ring version ${s.ringVersion}, every node routes by it ${s.convergedAfterMs === null ? 'not within the limit' : `${s.convergedAfterMs} ms (${s.roundsToConverge} gossip rounds) after the commit`}; ` +
            `${s.partitionsMoved} partitions moved (least possible ${s.partitionsMovedMin}); ${spread(s.spread)}` +
            (s.step === 'leave' ? `; the leavers exited ${s.exitedAfterMs === null || s.exitedAfterMs === undefined ? 'not within the limit' : `${(s.exitedAfterMs / 1000).toFixed(1)} s`} after the commit` : ''),
        ),
        ...report.steps.flatMap((s) => (s.stuck ?? []).map((line) => `  not exited: ${line}`)),
        `requests: ${report.requests.ok} ok, ${report.requests.failed} failed`,
        `simulated ${(report.simulatedMs / 1000).toFixed(1)} s in ${(report.wallMs / 1000).toFixed(1)} s`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
