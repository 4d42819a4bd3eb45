import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/bench/random.js';
import { OperationChooser, opNames, workloadNames, workloads, type OpName } from '../../src/bench/workload.js';
import { formatLatency, parseConcurrencyList, parseDuration } from '../../src/cli/bench-command.js';

function mix(name: (typeof workloadNames)[number], draws: number): Record<OpName, number> {
  const chooser = new OperationChooser(workloads[name], createRandom(1));
  const counts: Record<OpName, number> = { read: 0, update: 0, cart: 0 };
  for (let i = 0; i < draws; i++) counts[chooser.next()]++;
  return counts;
}

describe('workload mixes', () => {
  it('have shares that add up to 1', () => {
    for (const name of workloadNames) {
      expect(opNames.reduce((sum, op) => sum + workloads[name].proportions[op], 0)).toBeCloseTo(1, 12);
    }
  });

  it('draw each operation in its share (within 1%)', () => {
    const draws = 100_000;
    for (const name of workloadNames) {
      const counts = mix(name, draws);
      for (const op of opNames) {
        expect(Math.abs(counts[op] / draws - workloads[name].proportions[op]), `${name} ${op}`).toBeLessThan(0.01);
      }
    }
    expect(mix('a', draws).read / draws).toBeCloseTo(0.5, 1);
    expect(mix('b', draws).update / draws).toBeCloseTo(0.05, 2);
    expect(mix('c', draws)).toEqual({ read: draws, update: 0, cart: 0 });
    expect(mix('cart', draws)).toEqual({ read: 0, update: 0, cart: draws });
    expect(mix('update', draws)).toEqual({ read: 0, update: draws, cart: 0 });
  });

  it('are deterministic for a seed', () => {
    const a = new OperationChooser(workloads.a, createRandom(5));
    const b = new OperationChooser(workloads.a, createRandom(5));
    const seqA = Array.from({ length: 200 }, () => a.next());
    expect(Array.from({ length: 200 }, () => b.next())).toEqual(seqA);
  });
});

describe('bench command parsing', () => {
  it('reads durations with units, and bare seconds', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1.5')).toBe(1500);
    expect(() => parseDuration('ten')).toThrow();
    expect(() => parseDuration('2h')).toThrow();
  });

  it('reads concurrency lists', () => {
    expect(parseConcurrencyList('1,16,128')).toEqual([1, 16, 128]);
    expect(parseConcurrencyList('4')).toEqual([4]);
    expect(() => parseConcurrencyList('1,,2')).toThrow();
    expect(() => parseConcurrencyList('0')).toThrow();
    expect(() => parseConcurrencyList('1,x')).toThrow();
  });

  it('prints latencies in µs or ms', () => {
    expect(formatLatency(412.4)).toBe('412 µs');
    expect(formatLatency(1250)).toBe('1.25 ms');
    expect(formatLatency(38_200)).toBe('38.2 ms');
    expect(formatLatency(1_204_000)).toBe('1,204 ms');
  });
});
