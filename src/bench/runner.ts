/**
 * The bench loop. It loads the records, then for each concurrency level starts that many async
 * workers, each with one request in flight: pick an operation (by the workload's mix) and a key (by
 * the distribution), send it, wait for the answer, repeat. The first `warmupMs` of a level are not
 * measured. Then every operation that starts within the next `durationMs` is measured, whenever it
 * ends; at the end of the window the workers stop starting new ones, and the level's ops/s is the
 * measured operations over the time from the window's start to the last of them ending.
 *
 * Each worker draws keys, operations and values from its own PRNG, seeded by the seed, the level
 * and the worker's index: a seed fixes what every worker asks, whatever the target.
 */
import { type CpuShare, CpuMeter } from './cpu-split.js';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Histogram, type HistogramSummary } from './histogram.js';
import { createRandom } from './random.js';
import { errorCode, type BenchTarget, type Durability, type TargetName } from './target.js';
import type { MemoryReport, NodeMemoryReading } from './memory.js';
import { type Anatomy, anatomyOf, type NodeCostReading } from './anatomy.js';
import { OperationChooser, opNames, recordKey, workloads, type OpName, type WorkloadName } from './workload.js';
import { createKeyChooser, type Distribution } from './zipfian.js';

export interface BenchOptions {
  workload: WorkloadName;
  records: number;
  valueBytes: number;
  distribution: Distribution;
  /** One run per level, in order. */
  concurrency: number[];
  durationMs: number;
  warmupMs: number;
  seed: number;
  /** Workers of the load phase (default: loadConcurrencyDefault). */
  loadConcurrency?: number;
  /** Stops the run early (Ctrl-C): the levels done so far are reported. */
  signal?: AbortSignal;
  /** Called about every progressIntervalMs with where the run is. */
  onProgress?: (progress: BenchProgress) => void;
  /** Called when the load phase ends. */
  onLoad?: (load: LoadResult) => void;
  /** Read each node's memory after the load and at the end (targets that can: src/bench/memory.ts). */
  memory?: boolean;
  /** Called with each memory reading: 'after load' or 'at end'. */
  onMemory?: (when: 'after load' | 'at end', readings: NodeMemoryReading[]) => void;
  /** A node that did not answer for its memory (left out of that reading). */
  onMemoryMissing?: (when: 'after load' | 'at end', node: string, why: string) => void;
  /** Called when a level ends, with its result (the CLI prints it at once). */
  onLevel?: (level: LevelResult) => void;
  /** Sees each measured window start and every measured operation end (a fault run's phases). */
  observer?: OperationObserver;
}

/** Told of the measured operations as they end; performance.now() milliseconds. */
export interface OperationObserver {
  measureStarted(at: number, durationMs: number): void;
  /** `err` is set when the operation failed. */
  operationEnded(op: OpName, t0: number, t1: number, err?: unknown): void;
}

export interface BenchProgress {
  phase: 'load' | 'warmup' | 'measure' | 'drain';
  /** The concurrency level running (the load workers' count during the load). */
  concurrency: number;
  /** Which level this is, from 1, and of how many (0 during the load). */
  level: number;
  levels: number;
  /** 0..1 of the current phase. */
  fraction: number;
  /** Operations completed in this phase so far. */
  ops: number;
  errors: number;
  /** Recent throughput. */
  opsPerSec: number;
}

