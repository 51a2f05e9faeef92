// The dashboard's page logic: one EventSource on /events, each message the whole state; renders with
// textContent only (nothing from the stack is ever parsed as HTML). Read-only unless the server says
// `control` (then a halt button that POSTs /halt with the token header).
"use strict";
const $ = (id) => document.getElementById(id);
const GOOD = new Set(["READY", "RUNNING", "CLOSED"]);
const WARN = new Set(["CONNECTING", "STARTING", "DEGRADED", "HALF_OPEN", "BACKOFF"]);

function cls(state) {
  return GOOD.has(state) ? "ok" : WARN.has(state) ? "warn" : "bad";
}
function money(v) {
  if (v === null || v === undefined || v === "") return "";
  const n = Number(v);
  return isNaN(n) ? String(v) : n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function signCls(v) {
  const n = Number(v);
  return isNaN(n) || n === 0 ? "" : n > 0 ? "pos" : "neg";
}
function time(ns) {
  if (!ns) return "";
  return new Date(Number(ns) / 1e6).toISOString().slice(11, 19);
}
function table(el, columns, rows, empty) {
  // columns: [heading, key or function, numeric?]
  el.replaceChildren();
  const head = el.createTHead().insertRow();
  for (const [h, , num] of columns) {
    const th = document.createElement("th");
    th.textContent = h;
    if (num) th.className = "num";
    head.appendChild(th);
  }
  const body = el.createTBody();
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "note";
    td.textContent = empty;
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [, key, num, colour] of columns) {
      const td = tr.insertCell();
      const value = typeof key === "function" ? key(row) : row[key];
      td.textContent = value === undefined || value === null ? "" : String(value);
      td.className = (num ? "num " : "") + (colour ? signCls(colour(row)) : "");
    }
  }
}

function banner(s) {
  const id = s.identity;
  $("mode").textContent = id.mode.toUpperCase();
  $("mode").className = "pill " + id.mode;
  $("gateway").textContent = id.gateway + " " + id.endpoint;
  $("account").textContent = "account " + id.account;
  // the API's own read-only setting (IB_READONLY: no order can leave) and whether this page may halt
  $("readonly").textContent =
    (id.api_read_only ? "IB read-only: no orders" : "orders on") + " \u00b7 " +
    (id.read_only ? "view only" : "halt button on");
  document.title = `${id.mode.toUpperCase()} ${s.bridge.state} - ibstack`;
}

function bridge(s) {
  const b = s.bridge;
  $("bridge-state").textContent = b.state;
  $("bridge-state").className = "state " + cls(b.state);
  $("bridge-reason").textContent = b.reason || "";
  $("bridge-remedy").textContent = b.remedy ? "What to do: " + b.remedy : "";
}

function risk(s) {
  const r = s.risk;
  const halt = $("halt");
  if (!s.executor_answers) {
    halt.textContent = "executor not answering";
    halt.className = "state bad";
  } else if (r.halted) {
    halt.textContent = `HALTED: ${r.halt_reason || "no reason given"} (${r.halt_source || "?"}, since ${r.halted_since})`;
    halt.className = "state bad";
  } else {
    halt.textContent = "trading (not halted)";
    halt.className = "state ok";
  }
  const lines = [
    ["P&L today", money(r.daily_pnl) + (r.daily_loss_limit ? ` (loss limit ${money(r.daily_loss_limit)})` : "")],
    ["realized / unrealized", `${money(r.realized_today)} / ${money(r.unrealized)}`],
    ["commissions", money(r.commissions_today)],
    ["gross exposure", money(r.gross_exposure)],
    ["circuit breaker", r.circuit_breaker || ""],
    ["mismatched", Object.keys(r.mismatched || {}).join(", ") || "none"],
    ["last rejection", r.last_rejection || ""],
  ];
  const box = $("risk");
  box.replaceChildren();
  for (const [k, v] of lines) {
    if (!v) continue;
    const d = document.createElement("div");
    d.textContent = `${k}: ${v}`;
    box.appendChild(d);
  }
  $("halt-button").hidden = !s.control || !!r.halted;
}

function market(s) {
  const m = s.market;
  const box = $("market");
  box.replaceChildren();
  for (const [k, v] of [["session", m.session], ["market time", m.time], ["hours", m.hours], ["orders", m.orders_gate]]) {
    const d = document.createElement("div");
    d.textContent = `${k}: ${v || ""}`;
    box.appendChild(d);
  }
}

