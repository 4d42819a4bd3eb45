/**
 * Fault injection for `ringkv bench --fault`: during the measured window of a run, one node of the
 * cluster the bench started is killed (SIGKILL) or paused (SIGSTOP) at a given time, and restarted
 * or resumed (SIGCONT) a given time later, while the workers keep going. The run's operations are
 * counted per phase (src/bench/phases.ts), and the report says how long the store went without a
 * successful put or get.
 *
 *   kill-node@10s          kill at 10 s into the measured window, restart 20 s later
 *   pause-node@10s+5s      pause at 10 s, resume 5 s later
 *
 * The target supplies the means (FaultControl): for ringkv the local cluster's node processes, for
 * nats-kv the bench's three nats-servers, where the default victim is the bucket stream's leader.
 */
import type { PhaseRecorder, PhaseReport } from './phases.js';
import type { BenchReport, OperationObserver } from './runner.js';
import type { DurabilityCheck } from './write-log.js';
import type { OpName } from './workload.js';
import type { FaultControl, SettleResult } from './fault-control.js';

export type { FaultControl, SettleResult } from './fault-control.js';

export type FaultKind = 'kill-node' | 'pause-node';
export const faultKinds: readonly FaultKind[] = ['kill-node', 'pause-node'];

export interface FaultSpec {
  kind: FaultKind;
  /** When the fault is applied, in ms from the start of the measured window. */
  atMs: number;
  /** How long the node stays dead or paused before it is restarted or resumed. */
  forMs: number;
}

export const faultForMsDefault = 20_000;
/** The longest a fault may last or start after the window opens (the bench's longest duration). */
export const faultMsMax = 3_600_000;

/** A --fault the bench cannot run; `code` is BAD_REQUEST, as for any bad input. */
export class FaultSpecError extends Error {
  override readonly name = 'FaultSpecError';
  readonly code = 'BAD_REQUEST';
}

function parseMs(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) throw new FaultSpecError(`${what} "${text}" is not a duration (such as 10s, 500ms or 1m)`);
  const ms = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
  if (ms > faultMsMax) throw new FaultSpecError(`${what} may be at most ${faultMsMax / 60_000} minutes`);
  return ms;
}

/** "kill-node@10s", "pause-node@10s+20s": what, when, and (default 20 s) for how long. */
export function parseFaultSpec(text: string): FaultSpec {
  const m = /^\s*([a-z-]+)@([^+\s]+)(?:\+([^\s]+))?\s*$/.exec(text);
  if (!m) throw new FaultSpecError(`a fault is KIND@TIME[+DURATION], such as kill-node@10s or pause-node@10s+20s, not "${text}"`);
  const kind = m[1] as FaultKind;
  if (!faultKinds.includes(kind)) throw new FaultSpecError(`unknown fault "${m[1]}": use ${faultKinds.join(' or ')}`);
  const atMs = parseMs(m[2]!, 'the fault time');
  const forMs = m[3] === undefined ? faultForMsDefault : parseMs(m[3], 'the fault duration');
  if (forMs <= 0) throw new FaultSpecError('the fault duration must be more than 0');
  return { kind, atMs, forMs };
}

export function formatFaultSpec(spec: FaultSpec): string {
  const t = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return `${spec.kind}@${t(spec.atMs)}+${t(spec.forMs)}`;
}

/** What a target offers so that the bench can fault one of its nodes. */
export interface FaultReport {
  spec: string;
  kind: FaultKind;
  /** The node faulted (null when the run ended before the fault was due). */
  node: string | null;
  /** Why this node: named with --fault-node, or the target's default choice. */
  why: string;
  /** When the fault was applied and lifted, in ms from the start of the measured window. */
  appliedAtMs: number | null;
  recoveredAtMs: number | null;
  phases: PhaseReport['phases'];
  gaps: PhaseReport['gaps'];
  successesPerSecond: PhaseReport['successesPerSecond'];
  settle: SettleResult | null;
  durability: DurabilityCheck | null;
  /** Anything that went wrong with the fault itself (a restart that failed). */
  problems: string[];
}

