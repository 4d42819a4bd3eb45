/**
 * The dashboard page: one self-contained HTML document (inline CSS, inline JavaScript, inline SVG
 * drawn by the script; no CDN, no framework, no build step), served by every node on /dashboard.
 *
 * It polls the serving node's JSON once a second (routes.ts) and redraws without reloading:
 * - /api/cluster: the ring (each partition in its owner's colour; a down owner's partitions faded
 *   and dashed; an inner arc in the fallback's colour where one stands in), the members, hinted
 *   handoff and ownership transfers in progress with their rates, anti-entropy per partition as two
 *   heat maps (time since the last exchange, keys repaired), and per operation a rate chart and a
 *   p50/p99 latency chart with axes;
 * - /api/actors?node=ID: the live actors of the chosen node; the chosen actor's statechart
 *   (/api/statechart?machine=M) is drawn with its current state highlighted.
 *
 * Colours are given to members in the order of their ids (palette[i] for the i-th), so that every
 * node's page, and the browser test, agree on them. Elements carry data- attributes (data-node,
 * data-state, data-p, data-owner) that say what they show, for people's tools and for the tests.
 */

const style = `
  :root { --bg: #0f1419; --panel: #182028; --line: #263040; --text: #d8dee4; --dim: #7d8a96; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --accent: #58a6ff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
  header { padding: 10px 20px; border-bottom: 1px solid var(--line); display: flex; gap: 20px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 17px; margin: 0; }
  .dim { color: var(--dim); }
  main { display: grid; grid-template-columns: repeat(12, 1fr); gap: 14px; padding: 14px 20px; }
  section { background: var(--panel); border-radius: 8px; padding: 10px 14px; min-width: 0; }
  section h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); margin: 0 0 8px; font-weight: 600; }
  section h3 { font-size: 12px; color: var(--dim); margin: 10px 0 4px; font-weight: 500; }
  .w3 { grid-column: span 3; } .w4 { grid-column: span 4; } .w5 { grid-column: span 5; } .w6 { grid-column: span 6; } .w7 { grid-column: span 7; } .w8 { grid-column: span 8; } .w12 { grid-column: span 12; }
  @media (max-width: 1100px) { main > section { grid-column: span 12; } }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid #232c36; vertical-align: top; white-space: nowrap; }
  th { color: var(--dim); font-weight: 500; }
  td.num, th.num { text-align: right; }
  .up { color: var(--ok); } .down { color: var(--bad); } .warn { color: var(--warn); }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
  .bar { display: inline-block; width: 70px; height: 8px; background: #2a333d; border-radius: 4px; overflow: hidden; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: var(--accent); }
  .charts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px 16px; }
  @media (max-width: 1100px) { .charts { grid-template-columns: 1fr; } }
  .chart text { fill: var(--dim); font-size: 10px; }
  .chart .axis line, .chart .axis path { stroke: #52606d; }
  .chart .grid line { stroke: #232c36; }
  .chart .series { fill: none; stroke-width: 1.6; }
  .chart .series.rate { stroke: #58a6ff; } .chart .series.errors { stroke: #f85149; }
  .chart .series.p50 { stroke: #3fb950; } .chart .series.p99 { stroke: #d29922; }
  .chart .title { fill: var(--text); font-size: 11px; }
  #ring svg, .heat svg { display: block; }
  #ring { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
  .heat { display: flex; gap: 18px; flex-wrap: wrap; }
  .legend { font-size: 11px; color: var(--dim); }
  #actors-wrap { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; gap: 12px; }
  #actor-list { max-height: 360px; overflow: auto; }
  #actor-list tr { cursor: pointer; }
  #actor-list tr.selected td { background: #1f3350; }
  #chart-box svg { max-width: 100%; height: auto; }
  #chart-box { overflow: auto; max-height: 420px; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
  .statechart .state > rect { fill: #1d2733; stroke: #4a5a6a; }
  .statechart .state.compound > rect { fill: #151c24; }
  .statechart .state.root > rect { fill: none; stroke: none; }
  .statechart .state.active > rect { fill: #1f6feb; stroke: #a5d6ff; stroke-width: 2; }
  .statechart .state.compound.active > rect { fill: #14284a; }
  .statechart text { fill: var(--text); font-size: 12px; }
  .statechart .transition line { stroke: #7d8a96; }
  .statechart .transition text { fill: #9aa7b3; font-size: 10px; }
  .statechart marker path { fill: #7d8a96; }
  select { background: #0f1419; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 2px 4px; }
  #error { color: var(--bad); }
`;

