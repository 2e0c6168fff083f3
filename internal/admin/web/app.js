// Sluice dashboard: polls the admin API every second and draws what it
// gets. Plain JavaScript, no build step; charts are drawn on <canvas>.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

const state = {
  selected: decodeURIComponent(location.hash.slice(1)) || "",
  list: [],
  detail: null,
  propsShown: "", // JSON of the properties the editor was built from
  propsDirty: false,
  token: sessionStorage.getItem("sluice-token") || "",
};

// ---------- API ----------

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, retried) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await resp.json();
  } catch (_) {
    data = null;
  }
  if (resp.status === 401 && !retried) {
    if (await askToken()) return api(method, path, body, true);
  }
  if (!resp.ok) {
    throw new APIError(resp.status, (data && data.error) || resp.status + " " + resp.statusText);
  }
  return data;
}

const pipelinePath = (name) => "/v1/pipelines/" + encodeURIComponent(name);

// ---------- formatting ----------

const intFmt = new Intl.NumberFormat("en-US");
const fmtInt = (n) => intFmt.format(Math.round(n || 0));

function fmtRate(n) {
  n = n || 0;
  if (n < 10) return n.toFixed(n === 0 ? 0 : 1);
  if (n < 1000) return n.toFixed(0);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 2 : 1) + "k";
  return (n / 1e6).toFixed(2) + "M";
}

function fmtCompact(n) {
  n = n || 0;
  if (Math.abs(n) < 1000) return String(Math.round(n * 10) / 10);
  if (Math.abs(n) < 1e6) return (n / 1e3).toFixed(Math.abs(n) < 1e4 ? 1 : 0) + "k";
  return (n / 1e6).toFixed(1) + "M";
}

