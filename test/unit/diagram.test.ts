/**
 * Diagrams: the committed docs/diagrams/*.md must be exactly what the machines generate today (a
 * machine that changed without its diagram fails here, with the command that fixes it), and the
 * renderer draws nested, parallel, delayed, guarded and final states from any machine.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, assign, not, raise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { generateDiagrams, loadMachines } from '../../src/diagram/machines.js';
import { fillMarkedRegions, machineToMermaid, regenerateCommand, transitionRows } from '../../src/diagram/statechart.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const diagramsDir = path.join(repoRoot, 'docs', 'diagrams');

describe('committed diagrams', () => {
  it('match the machines in actors/ (none stale, none missing, none left over)', async () => {
    const generated = await generateDiagrams('all');
    expect(generated.map((d) => d.name)).toEqual(expect.arrayContaining(['coordinator', 'node', 'replica']));
    const problems: string[] = [];
    for (const d of generated) {
      const file = path.join(diagramsDir, d.fileName);
      if (!existsSync(file)) problems.push(`docs/diagrams/${d.fileName} is missing`);
      else if (readFileSync(file, 'utf8') !== d.markdown) problems.push(`docs/diagrams/${d.fileName} is stale`);
    }
    const expected = new Set(generated.map((d) => d.fileName));
    for (const f of existsSync(diagramsDir) ? readdirSync(diagramsDir) : []) {
      if (f.endsWith('.md') && !expected.has(f)) problems.push(`docs/diagrams/${f} has no machine (delete it)`);
    }
    expect(problems, `${problems.join('; ')}: run \`${regenerateCommand}\` and commit docs/diagrams`).toEqual([]);
  });

  it('match the README regions marked for them, if it has any', async () => {
    const readme = path.join(repoRoot, 'README.md');
    if (!existsSync(readme)) return;
    const text = readFileSync(readme, 'utf8');
    const mermaid = new Map((await loadMachines()).map((m) => [m.name, machineToMermaid(m.machine)]));
    const filled = fillMarkedRegions(text, mermaid);
    expect(filled.unknown, 'README.md marks diagrams of machines that do not exist').toEqual([]);
    expect(filled.text === text, `README.md has stale diagrams (${filled.filled.join(', ')}): run \`${regenerateCommand} --readme README.md\``).toBe(true);
  });
});

describe('machineToMermaid', () => {
  const machine = setup({
    types: { events: {} as { type: 'go' } | { type: 'stop' } | { type: 'tick' } },
    guards: { isReady: () => true, isLate: () => false },
    actions: { ping: () => {} },
    delays: { patience: 100 },
  }).createMachine({
    id: 'demo',
    initial: 'idle',
    entry: raise({ type: 'tick' }, { id: 'firstTick', delay: 5 }),
    states: {
      idle: {
        on: {
          go: [{ guard: and(['isReady', not('isLate')]), target: 'busy' }, { actions: 'ping' }],
          tick: { actions: assign({}) },
        },
      },
      busy: {
        type: 'parallel',
        states: {
          left: { initial: 'a', states: { a: { after: { patience: 'b' } }, b: {} } },
          right: { initial: 'c', states: { c: { always: { guard: () => true, target: 'd' } }, d: {} } },
        },
        on: { stop: 'end' },
      },
      end: { type: 'final' },
    },
  });

  it('draws states, arrows with guards and actions, parallel regions, delays and final states', () => {
    const text = machineToMermaid(machine);
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    expect(text).toContain('[*] --> idle');
    expect(text).toContain('idle --> busy : go [isReady && !isLate]');
    // A transition without a target is a line in its state, not a self-loop.
    expect(text).toContain('idle : go / ping');
    expect(text).toContain('idle : tick / assign');
    expect(text).toContain('state busy {');
    expect(text).toMatch(/\n\s+--\n/);
    expect(text).toContain('busy__left__a --> busy__left__b : after patience');
    expect(text).toContain('busy__right__c --> busy__right__d : always [inline]');
    // "end" is a Mermaid keyword: it gets an id of its own and keeps its name as the label.
    expect(text).toContain('state "end" as s_end');
    expect(text).toContain('busy --> s_end : stop');
    expect(text).toContain('s_end --> [*]');
    expect(text).toContain('raise tick after 5 ms id firstTick');
  });

  it('lists every transition in the table rows', () => {
    const rows = transitionRows(machine);
    expect(rows.map((r) => `${r.state}|${r.trigger}|${r.target}`)).toEqual([
      'idle|go|busy',
      'idle|go|',
      'idle|tick|',
      'busy|stop|end',
      'busy.left.a|after patience|busy.left.b',
      'busy.right.c|always|busy.right.d',
    ]);
  });

  it('fills marked regions and leaves the rest of the text alone', () => {
    const text = 'intro\n<!-- ringkv-diagram:demo -->\nold\n<!-- /ringkv-diagram:demo -->\n<!-- ringkv-diagram:ghost -->\n<!-- /ringkv-diagram:ghost -->\nend\n';
    const out = fillMarkedRegions(text, new Map([['demo', 'stateDiagram-v2\n  [*] --> a\n']]));
    expect(out.filled).toEqual(['demo']);
    expect(out.unknown).toEqual(['ghost']);
    expect(out.text).toBe(
      'intro\n<!-- ringkv-diagram:demo -->\n```mermaid\nstateDiagram-v2\n  [*] --> a\n```\n<!-- /ringkv-diagram:demo -->\n<!-- ringkv-diagram:ghost -->\n<!-- /ringkv-diagram:ghost -->\nend\n',
    );
  });
});
