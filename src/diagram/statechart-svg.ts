/**
 * A machine's statechart drawn as SVG, for the dashboard's actor panel (no Mermaid renderer is at
 * hand in a browser without internet). Like statechart.ts it walks the machine definition, so the
 * drawing cannot drift from the machine.
 *
 * Layout, kept simple enough to read in a few lines: each compound state lays its children out in
 * columns, by breadth-first distance from its initial state along the transitions between them
 * (the initial state leftmost); a parallel state puts each region in its own column. States are
 * rounded boxes, compound ones enclose their children, transitions with a target are arrows
 * labelled with their trigger (several between the same two states share one arrow). A transition
 * without a target only runs actions and is not drawn (the markdown diagrams list them).
 *
 * Every state is a `<g class="state" data-state="a.b">` (its dotted path), so that the page can
 * mark the current state by adding a class.
 */
import type { AnyStateMachine } from 'xstate';
import { transitionRows } from './statechart.js';

interface StateNodeLike {
  key: string;
  path: string[];
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  states: Record<string, StateNodeLike>;
  initial?: { target: StateNodeLike[] };
}

interface Box {
  path: string;
  key: string;
  type: StateNodeLike['type'];
  x: number;
  y: number;
  w: number;
  h: number;
  children: Box[];
}

const charWidthPx = 7;
const stateHeightPx = 28;
const stateWidthMinPx = 64;
const paddingPx = 12;
const headerPx = 20;
const columnGapPx = 96;
const rowGapPx = 30;
/** How far an arrow is moved aside from its twin going the other way. */
const twinOffsetPx = 5;
/** Characters of a transition label shown; the full label is the arrow's tooltip. */
const labelCharsMax = 22;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Sibling-to-sibling links inside `parent`, from every transition whose source and target lie below it. */
function siblingLinks(parent: StateNodeLike, rows: { state: string; target: string }[]): Map<string, Set<string>> {
  const prefix = parent.path.length === 0 ? '' : parent.path.join('.') + '.';
  const childOf = (path: string) => (path.startsWith(prefix) ? path.slice(prefix.length).split('.')[0] : undefined);
  const links = new Map<string, Set<string>>();
  for (const r of rows) {
    const from = childOf(r.state);
    if (from === undefined || from === '') continue;
    for (const target of r.target.split(', ').filter((t) => t !== '')) {
      const to = childOf(target);
      if (to === undefined || to === from) continue;
      if (!links.has(from)) links.set(from, new Set());
      links.get(from)!.add(to);
    }
  }
  return links;
}

/** The children's columns: breadth-first from the initial child; unreached ones after the rest. */
function columnsOf(node: StateNodeLike, rows: { state: string; target: string }[]): string[][] {
  const keys = Object.keys(node.states);
  if (node.type === 'parallel') return keys.map((k) => [k]);
  const links = siblingLinks(node, rows);
  const layer = new Map<string, number>();
  const initial = node.initial?.target[0]?.key ?? keys[0];
  const queue: string[] = [];
  if (initial !== undefined) {
    layer.set(initial, 0);
    queue.push(initial);
  }
  const visit = () => {
    while (queue.length > 0) {
      const k = queue.shift()!;
      for (const next of links.get(k) ?? []) {
        if (layer.has(next) || !keys.includes(next)) continue;
        layer.set(next, layer.get(k)! + 1);
        queue.push(next);
      }
    }
  };
  visit();
  for (const k of keys) {
    if (layer.has(k)) continue;
    layer.set(k, Math.max(0, ...layer.values()) + 1);
    queue.push(k);
    visit();
  }
  const columns: string[][] = [];
  for (const k of keys) (columns[layer.get(k)!] ??= []).push(k);
  return columns.filter((c) => c !== undefined && c.length > 0);
}

function layout(node: StateNodeLike, rows: { state: string; target: string }[]): Box {
  const box: Box = { path: node.path.join('.'), key: node.key, type: node.type, x: 0, y: 0, w: 0, h: 0, children: [] };
  const labelWidth = node.key.length * charWidthPx + 24;
  if (Object.keys(node.states).length === 0) {
    box.w = Math.max(stateWidthMinPx, labelWidth);
    box.h = stateHeightPx;
    return box;
  }
  let x = paddingPx;
  let height = 0;
  for (const column of columnsOf(node, rows)) {
    const boxes = column.map((k) => layout(node.states[k]!, rows));
    let y = headerPx + paddingPx;
    const width = Math.max(...boxes.map((b) => b.w));
    for (const b of boxes) {
      b.x = x + (width - b.w) / 2;
      b.y = y;
      y += b.h + rowGapPx;
      box.children.push(b);
    }
    height = Math.max(height, y - rowGapPx);
    x += width + columnGapPx;
  }
  box.w = Math.max(labelWidth, x - columnGapPx + paddingPx);
  box.h = height + paddingPx;
  return box;
}