function equity(s) {
  const svg = $("equity");
  const pts = s.equity.points;
  svg.replaceChildren();
  $("equity-note").textContent = pts.length ? `${s.equity.day}: ${pts.length} points, last ${money(pts[pts.length - 1][1])}` : "no P&L yet today";
  if (pts.length < 2) return;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
  const X = (x) => (x1 === x0 ? 0 : ((x - x0) / (x1 - x0)) * 600);
  const Y = (y) => (y1 === y0 ? 80 : 155 - ((y - y0) / (y1 - y0)) * 150);
  const ns = "http://www.w3.org/2000/svg";
  const zero = document.createElementNS(ns, "line");
  for (const [k, v] of [["x1", 0], ["x2", 600], ["y1", Y(0)], ["y2", Y(0)], ["stroke", "#bbb"]]) zero.setAttribute(k, v);
  svg.appendChild(zero);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", ys[ys.length - 1] >= 0 ? "#1b7f3b" : "#b3261e");
  line.setAttribute("stroke-width", "2");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(line);
}

function render(s) {
  banner(s);
  bridge(s);
  risk(s);
  market(s);
  equity(s);
  const positionColumns = [
    ["symbol", "symbol"], ["qty", "quantity", true], ["avg cost", "avg_cost", true], ["mark", "mark", true],
    ["value", (r) => money(r.market_value), true],
    ["unrealized", (r) => money(r.unrealized), true, (r) => r.unrealized],
    ["realized", (r) => money(r.realized), true, (r) => r.realized],
    ["broker qty", "broker_quantity", true],
  ];
  // protective stops: shown as soon as the executor's positions carry a `stops` field
  if (s.positions.some((p) => p.stops !== undefined)) {
    positionColumns.push(["stops", (r) => (Array.isArray(r.stops) ? r.stops.map((x) => x.price ?? x).join(", ") : r.stops ?? "none")]);
  }
  table($("positions"), positionColumns, s.positions, "no positions");
  table($("orders"), [
    ["id", "client_order_id"], ["symbol", "symbol"], ["side", "side"], ["qty", "quantity", true], ["type", "type"],
    ["limit", "limit", true], ["status", "status"], ["filled", "filled", true], ["created", "created"], ["why", "why"],
  ], s.orders, "no working orders");
  table($("fills"), [
    ["time", (r) => time(r.time_ns)], ["symbol", "symbol"], ["side", "side"], ["qty", "quantity", true],
    ["price", "price", true], ["commission", "commission", true], ["order", "client_order_id"], ["exec id", "exec_id"],
  ], s.fills, "no fills today");
  table($("programs"), [
    ["program", "name"], ["supervisord", "state"], ["reports", "reported"],
    ["heartbeat", (r) => (r.heartbeat_age_s === null ? (r.heartbeat_note || "never") : `${r.heartbeat_age_s}s ago`), true],
  ], s.programs, s.supervisord_up ? "no programs" : "supervisord not answering");
  table($("alerts"), [
    ["time", (r) => time(r.ts_ns)], ["severity", "severity"], ["title", "title"], ["outcome", "outcome"],
  ], s.alerts, "no alerts");
}

let source = null;
function connect() {
  source = new EventSource("/events");
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "pill conn"; };
  source.onmessage = (e) => {
    const s = JSON.parse(e.data);
    render(s);
    $("conn").textContent = "live " + new Date(s.at_ns / 1e6).toISOString().slice(11, 19);
  };
  source.onerror = () => { $("conn").textContent = "monitor unreachable: retrying"; $("conn").className = "pill conn down"; };
}

$("halt-button").addEventListener("click", async () => {
  if (!confirm("Halt trading now? (cancels working orders; `bin/trader resume` lifts it)")) return;
  const answer = $("halt-answer");
  try {
    const { token } = await (await fetch("/control", { credentials: "same-origin" })).json();
    const r = await fetch("/halt", { method: "POST", headers: { "X-Dashboard-Token": token }, credentials: "same-origin" });
    const body = await r.json();
    answer.textContent = body.ok ? "halted" : "refused: " + (body.error || r.status);
  } catch (err) {
    answer.textContent = "halt failed: " + err;
  }
});

connect();