const body = `
<header>
  <h1 id="title">ringkv cluster</h1>
  <span id="facts" class="dim"></span>
  <span id="updated" class="dim"></span>
  <span id="error"></span>
</header>
<main>
  <section class="w5" id="ring-panel"><h2>Ring</h2><div id="ring"></div><p class="legend">Outer ring: each partition in its owner's colour; faded and dashed where the owner is down. Inner arc: the fallback standing in for a down primary (hints kept for it).</p></section>
  <section class="w7" id="members-panel"><h2>Members</h2>
    <table id="members"><thead><tr><th>node</th><th>state</th><th>membership</th><th class="num">partitions</th><th class="num">hints held</th><th>answers</th></tr></thead><tbody></tbody></table>
    <h3>Hinted handoff</h3><table id="handoff"><thead><tr><th>held by</th><th>for</th><th class="num">hints</th><th class="num">bytes</th><th class="num">oldest</th><th class="num">delivered/s</th><th class="num">bytes/s</th></tr></thead><tbody></tbody></table>
    <h3>Ownership transfers</h3><table id="transfers"><thead><tr><th>partition</th><th>from → to</th><th>state</th><th>progress</th><th class="num">objects/s</th><th class="num">bytes/s</th><th class="num">ETA</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="w12" id="requests-panel"><h2>Requests, whole cluster</h2><div class="charts" id="charts"></div><p class="legend">Answers per second by every node, and their real p50 and p99 over each second (merged from every node's fine latency histogram). A client-driven get is answered by each replica it asks (R of them, more when hedged): each answer counts as a get.</p></section>
  <section class="w4" id="aae-panel"><h2>Anti-entropy per partition</h2><div class="heat" id="aae"></div><p class="legend" id="aae-legend"></p></section>
  <section class="w8" id="actors-panel"><h2>Actors of <select id="actor-node"></select></h2><p class="dim" id="actor-counts"></p>
    <div id="actors-wrap"><div id="actor-list"><table id="actors"><thead><tr><th>actor</th><th>machine</th><th>state</th></tr></thead><tbody></tbody></table></div>
    <div><p id="chart-caption" class="dim"></p><div id="chart-box"></div></div></div>
  </section>
</main>`;

