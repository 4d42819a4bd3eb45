/**
 * One `--fault` run put together: the target wrapped so that every write is tagged and logged
 * (src/bench/write-log.ts), the fault that watches the runner's operations (src/bench/fault.ts) and,
 * once the run is over, the wait for the store to settle and the read-back of every key that had an
 * acknowledged write.
 */
import { FaultRun, formatFaultSpec, type FaultReport, type FaultSpec } from './fault.js';
import { PhaseRecorder } from './phases.js';
import type { OperationObserver } from './runner.js';
import type { BenchTarget } from './target.js';
import { opNames, workloads, type WorkloadName } from './workload.js';
import { WriteLog, withWriteLog, type DurabilityCheck } from './write-log.js';

/** How long the store may take after the run to repair what the fault left (hints, lagging replicas). */
export const settleTimeoutMs = 120_000;

export interface PreparedFault {
  /** The target to run the workload against: the same one, with its writes logged. */
  target: BenchTarget;
  observer: OperationObserver;
  /** For people: "kill-node@10s+20s: SIGKILL ...". */
  description: string;
  /** After the run: lift the fault if still in force, settle, read back, and report. */
  finish(opts: { checkDurability: boolean }): Promise<FaultReport>;
  /** Undo a fault still in force; never throws. */
  heal(): Promise<void>;
}

export function prepareFault(
  target: BenchTarget,
  spec: FaultSpec,
  opts: { workload: WorkloadName; node?: string; say?: (text: string) => void },
): PreparedFault {
  const control = target.faults;
  if (!control) throw new Error(`the ${target.name} target can fault only a cluster the bench started`);
  const say = opts.say ?? (() => undefined);
  const log = new WriteLog();
  const ops = opNames.filter((op) => workloads[opts.workload].proportions[op] > 0);
  const node = opts.node;
  if (node !== undefined && !control.nodes.includes(node)) {
    throw new Error(`--fault-node ${node}: this cluster's nodes are ${control.nodes.join(', ')}`);
  }
  const choose = node !== undefined ? async () => ({ node, why: 'named with --fault-node' }) : () => control.defaultNode();
  const run = new FaultRun(spec, control, choose, new PhaseRecorder(ops), say);
  const verb = spec.kind === 'kill-node' ? 'SIGKILL, then a restart on its data' : 'SIGSTOP, then SIGCONT';
  const description =
    `${formatFaultSpec(spec)}: ${verb}, of ${node ?? 'the default node'}, ${spec.atMs / 1000} s into the measured window, ` +
    `lifted ${spec.forMs / 1000} s later; every write is tagged and read back at the end`;
  return {
    target: withWriteLog(target, log),
    observer: run,
    description,
    async finish({ checkDurability }) {
      await run.finish();
      let settle = null;
      let durability: DurabilityCheck | null = null;
      if (checkDurability) {
        say('fault: waiting for the store to settle (every node back, nothing left to hand off)\n');
        settle = await control.settle(settleTimeoutMs);
        say(`fault: reading back ${log.keysWithAcks().length} keys\n`);
        durability = await log.check((key) => control.readBack(key));
      }
      return run.report({ settle, durability });
    },
    heal: () => control.heal().catch(() => undefined),
  };
}
