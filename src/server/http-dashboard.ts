/**
 * The dashboard each node serves on its HTTP server (/dashboard): members and their state, the ring,
 * request rates and latencies, background work (handoff, anti-entropy, gossip) and a live view of
 * the actors, as this node sees them. One self-contained page (inline CSS and JavaScript, no CDN, no
 * build step) that polls three JSON endpoints of the same node once a second:
 *
 *   /api/status   members, liveness and partition ownership (what api.status answers), node facts
 *   /api/actors   the inspection snapshot: every live actor, its state and context summary
 *   /api/metrics  request counters and latency buckets by operation, in-flight requests
 *
 * Rates and percentiles are computed in the page from the difference between two polls.
 */
import { type NodeContext, statusOf } from '../../actors/node.machine.js';
import type { NodeMetrics } from './metrics.js';
import type { RouteHandler } from './http-server.js';

function json(res: Parameters<RouteHandler>[1], body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

interface MetricValues {
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export function dashboardRoutes(metrics: NodeMetrics): Record<string, RouteHandler> {
  const startedAt = Date.now();
  return {
    '/dashboard': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(dashboardHtml) });
      res.end(dashboardHtml);
    },
    '/api/status': (_req, res) => {
      const node = metrics.attachedNode;
      if (!node) return json(res, { error: 'the node is starting' }, 503);
      const context = node.actor.getSnapshot().context as NodeContext;
      json(res, {
        ...statusOf(context),
        epoch: node.identity.epoch,
        health: metrics.health(),
        uptimeMs: Date.now() - startedAt,
        now: Date.now(),
      });
    },
    '/api/actors': (_req, res) => {
      const node = metrics.attachedNode;
      if (!node) return json(res, { error: 'the node is starting' }, 503);
      json(res, node.inspect.tap.snapshot());
    },
    '/api/metrics': async (_req, res) => {
      const get = async (name: string) => ((await metrics.registry.getSingleMetric(name)?.get()) as MetricValues | undefined)?.values ?? [];
      const requests = (await get('ringkv_requests_total')).map((v) => ({ op: v.labels.op, outcome: v.labels.outcome, count: v.value }));
      const buckets = (await get('ringkv_request_duration_seconds'))
        .filter((v) => v.metricName === 'ringkv_request_duration_seconds_bucket')
        .map((v) => ({ op: v.labels.op, outcome: v.labels.outcome, le: v.labels.le, count: v.value }));
      const inFlight = (await get('ringkv_requests_in_flight'))[0]?.value ?? 0;
      const actors = (await get('ringkv_actors')).map((v) => ({ machine: v.labels.machine, count: v.value }));
      json(res, { now: Date.now(), requests, buckets, inFlight, actors, api: metrics.api });
    },
  };
}

