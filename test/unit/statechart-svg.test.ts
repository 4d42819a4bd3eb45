/**
 * The statecharts the dashboard draws: every state of every machine is a box with its path in
 * data-state, inside its parent's box; every transition with a target becomes an arrow; the SVG is
 * well formed enough for a browser to parse (balanced groups, escaped text).
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { loadMachines } from '../../src/diagram/machines.js';
import { statechartSvg } from '../../src/diagram/statechart-svg.js';
import { transitionRows } from '../../src/diagram/statechart.js';

function boxes(svg: string): Map<string, { x: number; y: number; w: number; h: number }> {
  const out = new Map<string, { x: number; y: number; w: number; h: number }>();
  for (const m of svg.matchAll(/<g class="state[^"]*" data-state="([^"]*)"><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)) {
    out.set(m[1]!, { x: Number(m[2]), y: Number(m[3]), w: Number(m[4]), h: Number(m[5]) });
  }
  return out;
}

describe('statechartSvg', () => {
  it("draws every state of ringkv's machines, each inside its parent, and an arrow per targeted pair", async () => {
    for (const { name, machine } of await loadMachines()) {
      const chart = statechartSvg(machine);
      const drawn = boxes(chart.svg);
      expect(chart.svg.match(/<g/g)!.length, name).toBe(chart.svg.match(/<\/g>/g)!.length);
      for (const path of chart.states) {
        const b = drawn.get(path)!;
        expect(b, `${name}: ${path}`).toBeDefined();
        const parent = drawn.get(path.split('.').slice(0, -1).join('.'))!;
        expect(b.x).toBeGreaterThanOrEqual(parent.x);
        expect(b.y).toBeGreaterThanOrEqual(parent.y);
        expect(b.x + b.w).toBeLessThanOrEqual(parent.x + parent.w);
        expect(b.y + b.h).toBeLessThanOrEqual(parent.y + parent.h);
      }
      const pairs = new Set<string>();
      for (const r of transitionRows(machine)) for (const t of r.target.split(', ').filter(Boolean)) if (t !== r.state) pairs.add(`${r.state}->${t}`);
      expect(chart.svg.match(/<g class="transition">/g)?.length ?? 0, name).toBe(pairs.size);
    }
  });

  it('lays out a small machine left to right from its initial state, nested states inside, text escaped', () => {
    const machine = createMachine({
      id: 'toy',
      initial: 'idle',
      states: {
        idle: { on: { go: 'busy' } },
        busy: { initial: 'a', states: { a: { on: { next: 'b' } }, b: {} }, on: { 'stop<now>': 'idle' } },
      },
    });
    const chart = statechartSvg(machine);
    const drawn = boxes(chart.svg);
    expect(chart.states.sort()).toEqual(['busy', 'busy.a', 'busy.b', 'idle']);
    expect(drawn.get('idle')!.x).toBeLessThan(drawn.get('busy')!.x);
    expect(drawn.get('busy.a')!.x).toBeLessThan(drawn.get('busy.b')!.x);
    expect(chart.svg).toContain('stop&lt;now&gt;');
    expect(chart.svg).not.toContain('stop<now>');
  });
});