export type FaultBenchReport = BenchReport & { fault?: FaultReport };

/**
 * One fault in one run: it watches the runner's measured operations (as its observer), applies the
 * fault at spec.atMs into the measured window and lifts it spec.forMs later.
 */
export class FaultRun implements OperationObserver {
  private startAt: number | undefined;
  private appliedAt: number | undefined;
  private recoveredAt: number | undefined;
  private endAt: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly actions: Promise<void>[] = [];
  private readonly problems: string[] = [];

  private node: string | undefined;
  private why = '';

  /**
   * `choose` names the victim when the fault is due (not before the run: a JetStream stream's
   * leader may have moved by then).
   */
  constructor(
    readonly spec: FaultSpec,
    private readonly control: FaultControl,
    private readonly choose: () => Promise<{ node: string; why: string }>,
    private readonly recorder: PhaseRecorder,
    private readonly say: (text: string) => void = () => undefined,
  ) {}

  measureStarted(at: number, durationMs: number): void {
    // A second level would fault the store again: only the first measured window gets the fault.
    if (this.startAt !== undefined) return;
    this.startAt = at;
    this.endAt = at + durationMs;
    this.recorder.start(at);
    this.timers.push(setTimeout(() => this.apply(), this.spec.atMs));
    this.timers.push(setTimeout(() => this.lift(), this.spec.atMs + this.spec.forMs));
  }

  operationEnded(op: OpName, t0: number, t1: number, err?: unknown): void {
    if (this.endAt !== undefined && t0 >= this.endAt) return;
    this.recorder.record(op, t0, t1, err);
  }

  private track(what: string, action: () => Promise<void> | void): void {
    this.actions.push(
      (async () => {
        try {
          await action();
        } catch (err) {
          this.problems.push(`${what} ${this.node}: ${(err as Error).message}`);
        }
      })(),
    );
  }

  private apply(): void {
    if (this.actions.length > 0) return;
    const kill = this.spec.kind === 'kill-node';
    this.track(kill ? 'kill' : 'pause', async () => {
      const { node, why } = await this.choose();
      if (!this.control.nodes.includes(node)) throw new FaultSpecError(`no node ${node} to fault: choose one of ${this.control.nodes.join(', ')}`);
      this.node = node;
      this.why = why;
      // The phases turn when the signal goes out: that is when the node stops answering.
      this.appliedAt = performance.now();
      this.recorder.faultApplied(this.appliedAt);
      this.say(`fault: ${kill ? 'killing' : 'pausing'} ${node} (${why})\n`);
      if (kill) await this.control.kill(node);
      else this.control.pause(node);
    });
  }

  private lift(): void {
    if (this.actions.length !== 1 || this.recoveredAt !== undefined) return;
    const kill = this.spec.kind === 'kill-node';
    this.track(kill ? 'restart' : 'resume', async () => {
      // A restart must follow the kill's exit, not race it.
      await this.actions[0];
      const node = this.node;
      if (node === undefined) return;
      this.recoveredAt = performance.now();
      this.recorder.recovered(this.recoveredAt);
      this.say(`fault: ${kill ? 'restarting' : 'resuming'} ${node}\n`);
      if (kill) await this.control.restart(node);
      else this.control.resume(node);
    });
  }

  /** The run is over: lift a fault still in force, and wait for the kill and restart to finish. */
  async finish(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.lift();
    for (let i = 0; i < this.actions.length; i++) await this.actions[i];
  }

  report(extra: { settle: SettleResult | null; durability: DurabilityCheck | null }): FaultReport {
    const endAt = this.endAt ?? performance.now();
    const phases = this.recorder.report(endAt);
    const rel = (t: number | undefined) => (t === undefined || this.startAt === undefined ? null : Math.round(t - this.startAt));
    return {
      spec: formatFaultSpec(this.spec),
      kind: this.spec.kind,
      node: this.node ?? null,
      why: this.why,
      appliedAtMs: rel(this.appliedAt),
      recoveredAtMs: rel(this.recoveredAt),
      ...phases,
      settle: extra.settle,
      durability: extra.durability,
      problems: [...this.problems],
    };
  }
}
