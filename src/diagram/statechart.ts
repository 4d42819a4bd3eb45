/**
 * Statecharts from machine definitions: walks an xstate machine (machine.root, each state node's
 * states, transitions, `always` and `after`, entry and exit actions) and writes it as Mermaid
 * stateDiagram-v2 plus a table of every transition. Nothing here is drawn by hand, so a diagram
 * cannot drift from its machine unnoticed: the committed diagrams are regenerated and compared by
 * a test.
 *
 * Rendering rules, chosen for diagrams people read:
 * - A transition with a target is an arrow labelled `event [guard] / actions`; eventless ones read
 *   `always`, delayed ones `after <delay>`.
 * - A transition without a target (it only runs actions) is a line inside its state's box, so that
 *   a node's many routing rules do not become a tangle of self-loops.
 * - Guards given inline as functions have no name: they show as `[inline]`. Naming them in
 *   `setup({ guards })`, or giving the transition a `description`, puts the name on the diagram.
 * - The output depends only on the machine's structure and names, never on function source text,
 *   so tsc's and esbuild's builds of a machine draw the same diagram.
 */
import type { AnyStateMachine } from 'xstate';

/** The parts of xstate's StateNode and TransitionDefinition that a diagram reads. */
interface StateNodeLike {
  key: string;
  id: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  history?: false | 'shallow' | 'deep';
  path: string[];
  states: Record<string, StateNodeLike>;
  entry: unknown[];
  exit: unknown[];
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
  after: (TransitionLike & { delay: unknown })[];
  invoke: { src: unknown; id?: string }[];
  initial?: { target: StateNodeLike[] };
  description?: string;
}

interface TransitionLike {
  eventType: string;
  target?: readonly StateNodeLike[];
  guard?: unknown;
  actions: readonly unknown[];
  reenter?: boolean;
  description?: string;
}

export interface TransitionRow {
  /** The state the transition leaves, as a dotted path below the machine ("" for the machine itself). */
  state: string;
  trigger: string;
  guard: string;
  /** Target states as dotted paths; "" for a transition that stays (actions only). */
  target: string;
  actions: string;
}

const xstateAfterPrefix = 'xstate.after.';
/** Mermaid words that cannot be state ids. */
const reservedIds = new Set(['state', 'note', 'end', 'direction', 'class', 'classDef', 'click', 'style', 'as', 'left', 'right', 'of']);

/** The label of one action: its name, or what a built-in action does. */
export function actionLabel(action: unknown): string {
  if (typeof action === 'string') return action;
  if (typeof action === 'function' || (typeof action === 'object' && action !== null)) {
    const a = action as { type?: unknown; event?: unknown; id?: unknown; delay?: unknown; name?: string };
    const type = typeof a.type === 'string' ? a.type : typeof action === 'function' ? (a.name ?? '') : '';
    if (type === 'xstate.raise' || type === 'xstate.sendTo') {
      const verb = type === 'xstate.raise' ? 'raise' : 'sendTo';
      const event = typeof a.event === 'object' && a.event !== null ? String((a.event as { type?: unknown }).type ?? 'event') : 'event';
      const delayed = a.delay === undefined ? '' : typeof a.delay === 'number' ? ` after ${a.delay} ms` : typeof a.delay === 'string' ? ` after ${a.delay}` : ' (delayed)';
      const id = typeof a.id === 'string' ? ` id ${a.id}` : '';
      return `${verb} ${event}${delayed}${id}`;
    }
    if (type.startsWith('xstate.')) return type.slice('xstate.'.length);
    if (type !== '') return type;
  }
  return 'inline';
}

/** The label of a guard: its name, `!g`, `a && b`, `a || b`, or `inline` for an unnamed function. */
export function guardLabel(guard: unknown): string {
  if (guard === undefined || guard === null) return '';
  if (typeof guard === 'string') return guard;
  const g = guard as { type?: unknown; guards?: unknown[]; check?: unknown; name?: string };
  // xstate's combinators are functions named after themselves that carry the guards they combine.
  if (typeof guard === 'function' && typeof g.check === 'function') {
    const parts = Array.isArray(g.guards) ? g.guards.map((x) => wrapCombined(guardLabel(x))) : [];
    if (g.name === 'not') return `!${parts[0] ?? 'inline'}`;
    if (g.name === 'and') return parts.join(' && ');
    if (g.name === 'or') return parts.join(' || ');
    if (g.name === 'stateIn') return 'stateIn';
  }
  if (typeof g.type === 'string') return g.type;
  return 'inline';
}

function wrapCombined(label: string): string {
  return / (&&|\|\|) /.test(label) ? `(${label})` : label;
}

/** xstate implements `after` with a raise on entry and a cancel on exit; the arrow already says it. */
function isAfterPlumbing(action: unknown): boolean {
  const a = action as { type?: unknown; id?: unknown; sendId?: unknown };
  if (typeof action !== 'function') return false;
  const id = a.type === 'xstate.raise' ? a.id : a.type === 'xstate.cancel' ? a.sendId : undefined;
  return typeof id === 'string' && id.startsWith(xstateAfterPrefix);
}

