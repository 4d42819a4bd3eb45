/**
 * What a bench target gives the fault runner (src/bench/fault.ts) to fault one of its nodes: kill or
 * pause it, bring it back, wait for the store to repair, read a key back. Its own module so that a
 * target (src/bench/target.ts) names it without importing the fault runner, which imports the bench
 * runner, which imports the target.
 */
export interface FaultControl {
  /** The nodes that may be faulted (ringkv n1..n3, nats-kv js1..js3). */
  readonly nodes: readonly string[];
  /** The node faulted when none is named, and why that one. */
  defaultNode(): Promise<{ node: string; why: string }>;
  /** SIGKILL, and wait until the process has exited. */
  kill(node: string): Promise<void>;
  /** Start a killed node again on its data (resolves once the process runs, not once it serves). */
  restart(node: string): Promise<void>;
  pause(node: string): void;
  resume(node: string): void;
  /**
   * After the fault: wait until the store has repaired what the fault left (ringkv: every node
   * answers and no hint is pending; JetStream: every stream replica is current), at most timeoutMs.
   */
  settle(timeoutMs: number): Promise<SettleResult>;
  /** Every value the key holds now, read at the strongest quorum the run allows. */
  readBack(key: string): Promise<Uint8Array[]>;
  /** Undo a pause or a kill still in force (the run stopped early); never throws. */
  heal(): Promise<void>;
}

export interface SettleResult {
  settled: boolean;
  ms: number;
  /** For people: what was waited for, or what was still missing at the deadline. */
  detail: string;
}