function fmtSeconds(s) {
  s = s || 0;
  if (s < 60) return (s < 10 ? s.toFixed(1) : s.toFixed(0)) + " s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.round(s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function fmtBytes(n) {
  n = n || 0;
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function fmtNs(ns) {
  ns = ns || 0;
  if (ns < 1e6) return (ns / 1e3).toFixed(0) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms";
  return (ns / 1e9).toFixed(2) + " s";
}

function fmtTime(t) {
  const d = typeof t === "number" ? new Date(t) : new Date(t);
  if (isNaN(d)) return String(t);
  return d.toLocaleTimeString([], { hour12: false });
}

// fmtElapsed is the time since iso ("42s", "3m 5s"), "" when unknown.
function fmtElapsed(iso) {
  const d = new Date(iso);
  if (isNaN(d) || d.getFullYear() < 2000) return "";
  const s = Math.max(0, Math.round((Date.now() - d) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function fmtAgo(iso) {
  const e = fmtElapsed(iso);
  return e && "up " + e;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setText(id, text) {
  const e = $(id);
  if (e.textContent !== text) e.textContent = text;
}

let toastTimer = 0;
function toast(msg, bad) {
  const t = $("toast");
  t.textContent = msg;
  t.className = "show" + (bad ? " bad" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.className = bad ? "bad" : ""), bad ? 6000 : 2500);
}

// ---------- token ----------

function askToken() {
  const dlg = $("token-dialog");
  $("token-input").value = state.token;
  return new Promise((resolve) => {
    const done = (ok) => {
      $("token-form").removeEventListener("submit", onSubmit);
      $("token-cancel").removeEventListener("click", onCancel);
      dlg.close();
      resolve(ok);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      state.token = $("token-input").value.trim();
      sessionStorage.setItem("sluice-token", state.token);
      done(state.token !== "");
    };
    const onCancel = () => done(false);
    $("token-form").addEventListener("submit", onSubmit);
    $("token-cancel").addEventListener("click", onCancel);
    dlg.showModal();
    $("token-input").focus();
  });
}

// ---------- charts ----------

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function niceStep(range, ticks) {
  const raw = range / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  return step * mag;
}

// drawChart draws lines over time. lines: [{values, color, fill}], times
// in Unix ms, one per value.
function drawChart(canvas, times, lines) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight || 200;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pad = { l: 52, r: 10, t: 10, b: 24 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const ink = cssVar("--muted");
  const grid = cssVar("--line");
  ctx.font = "11px system-ui, sans-serif";

  let maxV = 0;
  for (const l of lines) for (const v of l.values) maxV = Math.max(maxV, v);
  if (maxV <= 0) maxV = 1;
  const step = niceStep(maxV, 4);
  const top = Math.ceil(maxV / step) * step;

  // Y grid and labels.
  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = pad.t + ph - (v / top) * ph;
    ctx.beginPath();
    ctx.moveTo(pad.l, Math.round(y) + 0.5);
    ctx.lineTo(pad.l + pw, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(fmtCompact(v), pad.l - 8, y);
  }

  // The time axis grows with the data, from 30 seconds up to the five
  // minutes the server keeps.
  const now = times.length ? times[times.length - 1] : Date.now();
  const have = times.length ? now - times[0] : 0;
  const span = Math.min(5 * 60e3, Math.max(30e3, have));
  const t0 = now - span;
  const x = (t) => pad.l + ((t - t0) / span) * pw;

  // X labels: "now" at the right, then back in round steps.
  const tick = [5e3, 10e3, 15e3, 30e3, 60e3].find((s) => span / s <= 6) || 60e3;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let back = 0; back <= span + 1; back += tick) {
    const label = back === 0 ? "now" : back % 60e3 === 0 ? "-" + back / 60e3 + "m" : "-" + back / 1e3 + "s";
    const px = x(now - back);
    if (px < pad.l + 12 && back !== 0) break;
    ctx.fillText(label, Math.min(px, pad.l + pw - 12), pad.t + ph + 6);
  }

  if (times.length < 2) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("collecting samples…", pad.l + pw / 2, pad.t + ph / 2);
    return;
  }

  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.l, pad.t, pw, ph);
  ctx.clip();
  for (const l of lines) {
    const color = cssVar(l.color);
    const pts = [];
    for (let i = 0; i < times.length; i++) {
      if (times[i] < t0 - 1000) continue;
      pts.push([x(times[i]), pad.t + ph - (l.values[i] / top) * ph]);
    }
    if (pts.length < 2) continue;
    if (l.fill) {
      ctx.beginPath();
      ctx.moveTo(pts[0][0], pad.t + ph);
      for (const [px, py] of pts) ctx.lineTo(px, py);
      ctx.lineTo(pts[pts.length - 1][0], pad.t + ph);
      ctx.closePath();
      ctx.globalAlpha = 0.12;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    ctx.beginPath();
    ctx.lineJoin = "round";
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    ctx.setLineDash(l.dash || []);
    pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.restore();
}

function drawCharts() {
  const d = state.detail;
  if (!d) return;
  const s = d.series || [];
  const times = s.map((p) => p.t);
  drawChart($("chart-throughput"), times, [
    { values: s.map((p) => p.in), color: "--in", fill: true },
    { values: s.map((p) => p.out), color: "--out", fill: false },
  ]);
  drawChart($("chart-lag"), times, [
    { values: s.map((p) => p.lag), color: "--lag", fill: true },
    // Dashed: when the consumer keeps up, lag and in flight are close,
    // and a solid line would hide the other.
    { values: s.map((p) => p.in_flight), color: "--inflight", fill: false, dash: [6, 4] },
  ]);
}

// ---------- rendering ----------

// shownState is the pipeline's state, "degraded" for one that runs but
// retries something or cannot reach its source (as `sluice status` says).
function shownState(p) {
  return p.state === "running" && p.degraded ? "degraded" : p.state;
}

function renderList() {
  const ul = $("pipeline-list");
  const items = state.list.map((p) =>
    el(
      "li",
      {
        class: p.name === state.selected ? "active" : "",
        "data-name": p.name,
        onclick: () => select(p.name),
      },
      el("div", { class: "row1" }, el("span", { class: "sdot state-" + shownState(p) }), el("span", { class: "pname", text: p.name })),
      el("div", { class: "row2", text: shownState(p) + " · " + fmtRate(p.records_out_per_sec) + "/s out · lag " + fmtCompact(p.lag) }),
    ),
  );
  ul.replaceChildren(...items);
}

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  $("detail").hidden = false;
  $("empty").hidden = true;
  setText("p-name", d.name);
  const badge = $("p-state");
  badge.textContent = shownState(d);
  badge.className = "badge state-" + shownState(d);
  setText("p-since", fmtAgo(d.since));
  const err = $("p-error");
  err.hidden = !d.error;
  err.textContent = d.error || "";
  // The source's brokers: down or cut off looks like an idle topic
  // otherwise.
  const src = $("p-source");
  const sick = d.source && d.source.state !== "healthy" && d.state !== "failed" && d.state !== "stopped";
  src.hidden = !sick;
  src.textContent = sick
    ? "source " + d.source.state + " for " + fmtElapsed(d.source.since) + " (" + fmtInt(d.source.errors) + " errors): " + (d.source.last_error || "")
    : "";

  const paused = d.state === "paused";
  $("btn-pause").hidden = paused;
  $("btn-resume").hidden = !paused;
  $("btn-merge").hidden = !d.merge;

  const inRate = $("kpi-in-rate");
  inRate.dataset.value = String(d.records_in_per_sec || 0);
  setText("kpi-in-rate", fmtRate(d.records_in_per_sec));
  const outRate = $("kpi-out-rate");
  outRate.dataset.value = String(d.records_out_per_sec || 0);
  setText("kpi-out-rate", fmtRate(d.records_out_per_sec));
  setText("kpi-lag", fmtInt(d.lag));
  setText("kpi-lag-age", fmtSeconds(d.lag_seconds));
  setText("kpi-freshness", d.freshness_seconds == null ? "–" : fmtSeconds(d.freshness_seconds));
  setText("kpi-inflight", fmtInt(d.in_flight_records));
  setText("kpi-in", fmtInt(d.records_in));
  setText("kpi-out", fmtInt(d.records_out));
  setText("kpi-batches", fmtInt(d.batches));
  setText("kpi-filtered", fmtInt(d.filtered));
  setText("kpi-dlq", fmtInt(d.dead_lettered));
  setText("kpi-skipped", fmtInt(d.skipped));
  setText("kpi-errors", fmtInt(d.errors) + " / " + fmtInt(d.retries));

  renderConsumers(d);
  renderBatches(d);
  renderMerges(d);
  renderTransforms(d);
  renderProps(d);
  const cfg = d.config ? JSON.stringify(d.config, null, 2) : d.config_hidden || "";
  if ($("config").textContent !== cfg) $("config").textContent = cfg;
  drawCharts();
}

let consumersShown = "";
function renderConsumers(d) {
  const key = JSON.stringify(d.consumers);
  if (key === consumersShown) return;
  consumersShown = key;
  const n = d.consumers.length;
  setText("consumer-count", n + (n === 1 ? " consumer" : " consumers"));
  const rows = d.consumers.map((c) => {
    const parts = (c.assigned || []).map((a) => a.Topic + " [" + (a.Partitions || []).join(", ") + "]").join("; ") || "none yet";
    let lag = 0;
    for (const t of Object.values(c.lag || {})) for (const v of Object.values(t)) lag += v;
    return el(
      "tr",
      {},
      el("td", { class: "mono", text: c.id }),
      el("td", { class: "mono", text: parts }),
      el("td", { class: "num", text: fmtInt(lag) }),
      el(
        "td",
        { class: "num" },
        el("button", {
          class: "small danger remove-consumer",
          type: "button",
          "data-id": c.id,
          disabled: n <= 1,
          title: n <= 1 ? "The last consumer cannot be removed; pause instead" : "Stop this consumer: it finishes its batches, commits and leaves the group",
          text: "Remove",
          onclick: (ev) => removeConsumer(c.id, ev.currentTarget),
        }),
      ),
    );
  });
  if (!rows.length) rows.push(el("tr", { class: "empty-row" }, el("td", { colspan: 4, text: "no consumers" })));
  $("consumers").replaceChildren(...rows);
}

function renderBatches(d) {
  const rows = (d.recent_batches || [])
    .slice()
    .reverse()
    .map((b) =>
      el(
        "tr",
        {},
        el("td", { text: fmtTime(b.started) }),
        el("td", { class: "num", text: fmtInt(b.records) }),
        el("td", { class: "num", text: fmtBytes(b.bytes) }),
        el("td", { class: "num", text: fmtNs(b.took_ns) }),
        el("td", { class: "num", text: fmtNs(b.lingered_ns) }),
        el("td", {}, el("span", { class: "trigger", text: b.trigger || "—" })),
      ),
    );
  if (!rows.length) rows.push(el("tr", { class: "empty-row" }, el("td", { colspan: 6, text: "no batches written yet" })));
  $("batches").replaceChildren(...rows);
}

// renderTransforms shows the transforms' steps, what passed them, and
// what each routed sink made durable.
function renderTransforms(d) {
  const steps = d.transforms || [];
  const routes = d.routes || [];
  $("transforms-card").hidden = !steps.length && !routes.length;
  $("transforms-steps").replaceChildren(...steps.map((s) => el("li", { text: s })));
  setText("transforms-flow", "in " + fmtInt(d.records_in) + " · filtered " + fmtInt(d.filtered) + " · out " + fmtInt(d.records_out));
  $("routes-table").hidden = !routes.length;
  $("routes").replaceChildren(
    ...routes.map((r) =>
      el("tr", {}, el("td", { text: r.sink + (r.default ? " (default)" : "") }), el("td", { class: "num", text: fmtInt(r.out) })),
    ),
  );
}

// renderMerges shows the sink's recent merges (connector.MergeInfo),
// newest first; failed attempts show their error.
function renderMerges(d) {
  const card = $("merge-card");
  card.hidden = !d.merge;
  if (!d.merge) return;
  const cols = ["Started", "Trigger", "Records", "Batch", "Took", "Paused", "End to end", "Attempt", "Result"];
  $("merges-head").replaceChildren(
    el("tr", {}, ...cols.map((c) => el("th", { class: ["Records", "Batch", "Took", "Paused", "End to end", "Attempt"].includes(c) ? "num" : "", text: c }))),
  );
  const rows = (d.merge.history || [])
    .slice()
    .reverse()
    .map((m) =>
      el(
        "tr",
        {},
        el("td", { text: fmtTime(m.started) }),
        el("td", {}, el("span", { class: "trigger", text: m.trigger || "—" })),
        el("td", { class: "num", text: fmtInt(m.records) }),
        el("td", { class: "num", text: fmtInt(m.batch) }),
        el("td", { class: "num", text: fmtNs(m.took_ns) }),
        el("td", { class: "num", text: m.paused_ns ? fmtNs(m.paused_ns) : "—" }),
        el("td", { class: "num", text: m.end_to_end_ns ? fmtNs(m.end_to_end_ns) : "—" }),
        el("td", { class: "num", text: fmtInt(m.attempt) }),
        el("td", { class: m.error ? "bad mono" : "", text: m.error || "ok" }),
      ),
    );
  if (!rows.length) rows.push(el("tr", { class: "empty-row" }, el("td", { colspan: cols.length, text: "no merges yet" })));
  $("merges").replaceChildren(...rows);
}

// ---------- property editor ----------

function renderProps(d, force) {
  setText("maxpoll", d.properties ? "max records per poll in use: " + fmtInt(d.max_poll_records) : "");
  const key = JSON.stringify(d.properties || null);
  if (!force && (state.propsDirty || key === state.propsShown)) return;
  state.propsShown = key;
  state.propsDirty = false;
  const box = $("props-editor");
  if (!d.properties) {
    box.replaceChildren(el("p", { class: "muted", text: "This source has no properties that can be changed at run time." }));
    return;
  }
  const names = Object.keys(d.properties).sort();
  const markDirty = () => (state.propsDirty = true);
  const rows = names.map((name) => {
    const orig = String(d.properties[name]);
    const input = el("input", { value: orig, "data-name": name, "data-orig": orig, "aria-label": name, spellcheck: "false" });
    input.addEventListener("input", () => {
      input.classList.toggle("changed", input.value !== orig);
      markDirty();
    });
    const tr = el(
      "tr",
      { "data-name": name },
      el("td", { class: "prop-name", text: name }),
      el("td", {}, input),
      el("td", { class: "num" }),
    );
    tr.lastChild.append(
      el("button", {
        class: "small ghost",
        type: "button",
        title: "Remove (back to the default)",
        text: "×",
        onclick: () => {
          tr.dataset.removed = "1";
          tr.hidden = true;
          markDirty();
        },
      }),
    );
    return tr;
  });
  const list = el("datalist", { id: "known-props" }, ...(d.known_properties || []).filter((n) => !names.includes(n)).map((n) => el("option", { value: n })));
  const newName = el("input", { id: "prop-new-name", list: "known-props", placeholder: "add a property…", spellcheck: "false", oninput: markDirty });
  const newValue = el("input", { id: "prop-new-value", placeholder: "value", spellcheck: "false", oninput: markDirty });
  rows.push(el("tr", {}, el("td", {}, newName), el("td", {}, newValue), el("td", {})));
  const msg = el("span", { class: "editor-msg", id: "props-msg" });
  const apply = el("button", { class: "primary", type: "button", id: "btn-apply-props", text: "Apply live", onclick: () => applyProps(apply) });
  const reset = el("button", {
    type: "button",
    text: "Discard",
    onclick: () => renderProps(state.detail, true),
  });
  box.replaceChildren(
    el("table", { class: "grid" }, el("thead", {}, el("tr", {}, el("th", { text: "Property" }), el("th", { text: "Value" }), el("th", {}))), el("tbody", {}, ...rows)),
    list,
    el("div", { class: "editor-actions" }, apply, reset, msg),
    el("p", { class: "muted", text: "Applying restarts the consumers one at a time: each finishes and commits what it read, then rejoins with the new settings." }),
  );
}

function propValue(s) {
  s = s.trim();
  if (s === "") return null;
  return /^-?\d+$/.test(s) ? Number(s) : s;
}

async function applyProps(button) {
  const changes = {};
  for (const input of $("props-editor").querySelectorAll("input[data-name]")) {
    const tr = input.closest("tr");
    if (tr.dataset.removed) changes[input.dataset.name] = null;
    else if (input.value !== input.dataset.orig) changes[input.dataset.name] = propValue(input.value);
  }
  const nn = $("prop-new-name").value.trim();
  if (nn) changes[nn] = propValue($("prop-new-value").value);
  const msg = $("props-msg");
  if (!Object.keys(changes).length) {
    msg.className = "editor-msg";
    msg.textContent = "nothing changed";
    return;
  }
  button.disabled = true;
  msg.className = "editor-msg";
  msg.textContent = "restarting consumers…";
  try {
    await api("PATCH", pipelinePath(state.selected) + "/properties", changes);
    state.propsDirty = false;
    await refresh();
    renderProps(state.detail, true);
    $("props-msg").className = "editor-msg ok";
    $("props-msg").textContent = "applied";
  } catch (e) {
    msg.className = "editor-msg bad";
    msg.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---------- actions ----------

async function action(button, method, suffix, body, done) {
  button.disabled = true;
  try {
    const r = await api(method, pipelinePath(state.selected) + suffix, body);
    if (done) toast(done(r));
    await refresh();
  } catch (e) {
    toast(e.message, true);
  } finally {
    button.disabled = false;
  }
}

function removeConsumer(id, button) {
  action(button, "DELETE", "/consumers/" + encodeURIComponent(id), undefined, () => "consumer " + id + " removed");
}

function select(name) {
  if (name === state.selected) return;
  state.selected = name;
  state.detail = null;
  state.propsShown = "";
  state.propsDirty = false;
  consumersShown = "";
  history.replaceState(null, "", "#" + encodeURIComponent(name));
  renderList();
  refresh();
}

// ---------- polling ----------

let refreshing = null;
function refresh() {
  if (!refreshing) refreshing = load().finally(() => (refreshing = null));
  return refreshing;
}

async function load() {
  const conn = $("conn");
  try {
    const list = await api("GET", "/v1/pipelines");
    state.list = list.pipelines || [];
    // The token control is only offered when the server asks for one
    // (or a mutating call was refused with 401, which opens the dialog).
    $("btn-token").hidden = !list.token_required;
    if (!state.list.some((p) => p.name === state.selected)) {
      state.selected = state.list.length ? state.list[0].name : "";
    }
    renderList();
    if (!state.selected) {
      $("detail").hidden = true;
      $("empty").hidden = false;
      setText("empty-text", "No pipelines are running in this process.");
    } else {
      state.detail = await api("GET", pipelinePath(state.selected));
      renderDetail();
    }
    conn.className = "conn ok";
    setText("conn-text", "live · " + fmtTime(Date.now()));
  } catch (e) {
    conn.className = "conn bad";
    setText("conn-text", "disconnected: " + e.message);
  }
}

// loadVersion fills the footer with the server's build, once.
async function loadVersion() {
  try {
    const v = await api("GET", "/v1/version");
    let text = "sluice " + v.version;
    if (v.revision && !v.version.includes(v.revision.slice(0, 12))) text += " (" + v.revision.slice(0, 12) + (v.modified ? ", modified" : "") + ")";
    setText("version", text);
    $("version").title = [v.time && "committed " + v.time, v.go_version, v.platform].filter(Boolean).join(" · ");
  } catch (_) {
    // An older server without /v1/version: the footer stays generic.
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("btn-pause").addEventListener("click", (ev) => action(ev.currentTarget, "POST", "/pause", undefined, () => "paused: consumers stop reading; what was read is still written"));
  $("btn-resume").addEventListener("click", (ev) => action(ev.currentTarget, "POST", "/resume", undefined, () => "resumed"));
  $("btn-merge").addEventListener("click", (ev) => action(ev.currentTarget, "POST", "/merge", undefined, (r) => "merged in " + fmtNs(r.took_ns)));
  $("btn-add-consumer").addEventListener("click", (ev) => action(ev.currentTarget, "POST", "/consumers", {}, (r) => "consumer " + r.id + " added; the group rebalances"));
  $("btn-token").addEventListener("click", () => askToken());
  window.addEventListener("resize", drawCharts);
  loadVersion();
  loop();
});