function triggerLabel(t: TransitionLike, after?: unknown): string {
  if (after !== undefined) return typeof after === 'number' ? `after ${after} ms` : typeof after === 'string' ? `after ${after}` : 'after (delay)';
  if (t.eventType === '') return 'always';
  return t.eventType;
}

function pathOf(node: StateNodeLike): string {
  return node.path.join('.');
}

/** Every transition of a state node, with the delay of the delayed ones. */
function transitionsOf(node: StateNodeLike): { t: TransitionLike; trigger: string }[] {
  const out: { t: TransitionLike; trigger: string }[] = [];
  for (const [eventType, ts] of node.transitions) {
    if (eventType.startsWith(xstateAfterPrefix)) continue;
    for (const t of ts) out.push({ t, trigger: triggerLabel(t) });
  }
  for (const t of node.after) out.push({ t, trigger: triggerLabel(t, t.delay) });
  for (const t of node.always ?? []) out.push({ t, trigger: 'always' });
  return out;
}

function transitionLabel(trigger: string, t: TransitionLike): string {
  const guard = guardLabel(t.guard);
  const actions = t.actions.map(actionLabel);
  let label = trigger;
  if (t.description) label += ` (${t.description})`;
  if (guard) label += ` [${guard}]`;
  if (actions.length > 0) label += ` / ${actions.join(', ')}`;
  return label;
}