/** Latencies in microseconds. */
export interface LatencySummary {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface OpResult {
  ops: number;
  opsPerSec: number;
  errors: number;
  errorsByCode: Record<string, number>;
  latencyUs: LatencySummary;
}

export interface LevelResult {
  concurrency: number;
  /** From the window's start to the last measured operation's end. */
  elapsedMs: number;
  ops: number;
  opsPerSec: number;
  errors: number;
  latencyUs: LatencySummary;
  /** Only the operations this workload runs. */
  perOp: Partial<Record<OpName, OpResult>>;
  /** Reads (and cart reads) of a key that was not there. */
  notFound: number;
  /** Reads (and cart reads) that returned more than one sibling, and the most seen at once. */
  readsWithSiblings: number;
  siblingsMax: number;
  /** nats-kv cart: updates refused for a wrong revision and tried again. */
  cartRetries: number;
  /** CPU seconds each process used during the measured window (src/bench/cpu-split.ts). */
  cpu: CpuShare[];
  /** What one operation of the window cost each node, in counts (targets that report them: src/bench/anatomy.ts). */
  anatomy?: Anatomy;
}

export interface LoadResult {
  records: number;
  elapsedMs: number;
  opsPerSec: number;
  errors: number;
  errorsByCode: Record<string, number>;
}

export interface BenchReport {
  target: TargetName;
  endpoint: string;
  durability: Durability;
  settings: Record<string, number | string>;
  workload: { name: WorkloadName; description: string; proportions: Record<OpName, number> };
  records: number;
  valueBytes: number;
  distribution: Distribution;
  seed: number;
  durationMs: number;
  warmupMs: number;
  load: LoadResult;
  /** With the memory option, on a target that reports memory. */
  memory?: MemoryReport;
  levels: LevelResult[];
  /** True when the run was stopped before every level ran. */
  aborted: boolean;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; platform: string; node: string };
  startedAt: string;
}

export const loadConcurrencyDefault = 32;
export const progressIntervalMs = 200;
/** Distinct values the workers pick from, so that no value is made on the request path. */
export const valuePoolSize = 64;
/** Error codes counted per operation; the rest are counted under OTHER. */
export const errorCodesMax = 32;

interface Counters {
  histograms: Record<OpName, Histogram>;
  errors: Record<OpName, Map<string, number>>;
  notFound: number;
  readsWithSiblings: number;
  siblingsMax: number;
  cartRetries: number;
}

function newCounters(): Counters {
  return {
    histograms: { read: new Histogram(), update: new Histogram(), cart: new Histogram() },
    errors: { read: new Map(), update: new Map(), cart: new Map() },
    notFound: 0,
    readsWithSiblings: 0,
    siblingsMax: 0,
    cartRetries: 0,
  };
}

function countError(map: Map<string, number>, err: unknown): void {
  let code = errorCode(err);
  if (!map.has(code) && map.size >= errorCodesMax) code = 'OTHER';
  map.set(code, (map.get(code) ?? 0) + 1);
}

function latencyOf(h: Histogram): LatencySummary {
  const s: HistogramSummary = h.summary();
  const us = (ns: number) => Math.round(ns / 100) / 10;
  return { min: us(s.min), mean: us(s.mean), p50: us(s.p50), p90: us(s.p90), p99: us(s.p99), p999: us(s.p999), max: us(s.max) };
}

function makeValues(seed: number, valueBytes: number): Uint8Array[] {
  const random = createRandom(seed, 0x7fff_0000);
  return Array.from({ length: valuePoolSize }, () => {
    const v = new Uint8Array(valueBytes);
    for (let i = 0; i < valueBytes; i++) v[i] = random.nextUint32() & 0xff;
    return v;
  });
}

export async function runBench(target: BenchTarget, opts: BenchOptions): Promise<BenchReport> {
  const workload = workloads[opts.workload];
  const values = makeValues(opts.seed, opts.valueBytes);
  const startedAt = new Date().toISOString();
  const aborted = () => opts.signal?.aborted === true;

  const load = await loadRecords(target, opts, values);
  opts.onLoad?.(load);
  const readMemory = async (when: 'after load' | 'at end') => {
    if (!opts.memory || !target.memory) return undefined;
    const readings = await target.memory((node, why) => opts.onMemoryMissing?.(when, node, why));
    opts.onMemory?.(when, readings);
    return readings;
  };
  const afterLoad = await readMemory('after load');
  const levels: LevelResult[] = [];
  for (const [index, concurrency] of opts.concurrency.entries()) {
    if (aborted()) break;
    const level = await runLevel(target, opts, values, concurrency, index);
    // A level stopped during its warm-up measured nothing: leave it out.
    if (aborted() && level.elapsedMs === 0) break;
    levels.push(level);
    opts.onLevel?.(level);
  }
  const atEnd = afterLoad ? await readMemory('at end') : undefined;

  return {
    target: target.name,
    endpoint: target.endpoint,
    durability: target.durability,
    settings: { ...target.settings },
    workload: { name: workload.name, description: workload.description, proportions: { ...workload.proportions } },
    records: opts.records,
    valueBytes: opts.valueBytes,
    distribution: opts.distribution,
    seed: opts.seed,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    load,
    ...(afterLoad && atEnd ? { memory: { afterLoad, atEnd } } : {}),
    levels,
    aborted: aborted(),
    machine: describeMachine(),
    startedAt,
  };
}