/** Moves child boxes to absolute coordinates and indexes every box by path. */
function place(box: Box, dx: number, dy: number, index: Map<string, Box>): void {
  box.x += dx;
  box.y += dy;
  index.set(box.path, box);
  for (const c of box.children) place(c, box.x, box.y, index);
}

/** Where the segment from the centre of `b` towards (tx, ty) leaves the box. */
function exitPoint(b: Box, tx: number, ty: number): [number, number] {
  const cx = b.x + b.w / 2;
  const cy = b.y + b.h / 2;
  const dx = tx - cx;
  const dy = ty - cy;
  if (dx === 0 && dy === 0) return [cx, cy];
  const scale = Math.min(dx === 0 ? Infinity : b.w / 2 / Math.abs(dx), dy === 0 ? Infinity : b.h / 2 / Math.abs(dy));
  return [cx + dx * Math.min(1, scale), cy + dy * Math.min(1, scale)];
}

function drawBox(b: Box, isRoot: boolean, out: string[]): void {
  const kind = b.children.length > 0 ? 'compound' : b.type === 'final' ? 'final' : 'atomic';
  const cls = isRoot ? 'state root' : `state ${kind}`;
  out.push(`<g class="${cls}" data-state="${escapeXml(b.path)}">`);
  out.push(`<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="6"${b.type === 'parallel' ? ' stroke-dasharray="4 3"' : ''}/>`);
  const tx = b.children.length > 0 ? b.x + 8 : b.x + b.w / 2;
  const ty = b.children.length > 0 ? b.y + 14 : b.y + b.h / 2 + 4;
  out.push(`<text x="${tx}" y="${ty}"${b.children.length > 0 ? '' : ' text-anchor="middle"'}>${escapeXml(b.key)}</text>`);
  out.push('</g>');
  for (const c of b.children) drawBox(c, false, out);
}

export interface StatechartSvg {
  machine: string;
  svg: string;
  /** Every state's dotted path, as `data-state` carries it. */
  states: string[];
  width: number;
  height: number;
}

export function statechartSvg(machine: AnyStateMachine): StatechartSvg {
  const root = machine.root as unknown as StateNodeLike;
  const rows = transitionRows(machine);
  const box = layout(root, rows);
  const index = new Map<string, Box>();
  place(box, 0, 0, index);
  const out: string[] = [];
  drawBox(box, true, out);

  // One arrow per (source, target) pair; its tooltip lists every transition it stands for.
  const edges = new Map<string, { from: Box; to: Box; labels: string[] }>();
  for (const r of rows) {
    for (const target of r.target.split(', ').filter((t) => t !== '')) {
      const from = index.get(r.state);
      const to = index.get(target);
      if (!from || !to || from === to) continue;
      const key = `${from.path}->${to.path}`;
      const label = r.guard ? `${r.trigger} [${r.guard}]` : r.trigger;
      const e = edges.get(key);
      if (e) e.labels.push(label);
      else edges.set(key, { from, to, labels: [label] });
    }
  }
  for (const { from, to, labels } of edges.values()) {
    let [x1, y1] = exitPoint(from, to.x + to.w / 2, to.y + to.h / 2);
    let [x2, y2] = exitPoint(to, from.x + from.w / 2, from.y + from.h / 2);
    // An arrow with a twin going back is shifted aside, so that the two stay apart.
    if (edges.has(`${to.path}->${from.path}`)) {
      const len = Math.hypot(x2 - x1, y2 - y1) || 1;
      const [nx, ny] = [((y2 - y1) / len) * twinOffsetPx, (-(x2 - x1) / len) * twinOffsetPx];
      [x1, y1, x2, y2] = [x1 + nx, y1 + ny, x2 + nx, y2 + ny];
    }
    const first = labels[0]!;
    const shown = (first.length > labelCharsMax ? `${first.slice(0, labelCharsMax - 1)}…` : first) + (labels.length > 1 ? ` +${labels.length - 1}` : '');
    out.push(`<g class="transition"><title>${escapeXml(labels.join('\n'))}</title>`);
    out.push(`<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" marker-end="url(#arrow)"/>`);
    out.push(`<text x="${((x1 + x2) / 2).toFixed(1)}" y="${((y1 + y2) / 2 - 4).toFixed(1)}" text-anchor="middle">${escapeXml(shown)}</text></g>`);
  }
  const width = Math.ceil(box.w + 2);
  const height = Math.ceil(box.h + 2);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${escapeXml(machine.id)}" viewBox="-1 -1 ${width} ${height}" width="${width}" height="${height}">` +
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>' +
    out.join('') +
    '</svg>';
  return { machine: machine.id, svg, states: [...index.keys()].filter((p) => p !== ''), width, height };
}