/** Mermaid text cannot hold some characters inside labels; these stand in for them. */
function escapeLabel(text: string): string {
  return text.replace(/;/g, ',').replace(/#/g, 'no.').replace(/\{/g, '(').replace(/\}/g, ')').replace(/"/g, "'");
}

function mermaidId(node: StateNodeLike): string {
  const raw = node.path.join('__');
  return /^[A-Za-z][A-Za-z0-9_]*$/.test(raw) && !reservedIds.has(raw) ? raw : `s_${raw.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function renderStates(parent: StateNodeLike, indent: string, lines: string[]): void {
  const children = Object.values(parent.states);
  const initial = parent.initial?.target ?? [];
  const regions = parent.type === 'parallel' ? children.map((c) => [c]) : [children];
  regions.forEach((region, i) => {
    if (i > 0) lines.push(`${indent}--`);
    if (parent.type !== 'parallel') for (const target of initial) lines.push(`${indent}[*] --> ${mermaidId(target)}`);
    const edges: string[] = [];
    for (const child of region) renderState(child, indent, lines, edges);
    // Arrows go in the block that declares their source state, after every state of that block.
    lines.push(...edges);
  });
}

function renderState(node: StateNodeLike, indent: string, lines: string[], edges: string[]): void {
  const id = mermaidId(node);
  if (id !== node.key) lines.push(`${indent}state "${escapeLabel(node.key)}" as ${id}`);
  if (node.type === 'history') lines.push(`${indent}${id} : history (${node.history === 'deep' ? 'deep' : 'shallow'})`);
  if (node.type === 'compound' || node.type === 'parallel') {
    lines.push(`${indent}state ${id} {`);
    renderStates(node, indent + '  ', lines);
    lines.push(`${indent}}`);
  }
  for (const line of ownLines(node)) lines.push(`${indent}${id} : ${escapeLabel(line)}`);
  if (node.type === 'final') lines.push(`${indent}${id} --> [*]`);
  for (const { t, trigger } of transitionsOf(node)) {
    if (!t.target || t.target.length === 0) continue;
    for (const target of t.target) edges.push(`${indent}${id} --> ${mermaidId(target)} : ${escapeLabel(transitionLabel(trigger, t))}`);
  }
}

/** What a state does without leaving: entry, exit, invocations and its target-less transitions. */
function ownLines(node: StateNodeLike): string[] {
  const lines: string[] = [];
  const entry = node.entry.filter((a) => !isAfterPlumbing(a));
  const exit = node.exit.filter((a) => !isAfterPlumbing(a));
  if (entry.length > 0) lines.push(`entry / ${entry.map(actionLabel).join(', ')}`);
  for (const inv of node.invoke) lines.push(`invoke ${typeof inv.src === 'string' ? inv.src : (inv.id ?? 'actor')}`);
  for (const { t, trigger } of transitionsOf(node)) {
    if (t.target && t.target.length > 0) continue;
    lines.push(transitionLabel(trigger, t));
  }
  if (exit.length > 0) lines.push(`exit / ${exit.map(actionLabel).join(', ')}`);
  return lines;
}

/** Mermaid stateDiagram-v2 text for a machine (no code fence). */
export function machineToMermaid(machine: AnyStateMachine): string {
  const root = machine.root as unknown as StateNodeLike;
  const lines = ['stateDiagram-v2'];
  const rootOwn = ownLines(root);
  const rootTargeted = transitionsOf(root).filter(({ t }) => t.target && t.target.length > 0);
  if (rootOwn.length === 0 && rootTargeted.length === 0 && root.type !== 'parallel') {
    renderStates(root, '  ', lines);
    return lines.join('\n') + '\n';
  }
  // The machine's own entry actions and transitions belong to a box around all its states.
  const id = `machine_${root.key.replace(/[^A-Za-z0-9_]/g, '_')}`;
  lines.push(`  state "${escapeLabel(root.key)}" as ${id}`);
  lines.push(`  [*] --> ${id}`);
  lines.push(`  state ${id} {`);
  renderStates(root, '    ', lines);
  lines.push('  }');
  if (rootOwn.length > 0) {
    lines.push(`  note right of ${id}`);
    for (const line of rootOwn) lines.push(`    ${escapeLabel(line)}`);
    lines.push('  end note');
  }
  for (const { t, trigger } of rootTargeted) {
    for (const target of t.target ?? []) lines.push(`  ${id} --> ${mermaidId(target)} : ${escapeLabel(transitionLabel(trigger, t))}`);
  }
  return lines.join('\n') + '\n';
}

/** Every transition of the machine, root first, states in document order. */
export function transitionRows(machine: AnyStateMachine): TransitionRow[] {
  const rows: TransitionRow[] = [];
  const visit = (node: StateNodeLike) => {
    for (const { t, trigger } of transitionsOf(node)) {
      rows.push({
        state: pathOf(node),
        trigger,
        guard: guardLabel(t.guard),
        target: (t.target ?? []).map(pathOf).join(', '),
        actions: t.actions.map(actionLabel).join(', '),
      });
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as StateNodeLike);
  return rows;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function cell(text: string): string {
  return text === '' ? '' : '`' + text.replace(/\|/g, '\\|').replace(/`/g, "'") + '`';
}

export interface DiagramSource {
  /** The machine's name: its id (`coordinator`). */
  name: string;
  /** The machine's file relative to the repository root (`actors/coordinator.machine.ts`). */
  file: string;
  machine: AnyStateMachine;
}

/** The command that regenerates the committed diagrams; the staleness test names it. */
export const regenerateCommand = 'npx tsx src/cli/main.ts diagram all --out docs/diagrams';

/** The Markdown page of one machine: a generated-file notice, the diagram, and the transition table. */
export function diagramMarkdown(src: DiagramSource): string {
  const root = src.machine.root as unknown as StateNodeLike;
  const states = Object.keys(root.states).length;
  const rows = transitionRows(src.machine);
  const table = [
    '| state | on | guard | to | actions |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${cell(r.state || src.name)} | ${cell(r.trigger)} | ${cell(r.guard)} | ${cell(r.target) || '(stays)'} | ${cell(r.actions)} |`),
  ];
  return [
    `# ${src.name}: state machine`,
    '',
    `<!-- Generated from ${src.file} by \`${regenerateCommand}\`; do not edit by hand. -->`,
    '',
    `The statechart of the \`${src.name}\` machine (${src.file}), generated from its definition: ${plural(states, 'top-level state')}, ${plural(rows.length, 'transition')}.`,
    'Arrows are transitions that change state, labelled `event [guard] / actions`; `always` marks an eventless transition and `after` a delayed one.',
    'Lines inside a state are what it does without leaving it: entry and exit actions, and transitions that only run actions.',
    '`[inline]` is a guard written as a function in place; name it in `setup({ guards })` to see its name here.',
    '',
    '```mermaid',
    machineToMermaid(src.machine).trimEnd(),
    '```',
    '',
    '## Transitions',
    '',
    ...table,
    '',
  ].join('\n');
}

/**
 * Fills marked regions of a Markdown file (the README) with the Mermaid block of a machine:
 *
 *   <!-- ringkv-diagram:coordinator -->
 *   (replaced by a mermaid code block)
 *   <!-- /ringkv-diagram:coordinator -->
 *
 * Regions naming an unknown machine are left alone and reported in `unknown`.
 */
export function fillMarkedRegions(text: string, mermaidByName: ReadonlyMap<string, string>): { text: string; filled: string[]; unknown: string[] } {
  const filled: string[] = [];
  const unknown: string[] = [];
  const pattern = /(<!-- ringkv-diagram:([A-Za-z0-9_-]+) -->\n)[\s\S]*?(<!-- \/ringkv-diagram:\2 -->)/g;
  const out = text.replace(pattern, (whole, open: string, name: string, close: string) => {
    const mermaid = mermaidByName.get(name);
    if (mermaid === undefined) {
      unknown.push(name);
      return whole;
    }
    filled.push(name);
    return `${open}\`\`\`mermaid\n${mermaid.trimEnd()}\n\`\`\`\n${close}`;
  });
  return { text: out, filled, unknown };
}