export function describeMachine(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** A meter of recent throughput for the progress bar. */
function progressTimer(opts: BenchOptions, snapshot: () => Omit<BenchProgress, 'opsPerSec'>): () => void {
  if (!opts.onProgress) return () => undefined;
  let lastOps = 0;
  let lastAt = performance.now();
  let rate = 0;
  const timer = setInterval(() => {
    const s = snapshot();
    const now = performance.now();
    if (s.ops < lastOps) lastOps = 0;
    rate = ((s.ops - lastOps) * 1000) / Math.max(1, now - lastAt);
    lastOps = s.ops;
    lastAt = now;
    opts.onProgress!({ ...s, opsPerSec: rate });
  }, progressIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

async function loadRecords(target: BenchTarget, opts: BenchOptions, values: Uint8Array[]): Promise<LoadResult> {
  const workers = Math.max(1, Math.min(opts.loadConcurrency ?? loadConcurrencyDefault, opts.records));
  const errorsByCode = new Map<string, number>();
  let next = 0;
  let done = 0;
  let errors = 0;
  const stopProgress = progressTimer(opts, () => ({
    phase: 'load',
    concurrency: workers,
    level: 0,
    levels: opts.concurrency.length,
    fraction: done / opts.records,
    ops: done,
    errors,
  }));
  const t0 = performance.now();
  const worker = async () => {
    while (next < opts.records && opts.signal?.aborted !== true) {
      const i = next++;
      try {
        await target.load(recordKey(i), values[i % values.length]!);
      } catch (err) {
        errors++;
        countError(errorsByCode, err);
      }
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    stopProgress();
  }
  const elapsedMs = performance.now() - t0;
  return { records: done, elapsedMs, opsPerSec: (done * 1000) / Math.max(1, elapsedMs), errors, errorsByCode: Object.fromEntries(errorsByCode) };
}

async function runLevel(target: BenchTarget, opts: BenchOptions, values: Uint8Array[], concurrency: number, index: number): Promise<LevelResult> {
  const workload = workloads[opts.workload];
  const counters = newCounters();
  let phase: 'warmup' | 'measure' | 'stop' = opts.warmupMs > 0 ? 'warmup' : 'measure';
  let phaseOps = 0;
  let phaseErrors = 0;
  let measureStart = phase === 'measure' ? performance.now() : 0;
  let lastEnd = 0;
  const levelStart = performance.now();
  const cpu = new CpuMeter(() => target.processes?.() ?? []);
  let cpuShares: CpuShare[] = [];
  // The nodes' counters, read as the window opens and as it closes (the request anatomy).
  let costsBefore: Promise<NodeCostReading[]> | undefined;
  let costsAfter: Promise<NodeCostReading[]> | undefined;
  const readCosts = () => target.costs?.().catch(() => [] as NodeCostReading[]);

  const stopProgress = progressTimer(opts, () => {
    const now = performance.now();
    const fraction =
      phase === 'warmup'
        ? (now - levelStart) / Math.max(1, opts.warmupMs)
        : phase === 'measure'
          ? (now - measureStart) / Math.max(1, opts.durationMs)
          : 1;
    return {
      phase: phase === 'stop' ? 'drain' : phase,
      concurrency,
      level: index + 1,
      levels: opts.concurrency.length,
      fraction: Math.min(1, fraction),
      ops: phaseOps,
      errors: phaseErrors,
    };
  });

  const worker = async (w: number) => {
    const random = createRandom(opts.seed, index * 0x10000 + w);
    const keys = createKeyChooser(opts.distribution, random, opts.records);
    const ops = new OperationChooser(workload, random);
    while (phase !== 'stop') {
      const op = ops.next();
      const key = recordKey(keys.next());
      const value = values[random.nextInt(values.length)]!;
      const measured = phase === 'measure';
      const t0 = performance.now();
      try {
        if (op === 'read') {
          const r = await target.read(key);
          if (measured) noteRead(counters, r.found, r.siblings);
        } else if (op === 'update') {
          await target.update(key, value);
        } else {
          const r = await target.cart(key, value);
          if (measured) {
            noteRead(counters, r.siblings > 0, r.siblings);
            counters.cartRetries += r.retries;
          }
        }
        const t1 = performance.now();
        if (measured) {
          counters.histograms[op].record((t1 - t0) * 1e6);
          if (t1 > lastEnd) lastEnd = t1;
          opts.observer?.operationEnded(op, t0, t1);
        }
      } catch (err) {
        if (measured) {
          countError(counters.errors[op], err);
          const t1 = performance.now();
          if (t1 > lastEnd) lastEnd = t1;
          opts.observer?.operationEnded(op, t0, t1, err);
        }
        phaseErrors++;
      }
      phaseOps++;
    }
  };

  if (phase === 'measure') {
    cpu.start();
    costsBefore = readCosts();
    opts.observer?.measureStarted(measureStart, opts.durationMs);
  }
  const onAbort = () => {
    phase = 'stop';
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const running = Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  try {
    if (phase === 'warmup') {
      await abortableSleep(opts.warmupMs, opts.signal);
      if (phase === 'warmup') {
        phase = 'measure';
        phaseOps = 0;
        phaseErrors = 0;
        measureStart = performance.now();
        cpu.start();
        costsBefore = readCosts();
        opts.observer?.measureStarted(measureStart, opts.durationMs);
      }
    }
    if (phase === 'measure') {
      await abortableSleep(opts.durationMs, opts.signal);
      phase = 'stop';
    }
    // The CPU of the window itself: the operations still ending after it are few and are counted.
    cpuShares = cpu.stop();
    if (costsBefore) costsAfter = readCosts();
    await running;
  } finally {
    stopProgress();
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const anatomy = costsBefore && costsAfter ? anatomyOf(await costsBefore, await costsAfter, windowOps(counters, workload)) : undefined;
  const measureEnd = measureStart + opts.durationMs;
  const elapsedMs = measureStart === 0 ? 0 : Math.max(Math.min(measureEnd, performance.now()), lastEnd) - measureStart;
  const total = new Histogram();
  const perOp: Partial<Record<OpName, OpResult>> = {};
  let errors = 0;
  for (const op of opNames) {
    if (workload.proportions[op] <= 0) continue;
    const h = counters.histograms[op];
    total.merge(h);
    const opErrors = [...counters.errors[op].values()].reduce((a, b) => a + b, 0);
    errors += opErrors;
    perOp[op] = {
      ops: h.count,
      opsPerSec: elapsedMs > 0 ? (h.count * 1000) / elapsedMs : 0,
      errors: opErrors,
      errorsByCode: Object.fromEntries(counters.errors[op]),
      latencyUs: latencyOf(h),
    };
  }
  return {
    concurrency,
    elapsedMs,
    ops: total.count,
    opsPerSec: elapsedMs > 0 ? (total.count * 1000) / elapsedMs : 0,
    errors,
    latencyUs: latencyOf(total),
    perOp,
    notFound: counters.notFound,
    readsWithSiblings: counters.readsWithSiblings,
    siblingsMax: counters.siblingsMax,
    cartRetries: counters.cartRetries,
    cpu: cpuShares,
    ...(anatomy ? { anatomy } : {}),
  };
}

/** The operations the window measured (what the anatomy's counts are divided by). */
function windowOps(counters: Counters, workload: (typeof workloads)[keyof typeof workloads]): number {
  let ops = 0;
  for (const op of opNames) if (workload.proportions[op] > 0) ops += counters.histograms[op].count + [...counters.errors[op].values()].reduce((a, b) => a + b, 0);
  return ops;
}

function noteRead(counters: Counters, found: boolean, siblings: number): void {
  if (!found) counters.notFound++;
  if (siblings > 1) counters.readsWithSiblings++;
  if (siblings > counters.siblingsMax) counters.siblingsMax = siblings;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
