/**
 * Finds the machines to draw: every `actors/*.machine.(ts|js)` file, whatever machines it exports.
 * A new actor therefore gets its diagram (and the staleness test covers it) without anyone adding
 * it to a list. Works from the TypeScript sources (tsx, vitest) and from the compiled dist/ alike,
 * since it looks beside this module.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { type DiagramSource, diagramMarkdown } from './statechart.js';

const here = dirname(fileURLToPath(import.meta.url));
/** actors/ beside src/: repo/actors from repo/src/diagram, dist/actors from dist/src/diagram. */
export const actorsDir = resolve(here, '..', '..', 'actors');
const machineFilePattern = /^[a-z0-9-]+\.machine\.(ts|js)$/;

function isMachine(value: unknown): value is AnyStateMachine {
  return typeof value === 'object' && value !== null && (value as { __xstatenode?: unknown }).__xstatenode === true && 'root' in value;
}

export async function loadMachines(dir: string = actorsDir): Promise<DiagramSource[]> {
  if (!existsSync(dir)) throw new Error(`no actors directory at ${dir}`);
  const files = readdirSync(dir)
    .filter((f) => machineFilePattern.test(f))
    .sort();
  const found = new Map<string, DiagramSource>();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
    // A module whose actor only holds state machines run as data (the coordinator holds each
    // request's core) exports `diagramMachine`, the chart built from that data, to be drawn instead.
    const machines = isMachine(mod.diagramMachine) ? [mod.diagramMachine] : [...new Set(Object.values(mod).filter(isMachine))];
    // A file with one machine names its diagram (anti-entropy.machine.ts: anti-entropy); a file
    // with several names each by its machine id.
    const stem = file.replace(/\.machine\.(ts|js)$/, '');
    for (const machine of machines) {
      const name = machines.length === 1 ? stem : machine.id;
      const existing = found.get(name);
      if (existing && existing.machine !== machine) throw new Error(`two machines are named "${name}" (${existing.file} and actors/${file})`);
      found.set(name, { name, file: `actors/${file.replace(/\.js$/, '.ts')}`, machine });
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export interface GeneratedDiagram {
  name: string;
  fileName: string;
  markdown: string;
}

export async function generateDiagrams(names: string[] | 'all', dir?: string): Promise<GeneratedDiagram[]> {
  const machines = await loadMachines(dir);
  const known = machines.map((m) => m.name);
  const chosen =
    names === 'all'
      ? machines
      : names.map((n) => {
          const m = machines.find((x) => x.name === n) ?? machines.find((x) => x.machine.id === n);
          if (!m) throw new UnknownMachineError(`no machine named "${n}"; the machines are: ${known.join(', ')}`);
          return m;
        });
  return chosen.map((m) => ({ name: m.name, fileName: `${m.name}.md`, markdown: diagramMarkdown(m) }));
}

export class UnknownMachineError extends Error {}