const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringkv node</title>
<style>
  :root { --bg: #0f1419; --panel: #182028; --text: #d8dee4; --dim: #7d8a96; --ok: #3fb950; --bad: #f85149; --warn: #d29922; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
  header { padding: 12px 20px; border-bottom: 1px solid #263040; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  .dim { color: var(--dim); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; padding: 16px 20px; }
  section { background: var(--panel); border-radius: 8px; padding: 12px 16px; min-width: 0; }
  section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); margin: 0 0 8px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #232c36; vertical-align: top; }
  th { color: var(--dim); font-weight: 500; }
  td.num, th.num { text-align: right; }
  .up { color: var(--ok); } .down { color: var(--bad); } .warn { color: var(--warn); }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
  .changed { animation: flash 1s ease-out; }
  @keyframes flash { from { background: #2d4a6b; } to { background: transparent; } }
  table.fixed { table-layout: fixed; }
  .ctx { color: var(--dim); font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  #ring svg { display: block; margin: 0 auto; }
  #error { color: var(--bad); }
</style>
</head>
<body>
<header>
  <h1 id="title">ringkv node</h1>
  <span id="facts" class="dim"></span>
  <span id="health"></span>
  <span id="error"></span>
</header>
<main>
  <section id="members-panel"><h2>Members</h2><table id="members"><thead><tr><th>node</th><th>state</th><th class="num">partitions</th></tr></thead><tbody></tbody></table></section>
  <section id="ring-panel"><h2>Ring</h2><div id="ring"></div></section>
  <section id="requests-panel"><h2>Requests (this node)</h2><table id="requests"><thead><tr><th>op</th><th class="num">per s</th><th class="num">p50 ms</th><th class="num">p99 ms</th><th class="num">total</th><th class="num">errors</th></tr></thead><tbody></tbody></table><p class="dim" id="inflight"></p><canvas id="spark" width="340" height="50"></canvas></section>
  <section id="work-panel"><h2>Background work</h2><table id="work" class="fixed"><thead><tr><th style="width:28%">actor</th><th style="width:22%">state</th><th>context</th></tr></thead><tbody></tbody></table></section>
  <section id="actors-panel" style="grid-column: 1 / -1"><h2>Actors</h2><p class="dim" id="actor-counts"></p><table id="actors" class="fixed"><thead><tr><th style="width:16%">actor</th><th style="width:12%">machine</th><th style="width:14%">state</th><th>context</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const pollMs = 1000, actorsShownMax = 200, sparkPoints = 60;
const palette = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#f778ba", "#39c5cf", "#ff7b72", "#a5d6ff", "#7ee787", "#e3b341"];
const colorOf = new Map();
const color = (node) => { if (!colorOf.has(node)) colorOf.set(node, palette[colorOf.size % palette.length]); return colorOf.get(node); };
const el = (tag, attrs, ...children) => { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v); for (const c of children) e.append(c); return e; };
const text = (v) => String(v);
let previous = null; const rates = []; const lastStates = new Map();

function inline(s, prefix) {
  prefix = prefix || "";
  if (s === null || typeof s !== "object") return prefix + String(s);
  if (Array.isArray(s)) return prefix + "[" + s.map((x) => inline(x)).join(" ") + "]";
  return Object.entries(s).map(([k, v]) => v && typeof v === "object" && !Array.isArray(v) ? inline(v, prefix + k + ".") : prefix + k + " " + inline(v)).join(", ");
}

function renderStatus(st) {
  document.getElementById("title").textContent = "ringkv node " + st.nodeId;
  document.title = "ringkv " + st.nodeId;
  document.getElementById("facts").textContent = "cluster " + st.cluster + " · epoch " + st.epoch + " · " + st.partitions + " partitions · N=" + st.n + " · up " + Math.round(st.uptimeMs / 1000) + " s";
  const h = document.getElementById("health");
  h.textContent = st.health.ready ? "ready" : "not ready: " + st.health.reason;
  h.className = st.health.ready ? "up" : "warn";
  const body = document.querySelector("#members tbody");
  body.replaceChildren(...st.members.slice().sort((a, b) => a.nodeId.localeCompare(b.nodeId)).map((m) =>
    el("tr", { "data-node": m.nodeId }, el("td", {}, el("span", { class: "swatch", style: "background:" + color(m.nodeId) }), m.nodeId), el("td", { class: m.state }, m.state), el("td", { class: "num" }, text(m.partitions.length)))));
  renderRing(st);
}

function renderRing(st) {
  const q = st.partitions, size = 260, r = 110, c = size / 2, owner = new Array(q);
  for (const m of st.members) for (const p of m.partitions) owner[p] = m;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", size); svg.setAttribute("height", size); svg.setAttribute("viewBox", "0 0 " + size + " " + size);
  for (let p = 0; p < q; p++) {
    const a0 = (p / q) * 2 * Math.PI - Math.PI / 2, a1 = ((p + 1) / q) * 2 * Math.PI - Math.PI / 2;
    const path = document.createElementNS(ns, "path");
    const large = a1 - a0 > Math.PI ? 1 : 0;
    path.setAttribute("d", "M " + (c + r * Math.cos(a0)) + " " + (c + r * Math.sin(a0)) + " A " + r + " " + r + " 0 " + large + " 1 " + (c + r * Math.cos(a1)) + " " + (c + r * Math.sin(a1)));
    const m = owner[p];
    path.setAttribute("stroke", m ? color(m.nodeId) : "#444");
    path.setAttribute("stroke-width", m && m.state === "down" ? 8 : 22);
    path.setAttribute("fill", "none");
    path.setAttribute("class", "partition");
    const title = document.createElementNS(ns, "title");
    title.textContent = "partition " + p + ": " + (m ? m.nodeId + " (" + m.state + ")" : "no owner");
    path.append(title);
    svg.append(path);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", c); label.setAttribute("y", c + 5); label.setAttribute("text-anchor", "middle"); label.setAttribute("fill", "#7d8a96");
  label.textContent = q + " partitions";
  svg.append(label);
  document.getElementById("ring").replaceChildren(svg);
}

function quantile(buckets, q) {
  const sorted = buckets.slice().sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (total <= 0) return null;
  for (const b of sorted) if (b.count >= q * total) return b.le;
  return null;
}

function renderMetrics(m) {
  const ops = ["put", "get", "del", "status"];
  const totals = {}, errors = {}, buckets = {};
  for (const r of m.requests) { totals[r.op] = (totals[r.op] || 0) + r.count; if (r.outcome !== "ok") errors[r.op] = (errors[r.op] || 0) + r.count; }
  for (const b of m.buckets) { const le = b.le === "+Inf" ? Infinity : Number(b.le); const key = b.op + "|" + le; buckets[key] = (buckets[key] || 0) + b.count; }
  const rows = [];
  let rateSum = 0;
  for (const op of ops) {
    const dt = previous ? (m.now - previous.now) / 1000 : 0;
    const rate = previous && dt > 0 ? ((totals[op] || 0) - (previous.totals[op] || 0)) / dt : 0;
    rateSum += rate;
    const window = [];
    for (const [key, count] of Object.entries(buckets)) { const [o, le] = key.split("|"); if (o === op) window.push({ le: Number(le), count: count - (previous ? previous.buckets[key] || 0 : 0) }); }
    const p50 = quantile(window, 0.5), p99 = quantile(window, 0.99);
    const ms = (x) => x === null ? "–" : x === Infinity ? "> 30000" : "≤ " + (x * 1000).toFixed(x < 0.001 ? 1 : 0);
    rows.push(el("tr", { "data-op": op }, el("td", {}, op), el("td", { class: "num" }, rate.toFixed(1)), el("td", { class: "num" }, ms(p50)), el("td", { class: "num" }, ms(p99)), el("td", { class: "num" }, text(totals[op] || 0)), el("td", { class: "num" + (errors[op] ? " warn" : "") }, text(errors[op] || 0))));
  }
  document.querySelector("#requests tbody").replaceChildren(...rows);
  document.getElementById("inflight").textContent = m.inFlight + " request(s) in flight · " + m.actors.map((a) => a.count + " " + a.machine).join(", ");
  if (previous) { rates.push(rateSum); if (rates.length > sparkPoints) rates.shift(); }
  drawSpark();
  previous = { now: m.now, totals, buckets };
}

function drawSpark() {
  const cv = document.getElementById("spark"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  if (rates.length < 2) return;
  const max = Math.max(1, ...rates);
  g.strokeStyle = "#58a6ff"; g.lineWidth = 1.5; g.beginPath();
  rates.forEach((v, i) => { const x = (i / (sparkPoints - 1)) * cv.width, y = cv.height - 2 - (v / max) * (cv.height - 4); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
  g.fillStyle = "#7d8a96"; g.fillText(max.toFixed(0) + "/s", 2, 10);
}

function renderActors(snap) {
  const counts = {};
  for (const a of snap.actors) counts[a.machine] = (counts[a.machine] || 0) + 1;
  document.getElementById("actor-counts").textContent = Object.entries(counts).map(([k, v]) => v + " " + k).join(" · ") + (snap.omitted ? " · " + snap.omitted + " more not listed" : "");
  const row = (a, withMachine) => {
    const key = a.id, state = a.status === "active" ? a.state : a.state + " (" + a.status + ")";
    const changed = lastStates.has(key) && lastStates.get(key) !== state;
    lastStates.set(key, state);
    const cells = [el("td", {}, a.id)];
    if (withMachine) cells.push(el("td", {}, a.machine));
    cells.push(el("td", { class: changed ? "changed" : "" }, state), el("td", { class: "ctx", title: inline(a.context) }, inline(a.context)));
    return el("tr", { "data-actor": a.id }, ...cells);
  };
  const background = snap.actors.filter((a) => a.machine !== "replica" && a.machine !== "coordinator" && a.parent !== undefined);
  document.querySelector("#work tbody").replaceChildren(...background.map((a) => row(a, false)));
  document.querySelector("#actors tbody").replaceChildren(...snap.actors.slice(0, actorsShownMax).map((a) => row(a, true)));
}

async function poll() {
  try {
    const [st, m, snap] = await Promise.all(["/api/status", "/api/metrics", "/api/actors"].map((p) => fetch(p, { cache: "no-store" }).then((r) => r.json())));
    if (st.error) throw new Error(st.error);
    renderStatus(st); renderMetrics(m); renderActors(snap);
    document.getElementById("error").textContent = "";
    document.body.dataset.ready = "true";
  } catch (err) {
    document.getElementById("error").textContent = "cannot reach the node: " + err.message;
  }
  setTimeout(poll, pollMs);
}
poll();
</script>
</body>
</html>
`;