// The page's script: plain ES2020, written without template literals so that it can live in this
// TypeScript template string unchanged.
const script = String.raw`
"use strict";
const pollMs = 1000, actorsShownMax = 400, transfersShownMax = 10, chartWindowMs = 120000, gapMs = 3500;
const palette = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#f778ba", "#39c5cf", "#ff7b72", "#a5d6ff", "#7ee787", "#e3b341"];
const ns = "http://www.w3.org/2000/svg";
const colorOf = new Map();
let cluster = null, renders = 0, chosenNode = null, chosenActor = null, chartShown = null;
const charts = new Map();

function el(tag, attrs) { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); for (let i = 2; i < arguments.length; i++) e.append(arguments[i]); return e; }
function svg(tag, attrs) { const e = document.createElementNS(ns, tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); for (let i = 2; i < arguments.length; i++) e.append(arguments[i]); return e; }
function titled(e, text) { e.append(svg("title", {}, text)); return e; }
function color(id) { return colorOf.get(id) || "#555"; }
function bytes(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : Math.round(n) + " B"; }
function secs(ms) { return ms === null || ms === undefined ? "–" : ms < 1000 ? Math.round(ms) + " ms" : ms < 120000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min"; }
function num(x, digits) { return x === null || x === undefined ? "–" : x.toFixed(digits === undefined ? 1 : digits); }

function assignColors(ids) { ids.slice().sort().forEach(function (id, i) { colorOf.set(id, palette[i % palette.length]); }); }

function arc(cx, cy, r, a0, a1) {
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return "M " + (cx + r * Math.cos(a0)).toFixed(2) + " " + (cy + r * Math.sin(a0)).toFixed(2) + " A " + r + " " + r + " 0 " + large + " 1 " + (cx + r * Math.cos(a1)).toFixed(2) + " " + (cy + r * Math.sin(a1)).toFixed(2);
}

function renderRing(c) {
  const q = c.owners.length, size = 280, cx = size / 2, outer = 118, inner = 92;
  const state = new Map(c.status.members.map(function (m) { return [m.nodeId, m.state]; }));
  const root = svg("svg", { width: size, height: size, viewBox: "0 0 " + size + " " + size, "data-partitions": q });
  const gap = q > 1 ? Math.min(0.02, Math.PI / q / 4) : 0;
  for (let p = 0; p < q; p++) {
    const a0 = (p / q) * 2 * Math.PI - Math.PI / 2 + gap, a1 = ((p + 1) / q) * 2 * Math.PI - Math.PI / 2 - gap;
    const owner = c.owners[p], down = state.get(owner) === "down";
    const seg = svg("path", { d: arc(cx, cx, outer, a0, a1), fill: "none", stroke: color(owner), "stroke-width": 24, class: "partition" + (down ? " down" : ""), "data-p": p, "data-owner": owner });
    if (down) { seg.setAttribute("stroke-opacity", "0.3"); seg.setAttribute("stroke-dasharray", "3 2"); }
    root.append(titled(seg, "partition " + p + ": owner " + owner + (down ? " (down)" : "")));
  }
  for (const f of c.fallbacks) {
    const a0 = (f.p / q) * 2 * Math.PI - Math.PI / 2 + gap, a1 = ((f.p + 1) / q) * 2 * Math.PI - Math.PI / 2 - gap;
    const stroke = f.fallback === null ? "#f85149" : color(f.fallback);
    const seg = svg("path", { d: arc(cx, cx, inner, a0, a1), fill: "none", stroke: stroke, "stroke-width": 10, class: "fallback", "data-p": f.p, "data-primary": f.primary, "data-fallback": f.fallback === null ? "" : f.fallback });
    root.append(titled(seg, "partition " + f.p + ": " + (f.fallback === null ? "no spare node; the coordinator keeps hints for " + f.primary : f.fallback + " stands in for " + f.primary)));
  }
  root.append(svg("text", { x: cx, y: cx - 4, "text-anchor": "middle", fill: "#d8dee4", "font-size": 15 }, q + " partitions"));
  root.append(svg("text", { x: cx, y: cx + 14, "text-anchor": "middle", fill: "#7d8a96", "font-size": 11 }, "ring v" + (c.status.ringVersion || 0) + " · N=" + c.status.n));
  const legend = el("div", { class: "legend" });
  for (const m of c.status.members) legend.append(el("div", { "data-node": m.nodeId }, el("span", { class: "swatch", style: "background:" + color(m.nodeId) }), m.nodeId + " · " + m.partitions.length + " owned" + (m.state === "down" ? " · down" : "")));
  const standIns = c.fallbacks.filter(function (f) { return f.fallback !== null; }).length, orphans = c.fallbacks.length - standIns;
  if (standIns) legend.append(el("div", {}, standIns + " replica(s) of down primaries stood in for by a fallback"));
  if (orphans) legend.append(el("div", { class: "down" }, orphans + " replica(s) with no spare node to stand in (red): their coordinators keep the hints"));
  document.getElementById("ring").replaceChildren(root, legend);
}

function nodeFigures(c, id) { return c.nodes.find(function (n) { return n.nodeId === id; }); }

function renderMembers(c) {
  const rows = c.status.members.map(function (m) {
    const f = nodeFigures(c, m.nodeId);
    const held = f && f.hints ? f.hints.targets.reduce(function (a, t) { return a + t.count; }, 0) : null;
    return el("tr", { "data-node": m.nodeId, "data-state": m.state },
      el("td", {}, el("span", { class: "swatch", style: "background:" + color(m.nodeId) }), m.nodeId),
      el("td", { class: m.state }, m.state),
      el("td", {}, (m.status || "valid") + (m.staged ? " (" + m.staged + " staged)" : "")),
      el("td", { class: "num" }, String(m.partitions.length)),
      el("td", { class: "num" }, held === null ? "–" : String(held)),
      el("td", { class: f && f.reachable ? "up" : "down", title: f && f.error ? f.error : "" }, f && f.reachable ? "yes" : "no answer"));
  });
  document.querySelector("#members tbody").replaceChildren.apply(document.querySelector("#members tbody"), rows);
}

function renderHandoff(c) {
  const rows = [];
  for (const n of c.nodes) {
    if (!n.hints) continue;
    for (const t of n.hints.targets) rows.push(el("tr", { "data-holder": n.nodeId, "data-target": t.target }, el("td", {}, n.nodeId), el("td", {}, t.target), el("td", { class: "num" }, String(t.count)), el("td", { class: "num" }, bytes(t.bytes)), el("td", { class: "num" }, secs(t.oldestAgeMs)), el("td", { class: "num" }, num(n.hints.deliveredPerSec)), el("td", { class: "num" }, bytes(n.hints.deliveredBytesPerSec))));
    if (n.hints.targets.length === 0 && n.hints.deliveredPerSec > 0) rows.push(el("tr", { "data-holder": n.nodeId }, el("td", {}, n.nodeId), el("td", { class: "dim" }, "(all delivered)"), el("td", { class: "num" }, "0"), el("td"), el("td"), el("td", { class: "num" }, num(n.hints.deliveredPerSec)), el("td", { class: "num" }, bytes(n.hints.deliveredBytesPerSec))));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "dim" }, "no hints pending")));
  document.querySelector("#handoff tbody").replaceChildren.apply(document.querySelector("#handoff tbody"), rows);
}

function renderTransfers(c) {
  const rows = [], all = [];
  for (const n of c.nodes) if (n.transfers) all.push.apply(all, n.transfers.transfers);
  // The ones moving data first; the waiting ones are summed up past transfersShownMax rows.
  all.sort(function (a, b) { return (a.state === "waiting") - (b.state === "waiting") || a.p - b.p; });
  for (const t of all.slice(0, transfersShownMax)) {
    const done = t.objectsTotal > 0 ? Math.min(1, t.objectsSent / t.objectsTotal) : 0;
    rows.push(el("tr", { "data-p": t.p }, el("td", {}, String(t.p)), el("td", {}, t.from + " → " + t.to.join(", ")), el("td", {}, t.state),
      el("td", {}, el("span", { class: "bar" }, el("span", { style: "width:" + Math.round(done * 100) + "%" })), " " + t.objectsSent + "/" + t.objectsTotal),
      el("td", { class: "num" }, num(t.objectsPerSec)), el("td", { class: "num" }, bytes(t.bytesPerSec)), el("td", { class: "num" }, secs(t.etaMs))));
  }
  if (all.length > transfersShownMax) rows.push(el("tr", {}, el("td", { colspan: 7, class: "dim" }, "… " + (all.length - transfersShownMax) + " more (" + all.filter(function (t) { return t.state === "waiting"; }).length + " waiting in all)")));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "dim" }, "no ownership transfers running")));
  document.querySelector("#transfers tbody").replaceChildren.apply(document.querySelector("#transfers tbody"), rows);
}

function heatColor(x) {
  // 0 -> green, 0.5 -> amber, 1 -> red.
  const stops = [[63, 185, 80], [210, 153, 34], [248, 81, 73]];
  const t = Math.max(0, Math.min(1, x)) * 2, i = Math.min(1, Math.floor(t)), f = t - i;
  const a = stops[i], b = stops[i + 1];
  return "rgb(" + a.map(function (v, k) { return Math.round(v + (b[k] - v) * f); }).join(",") + ")";
}

function renderAae(c) {
  const q = c.aae.length, cols = Math.min(16, q), cell = 15, rowsN = Math.ceil(q / cols);
  const interval = Math.max.apply(null, [1].concat(c.nodes.map(function (n) { return n.aae ? n.aae.intervalMs : 0; })));
  const maxKeys = Math.max.apply(null, [0].concat(c.aae.map(function (a) { return a.keysRepaired; })));
  function grid(kind, title, fill, tip) {
    const s = svg("svg", { width: cols * cell + 2, height: rowsN * cell + 18, class: "aae-map", "data-kind": kind });
    s.append(svg("text", { x: 0, y: 11, fill: "#7d8a96", "font-size": 11 }, title));
    for (const a of c.aae) {
      const r = svg("rect", { x: (a.p % cols) * cell + 1, y: Math.floor(a.p / cols) * cell + 16, width: cell - 2, height: cell - 2, rx: 2, fill: fill(a), class: "aae-cell", "data-p": a.p });
      s.append(titled(r, "partition " + a.p + ": " + tip(a)));
    }
    return s;
  }
  const age = grid("age", "since the last exchange", function (a) { return a.lastExchangeAt === null ? "#2a313a" : heatColor((c.t - a.lastExchangeAt - interval) / (9 * interval)); },
    function (a) { return a.lastExchangeAt === null ? "no exchange yet" : "last exchange " + secs(c.t - a.lastExchangeAt) + " ago, " + a.exchanges + " exchanges, " + a.failed + " failed"; });
  const keys = grid("keys", "keys repaired", function (a) { return a.keysRepaired === 0 ? "#2a313a" : "rgba(188,140,255," + (0.3 + 0.7 * Math.log(1 + a.keysRepaired) / Math.log(1 + maxKeys)).toFixed(2) + ")"; },
    function (a) { return a.keysRepaired + " keys repaired"; });
  document.getElementById("aae").replaceChildren(age, keys);
  const exchanged = c.aae.filter(function (a) { return a.lastExchangeAt !== null; }).length;
  const running = c.nodes.reduce(function (s, n) { return s + (n.aae ? n.aae.running : 0); }, 0);
  const paused = c.nodes.filter(function (n) { return n.aae && n.aae.paused; }).map(function (n) { return n.nodeId; });
  document.getElementById("aae-legend").textContent = exchanged + " of " + q + " partitions exchanged · " + running + " exchange(s) running · green: within one round interval (" + secs(interval) + "), amber: about five, red: ten or more, grey: never" + (paused.length ? " · paused on " + paused.join(", ") : "");
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
function tickText(v) { return v >= 1000 ? (v / 1000) + "k" : v >= 10 ? String(Math.round(v)) : v >= 1 ? String(Math.round(v * 10) / 10) : String(Math.round(v * 100) / 100); }

function lineChart(id, title, unit, series, now) {
  const W = 360, H = 150, L = 46, R = 8, T = 18, B = 24, w = W - L - R, h = H - T - B;
  const t0 = now - chartWindowMs;
  let max = 0;
  for (const s of series) for (const pt of s.points) if (pt.v !== null && pt.t >= t0) max = Math.max(max, pt.v);
  const yMax = niceMax(max);
  const x = function (t) { return L + ((t - t0) / chartWindowMs) * w; }, y = function (v) { return T + h - (v / yMax) * h; };
  const root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "chart", id: id, "data-ymax": yMax });
  root.append(svg("text", { x: L, y: 12, class: "title" }, title));
  const grid = svg("g", { class: "grid" }), ax = svg("g", { class: "axis x" }), ay = svg("g", { class: "axis y" });
  ax.append(svg("line", { x1: L, y1: T + h, x2: L + w, y2: T + h }));
  for (let s = 0; s <= chartWindowMs / 1000; s += 30) {
    const tx = x(t0 + s * 1000);
    ax.append(svg("line", { x1: tx, y1: T + h, x2: tx, y2: T + h + 4 }));
    ax.append(svg("text", { x: tx, y: H - 6, "text-anchor": "middle", class: "tick" }, s === chartWindowMs / 1000 ? "now" : "-" + (chartWindowMs / 1000 - s) + " s"));
  }
  ay.append(svg("line", { x1: L, y1: T, x2: L, y2: T + h }));
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4, ty = y(v);
    ay.append(svg("line", { x1: L - 4, y1: ty, x2: L, y2: ty }));
    ay.append(svg("text", { x: L - 6, y: ty + 3, "text-anchor": "end", class: "tick" }, tickText(v)));
    if (i > 0) grid.append(svg("line", { x1: L, y1: ty, x2: L + w, y2: ty }));
  }
  ay.append(svg("text", { x: 10, y: T + h / 2, transform: "rotate(-90 10 " + (T + h / 2) + ")", "text-anchor": "middle", class: "unit" }, unit));
  root.append(grid, ax, ay);
  let lx = L + w;
  for (let i = series.length - 1; i >= 0; i--) {
    const s = series[i];
    let d = "", pen = false, drawn = 0, lastT = -Infinity;
    for (const pt of s.points) {
      if (pt.t < t0 || pt.v === null) { pen = false; continue; }
      // Nobody watched for a while (sampling stops when idle): no line across the gap.
      if (pt.t - lastT > gapMs) pen = false;
      d += (pen ? " L " : " M ") + x(pt.t).toFixed(1) + " " + y(pt.v).toFixed(1);
      pen = true; drawn++; lastT = pt.t;
    }
    if (d) root.append(svg("path", { d: d.trim(), class: "series " + s.cls, "data-points": drawn }));
    const label = svg("text", { x: lx, y: 12, "text-anchor": "end", class: "series-label" }, s.name);
    label.setAttribute("style", "fill:" + ({ rate: "#58a6ff", errors: "#f85149", p50: "#3fb950", p99: "#d29922" })[s.cls]);
    root.append(label);
    lx -= 8 * s.name.length + 10;
  }
  return root;
}

function renderCharts(c) {
  const ops = ["put", "get", "del"];
  const box = document.getElementById("charts"), out = [];
  for (const op of ops) {
    const pts = c.series.map(function (p) { return { t: p.t, o: p.ops[op] }; });
    out.push(lineChart("rate-" + op, op + ": answers per second", "per s", [
      { name: "answers", cls: "rate", points: pts.map(function (p) { return { t: p.t, v: p.o ? p.o.rate : null }; }) },
      { name: "errors", cls: "errors", points: pts.map(function (p) { return { t: p.t, v: p.o ? p.o.errorRate : null }; }) },
    ], c.t));
  }
  for (const op of ops) {
    const pts = c.series.map(function (p) { return { t: p.t, o: p.ops[op] }; });
    out.push(lineChart("latency-" + op, op + ": latency", "ms", [
      { name: "p50", cls: "p50", points: pts.map(function (p) { return { t: p.t, v: p.o ? p.o.p50 : null }; }) },
      { name: "p99", cls: "p99", points: pts.map(function (p) { return { t: p.t, v: p.o ? p.o.p99 : null }; }) },
    ], c.t));
  }
  box.replaceChildren.apply(box, out);
}

function renderNodeChoice(c) {
  const select = document.getElementById("actor-node");
  const ids = c.status.members.map(function (m) { return m.nodeId; });
  if (chosenNode === null) chosenNode = c.via;
  if (select.options.length !== ids.length || ids.some(function (id, i) { return select.options[i].value !== id; })) {
    select.replaceChildren.apply(select, ids.map(function (id) { const o = el("option", { value: id }, id); if (id === chosenNode) o.selected = true; return o; }));
  }
}

/** The states an actor is in, as dotted paths with every ancestor: "a.b" -> a, a.b; "(x.y, z)" -> x, x.y, z. */
function activePaths(text, prefix, out) {
  text = text.trim();
  if (!text) return out;
  if (text[0] === "(" && text[text.length - 1] === ")") {
    let depth = 0, start = 1;
    for (let i = 1; i < text.length - 1; i++) {
      const ch = text[i];
      if (ch === "(") depth++; else if (ch === ")") depth--;
      else if (ch === "," && depth === 0) { activePaths(text.slice(start, i), prefix, out); start = i + 1; }
    }
    activePaths(text.slice(start, text.length - 1), prefix, out);
    return out;
  }
  const dot = text.indexOf(".");
  const head = dot < 0 ? text : text.slice(0, dot);
  out.add(prefix + head);
  if (dot >= 0) activePaths(text.slice(dot + 1), prefix + head + ".", out);
  return out;
}

async function showChart(actor) {
  const caption = document.getElementById("chart-caption"), box = document.getElementById("chart-box");
  if (!actor) { caption.textContent = "choose an actor"; box.replaceChildren(); chartShown = null; return; }
  if (chartShown !== actor.machine) {
    chartShown = actor.machine;
    let chart = charts.get(actor.machine);
    if (!chart) {
      const r = await fetch("/api/statechart?machine=" + encodeURIComponent(actor.machine), { cache: "no-store" });
      chart = r.ok ? await r.json() : { svg: "" };
      charts.set(actor.machine, chart);
    }
    box.innerHTML = chart.svg || "<p class=dim>no statechart for machine " + actor.machine + "</p>";
  }
  const active = activePaths(actor.state, "", new Set());
  box.querySelectorAll("g.state").forEach(function (g) { g.classList.toggle("active", active.has(g.getAttribute("data-state"))); });
  caption.textContent = actor.id + " (" + actor.machine + ") is in " + (actor.state || "?") + (actor.status !== "active" ? " · " + actor.status : "");
  box.setAttribute("data-actor", actor.id);
  box.setAttribute("data-current", actor.state);
}

function renderActors(snap) {
  const counts = {};
  for (const a of snap.actors) counts[a.machine] = (counts[a.machine] || 0) + 1;
  document.getElementById("actor-counts").textContent = Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(" · ") + (snap.omitted ? " · " + snap.omitted + " more not listed" : "");
  if (chosenActor === null || !snap.actors.some(function (a) { return a.id === chosenActor; })) {
    const preferred = snap.actors.find(function (a) { return a.machine === "handoff"; }) || snap.actors[0];
    chosenActor = preferred ? preferred.id : null;
  }
  const rows = snap.actors.slice(0, actorsShownMax).map(function (a) {
    const tr = el("tr", { "data-actor": a.id, class: a.id === chosenActor ? "selected" : "" }, el("td", {}, a.id), el("td", {}, a.machine), el("td", {}, a.status === "active" ? a.state : a.state + " (" + a.status + ")"));
    tr.addEventListener("click", function () { chosenActor = a.id; renderActors(snap); });
    return tr;
  });
  document.querySelector("#actors tbody").replaceChildren.apply(document.querySelector("#actors tbody"), rows);
  return showChart(snap.actors.find(function (a) { return a.id === chosenActor; }));
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

async function pollCluster() {
  try {
    const c = await getJson("/api/cluster");
    cluster = c;
    assignColors(c.status.members.map(function (m) { return m.nodeId; }));
    document.getElementById("title").textContent = "ringkv cluster " + c.status.cluster;
    document.title = "ringkv " + c.status.cluster;
    document.getElementById("facts").textContent = "served by " + c.via + " · " + c.status.members.length + " members · " + c.owners.length + " partitions · N=" + c.status.n;
    renderRing(c); renderMembers(c); renderHandoff(c); renderTransfers(c); renderAae(c); renderCharts(c); renderNodeChoice(c);
    renders++;
    document.body.dataset.renders = String(renders);
    document.body.dataset.ready = "true";
    document.getElementById("updated").textContent = "updated " + new Date(c.t).toLocaleTimeString();
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "cannot reach the node: " + err.message;
  }
  setTimeout(pollCluster, pollMs);
}

async function pollActors() {
  try {
    if (chosenNode !== null) {
      const snap = await getJson("/api/actors?node=" + encodeURIComponent(chosenNode));
      await renderActors(snap);
      document.body.dataset.actorsNode = snap.node;
    }
  } catch (err) {
    document.getElementById("actor-counts").textContent = "no snapshot from " + chosenNode + ": " + err.message;
  }
  setTimeout(pollActors, pollMs);
}

document.getElementById("actor-node").addEventListener("change", function (e) { chosenNode = e.target.value; chosenActor = null; chartShown = null; });
pollCluster();
pollActors();
`;

export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringkv cluster</title>
<style>${style}</style>
</head>
<body>${body}
<script>${script}</script>
</body>
</html>
`;
