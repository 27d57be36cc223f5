// Local trace viewer. Every element is built with createElement/textContent: data from traces
// never goes through innerHTML, so a prompt containing markup is shown as text.
"use strict";

const main = () => document.getElementById("main");

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
  return body;
}

const fmtCost = (c, est) => c === null || c === undefined ? "–" : "$" + (c < 0.01 ? c.toFixed(6) : c.toFixed(4)) + (est ? "*" : "");
const fmtSec = (s) => s === null || s === undefined ? "–" : s < 1 ? Math.round(s * 1000) + " ms" : s < 10 ? s.toFixed(2) + " s" : s.toFixed(1) + " s";
const fmtTime = (t) => t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
const fmtNum = (n) => n ? n.toLocaleString("en-US") : "0";

function scoreText(s) {
  const v = s.stringValue !== undefined && s.stringValue !== null ? s.stringValue : s.value;
  return s.name + "=" + (typeof v === "number" ? +v.toFixed(3) : v);
}

// ---------- routing ----------
let current = { view: null, refresh: null };
// Every navigation gets a new number; a view whose data arrives after the user moved on
// (its number is no longer current) drops it instead of rendering over the new view.
let routeSeq = 0;
const stale = (seq) => seq !== routeSeq;

function route() {
  routeSeq += 1;
  const hash = location.hash || "#/traces";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  document.querySelectorAll("[data-nav]").forEach((a) =>
    a.classList.toggle("active", a.dataset.nav === (parts[0] === "trace" ? "traces" : parts[0] === "session" ? "sessions" : parts[0])));
  current.refresh = null;
  if (parts[0] === "trace" && parts[1]) return traceView(parts[1], params.get("obs"));
  if (parts[0] === "sessions") return sessionsView();
  if (parts[0] === "session" && parts[1]) return sessionView(parts[1]);
  if (parts[0] === "users") return usersView();
  return tracesView(params);
}

function render(...nodes) {
  main().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function failed(e) {
  render(h("p", { class: "error", role: "alert" }, "Error: " + e.message));
}

// ---------- traces list ----------
const FILTERS = [
  ["name", "Name"], ["user", "User"], ["session", "Session"], ["tag", "Tag"],
  ["since", "Since", "2h, 7d, 2026-01-01"], ["until", "Until"], ["score", "Score", "relevance>=0.8"],
];

async function tracesView(params) {
  const sort = params.get("sort") || "time";
  const order = params.get("order") || "desc";
  const limit = +(params.get("limit") || 50);
  const offset = +(params.get("offset") || 0);
  const go = (changes) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v === "" || v === null) p.delete(k); else p.set(k, v); }
    location.hash = "#/traces?" + p.toString();
  };

  const form = h("form", { class: "filters", role: "search", "aria-label": "Trace filters" });
  for (const [key, label, placeholder] of FILTERS) {
    form.append(h("label", {}, label, h("input", { name: key, value: params.get(key) || "", placeholder: placeholder || "", "data-filter": key })));
  }
  const level = h("select", { name: "level", "data-filter": "level" },
    ["", "DEBUG", "DEFAULT", "WARNING", "ERROR"].map((l) => h("option", { value: l, selected: (params.get("level") || "") === l }, l || "any")));
  form.append(h("label", {}, "Level ≥", level));
  form.append(h("button", { type: "submit", class: "primary" }, "Filter"));
  form.append(h("button", { type: "button", onclick: () => { location.hash = "#/traces"; } }, "Clear"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const changes = { offset: "" };
    for (const el of form.querySelectorAll("[data-filter]")) changes[el.name] = el.value.trim();
    go(changes);
  });

  const sortButton = (key, label) => h("button", {
    type: "button", class: sort === key ? "sorted" : "", "aria-label": "Sort by " + label,
    onclick: () => go({ sort: key, order: sort === key && order === "desc" ? "asc" : "desc", offset: "" }),
  }, label + (sort === key ? (order === "desc" ? " ↓" : " ↑") : ""));

  const tbody = h("tbody");
  const table = h("table", { id: "traces", "aria-label": "Traces" },
    h("thead", {}, h("tr", {},
      h("th", {}, sortButton("time", "Time")), h("th", {}, "Name"), h("th", {}, "User"), h("th", {}, "Session"),
      h("th", {}, "Tags"), h("th", { class: "num" }, sortButton("latency", "Latency")),
      h("th", { class: "num" }, "Tokens"), h("th", { class: "num" }, sortButton("cost", "Cost")),
      h("th", { class: "num" }, sortButton("errors", "Errors")), h("th", {}, "Scores"))),
    tbody);
  const pager = h("div", { class: "pager" });
  render(h("h1", {}, "Traces"), form, table, pager,
    h("p", { class: "keys" }, "Keys: / filter · ↑↓ move · Enter open · Esc back · * estimated cost (bundled price table)"));

  const load = async () => {
    const q = new URLSearchParams(params);
    q.set("sort", sort); q.set("order", order); q.set("limit", limit); q.set("offset", offset);
    const seq = routeSeq;
    let page;
    try { page = await api("/api/traces?" + q.toString()); } catch (e) { return stale(seq) || failed(e); }
    if (stale(seq)) return;
    tbody.replaceChildren(...page.traces.map((t) => {
      const open = () => { location.hash = "#/trace/" + encodeURIComponent(t.id); };
      return h("tr", { tabindex: 0, "data-id": t.id, onclick: open, onkeydown: (ev) => { if (ev.key === "Enter") open(); } },
        h("td", { class: "mono" }, fmtTime(t.timestamp)),
        h("td", { title: t.id }, t.name || "(unnamed)"),
        h("td", {}, t.userId || ""), h("td", {}, t.sessionId || ""),
        h("td", {}, t.tags.map((g) => h("span", { class: "tag" }, g))),
        h("td", { class: "num" }, fmtSec(t.latency)),
        h("td", { class: "num" }, fmtNum(t.totalTokens)),
        h("td", { class: "num", title: t.costEstimated ? "estimated from the bundled price table" : "" }, fmtCost(t.totalCost, t.costEstimated)),
        h("td", { class: "num " + (t.errorCount ? "lvl-ERROR" : "") }, String(t.errorCount)),
        h("td", {}, (t.scores || []).map(scoreText).join(" ")));
    }));
    if (!page.traces.length) tbody.append(h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No traces match.")));
    const last = offset + page.traces.length;
    pager.replaceChildren(
      h("button", { type: "button", disabled: offset === 0, onclick: () => go({ offset: Math.max(0, offset - limit) }) }, "‹ Prev"),
      h("span", { class: "muted", id: "page-info" }, page.total ? `${offset + 1}–${last} of ${fmtNum(page.total)}${page.totalCapped ? "+" : ""}` : "0 traces"),
      h("button", { type: "button", disabled: last >= page.total && !page.totalCapped, onclick: () => go({ offset: offset + limit }) }, "Next ›"));
  };
  current.refresh = load;
  await load();
}

// ---------- chat rendering ----------
function tryParse(v) {
  if (typeof v !== "string") return v;
  const s = v.trim();
  if ((s.startsWith("{") && s.endsWith("}")) || (s.startsWith("[") && s.endsWith("]"))) {
    try { return JSON.parse(s); } catch (_) { return v; }
  }
  return v;
}

function asMessages(value) {
  const v = tryParse(value);
  if (Array.isArray(v) && v.length && v.every((m) => m && typeof m === "object" && ("role" in m))) return v;
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if (Array.isArray(v.messages) && v.messages.every((m) => m && typeof m === "object" && "role" in m)) return v.messages;
    if ("role" in v && ("content" in v || "tool_calls" in v || "parts" in v)) return [v];
    if (Array.isArray(v.choices)) return v.choices.map((c) => c.message).filter(Boolean);
  }
  return null;
}

function textOf(x) {
  if (x === null || x === undefined) return "";
  if (typeof x === "string") return x;
  return JSON.stringify(x, null, 2);
}

function toolCall(name, args, id) {
  const a = tryParse(args);
  return h("div", { class: "toolcall" },
    h("div", { class: "fn" }, "→ " + (name || "tool") + (id ? "  (" + id + ")" : "")),
    h("pre", { class: "json" }, textOf(a)));
}

function contentNodes(content) {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return [h("div", { class: "content" }, content)];
  if (Array.isArray(content)) {
    return content.flatMap((part) => {
      if (typeof part === "string") return [h("div", { class: "content" }, part)];
      if (!part || typeof part !== "object") return [h("div", { class: "content" }, String(part))];
      const t = part.type;
      if (t === "text" || t === "input_text" || t === "output_text") return [h("div", { class: "content" }, textOf(part.text !== undefined ? part.text : part.content))];
      if (t === "tool_use" || t === "tool_call" || t === "function_call") return [toolCall(part.name, part.input !== undefined ? part.input : part.arguments, part.id)];
      if (t === "tool_result" || t === "tool_call_response" || t === "function_call_output")
        return [h("div", { class: "toolcall" }, h("div", { class: "fn" }, "← result" + (part.tool_use_id || part.id || part.call_id ? " (" + (part.tool_use_id || part.id || part.call_id) + ")" : "")),
          h("pre", { class: "json" }, textOf(tryParse(part.content !== undefined ? part.content : part.response !== undefined ? part.response : part.output))))];
      return [h("pre", { class: "json" }, textOf(part))];
    });
  }
  return [h("pre", { class: "json" }, textOf(content))];
}

function messageNode(m) {
  const role = String(m.role || "message");
  const nodes = contentNodes(m.parts !== undefined ? m.parts : m.content);
  for (const tc of m.tool_calls || []) {
    const fn = tc.function || tc;
    nodes.push(toolCall(fn.name, fn.arguments, tc.id));
  }
  if (m.function_call) nodes.push(toolCall(m.function_call.name, m.function_call.arguments));
  const label = role + (m.name ? " · " + m.name : "") + (m.tool_call_id ? " · " + m.tool_call_id : "");
  return h("div", { class: "msg role-" + role.replace(/[^a-z]/gi, "") }, h("div", { class: "role" }, label), nodes);
}

function ioBlock(title, value) {
  if (value === null || value === undefined) return null;
  const messages = asMessages(value);
  const raw = h("pre", { class: "json" }, textOf(tryParse(value)));
  if (!messages) {
    const parsed = tryParse(value);
    const body = typeof parsed === "string" ? h("div", { class: "msg" }, h("div", { class: "content" }, parsed)) : raw;
    return h("section", { "aria-label": title }, h("h2", {}, title), body);
  }
  const chat = h("div", { class: "msgs" }, messages.map(messageNode));
  const rawBox = h("div", { hidden: true }, raw);
  const chatTab = h("button", { type: "button", role: "tab", "aria-selected": "true" }, "Messages");
  const rawTab = h("button", { type: "button", role: "tab", "aria-selected": "false" }, "JSON");
  const pick = (showChat) => {
    chat.hidden = !showChat; rawBox.hidden = showChat;
    chatTab.setAttribute("aria-selected", String(showChat)); rawTab.setAttribute("aria-selected", String(!showChat));
  };
  chatTab.addEventListener("click", () => pick(true));
  rawTab.addEventListener("click", () => pick(false));
  return h("section", { "aria-label": title }, h("h2", {}, title), h("div", { class: "tabs", role: "tablist" }, chatTab, rawTab), chat, rawBox);
}

function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(h("dt", {}, k), h("dd", {}, v instanceof Node ? v : String(v)));
  }
  return dl;
}

function jsonDetails(title, value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) return null;
  return h("details", {}, h("summary", {}, title), h("pre", { class: "json" }, textOf(value)));
}

// ---------- trace page ----------
async function traceView(id, selectedObs) {
  const seq = routeSeq;
  let t;
  try { t = await api("/api/traces/" + encodeURIComponent(id)); } catch (e) { return stale(seq) || failed(e); }
  if (stale(seq)) return;
  const obs = t.observations;
  const byId = new Map(obs.map((o) => [o.id, o]));
  const kids = new Map();
  const roots = [];
  for (const o of obs) {
    const p = o.parentObservationId && byId.has(o.parentObservationId) ? o.parentObservationId : null;
    if (p) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(o); } else roots.push(o);
  }
  const ms = (s) => s ? Date.parse(s) : null;
  const starts = obs.map((o) => ms(o.startTime)).filter((x) => x !== null);
  const ends = obs.map((o) => ms(o.endTime) || ms(o.startTime)).filter((x) => x !== null);
  const t0 = starts.length ? Math.min(...starts) : 0;
  const span = Math.max(1, (ends.length ? Math.max(...ends) : t0) - t0);

  const panel = h("aside", { class: "panel", id: "obs-panel", "aria-label": "Details" });
  const rows = [];
  const select = (o, row) => {
    rows.forEach((r) => r.classList.toggle("selected", r === row));
    panel.replaceChildren(...(o ? observationPanel(o, t) : tracePanel(t)).filter(Boolean));
  };
  const seen = new Set();
  const walk = (o, depth) => {
    if (seen.has(o.id)) return;
    seen.add(o.id);
    const s = ms(o.startTime), e = ms(o.endTime) || s;
    const left = s === null ? 0 : ((s - t0) / span) * 100;
    const width = s === null ? 0 : Math.max(0.3, ((e - s) / span) * 100);
    const row = h("div", {
      class: "wf-row", tabindex: 0, role: "treeitem", "aria-level": depth + 1, "data-obs": o.id,
      "aria-label": o.type + " " + (o.name || ""),
    },
      h("div", { class: "wf-name", style: null },
        h("span", { class: "indent", "aria-hidden": "true" }, "\u00a0".repeat(depth * 3)),
        h("span", { class: "type type-" + o.type }, o.type),
        h("span", { class: "label " + (o.level === "ERROR" || o.level === "WARNING" ? "lvl-" + o.level : "") }, o.name || "(unnamed)")),
      h("div", { class: "wf-track", title: fmtSec(o.latency) },
        h("div", { class: "wf-bar " + o.type + (o.level === "ERROR" ? " err" : ""), "data-left": left.toFixed(2), "data-width": width.toFixed(2) }),
        h("span", { class: "wf-time" }, fmtSec(o.latency))));
    row.addEventListener("click", () => select(o, row));
    row.addEventListener("keydown", (ev) => {
      const i = rows.indexOf(row);
      if (ev.key === "ArrowDown" && rows[i + 1]) { rows[i + 1].focus(); ev.preventDefault(); }
      else if (ev.key === "ArrowUp" && rows[i - 1]) { rows[i - 1].focus(); ev.preventDefault(); }
      else if (ev.key === "Enter" || ev.key === " ") { select(o, row); ev.preventDefault(); }
    });
    rows.push(row);
    for (const k of kids.get(o.id) || []) walk(k, depth + 1);
  };
  roots.forEach((r) => walk(r, 0));
  obs.filter((o) => !seen.has(o.id)).forEach((o) => walk(o, 0));
  // Bar geometry through the CSSOM (the style policy forbids inline style attributes).
  for (const row of rows) {
    const bar = row.querySelector(".wf-bar");
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = Math.min(+bar.dataset.width, 100 - +bar.dataset.left) + "%";
  }
  const traceRow = h("div", { class: "wf-row", tabindex: 0, role: "treeitem", "aria-level": 0, "data-obs": "" },
    h("div", { class: "wf-name" }, h("span", { class: "type" }, "TRACE"), h("span", { class: "label" }, t.name || "(unnamed)")),
    h("div", { class: "wf-track" }, h("span", { class: "wf-time" }, fmtSec(t.latency))));
  traceRow.addEventListener("click", () => select(null, traceRow));
  traceRow.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && rows[0]) { rows[0].focus(); ev.preventDefault(); }
    else if (ev.key === "Enter") select(null, traceRow);
  });
  rows.unshift(traceRow);

  const waterfall = h("div", { class: "waterfall", role: "tree", "aria-label": "Observation tree and timeline", id: "waterfall" },
    h("div", { class: "wf-head" }, h("span", {}, "Observation"), h("span", {}, "Timeline (0 – " + fmtSec(span / 1000) + ")")),
    rows);
  render(
    h("p", {}, h("a", { href: "#/traces" }, "← Traces")),
    h("h1", {}, (t.name || "(unnamed)") + " ", h("span", { class: "muted mono" }, t.id)),
    h("div", { class: "summary" },
      h("div", {}, h("b", {}, "time"), fmtTime(t.timestamp)),
      h("div", {}, h("b", {}, "latency"), fmtSec(t.latency)),
      h("div", {}, h("b", {}, "tokens"), fmtNum(t.totalTokens)),
      h("div", {}, h("b", {}, "cost"), fmtCost(t.totalCost, t.costEstimated)),
      t.userId ? h("div", {}, h("b", {}, "user"), h("a", { href: "#/traces?user=" + encodeURIComponent(t.userId) }, t.userId)) : null,
      t.sessionId ? h("div", {}, h("b", {}, "session"), h("a", { href: "#/session/" + encodeURIComponent(t.sessionId) }, t.sessionId)) : null,
      t.tags.length ? h("div", {}, h("b", {}, "tags"), t.tags.map((g) => h("span", { class: "tag" }, g))) : null,
      h("div", {}, h("b", {}, "env"), t.environment)),
    h("div", { class: "trace-layout" }, waterfall, panel));
  const initial = selectedObs && byId.get(selectedObs);
  const firstGen = obs.find((o) => o.type === "GENERATION");
  const pick = initial || firstGen;
  if (pick) select(pick, rows.find((r) => r.dataset.obs === pick.id));
  else select(null, traceRow);
}

function scoreList(scores) {
  if (!scores.length) return null;
  return h("div", {}, h("h2", {}, "Scores"), kv(scores.map((s) => [s.name, scoreText(s).slice(s.name.length + 1) + (s.comment ? " — " + s.comment : "")])));
}

function tracePanel(t) {
  return [
    h("h3", {}, "Trace " + (t.name || "")),
    kv([["id", t.id], ["timestamp", fmtTime(t.timestamp)], ["user", t.userId], ["session", t.sessionId], ["release", t.release], ["version", t.version],
      ["observations", t.observationCount], ["errors", t.errorCount]]),
    scoreList(t.scores.filter((s) => !s.observationId)),
    ioBlock("Input", t.input), ioBlock("Output", t.output),
    jsonDetails("Metadata", t.metadata),
  ];
}

function observationPanel(o, t) {
  const usage = o.usageDetails ? Object.entries(o.usageDetails).map(([k, v]) => k + ": " + v).join(", ") : null;
  const cost = o.costDetails ? fmtCost(o.totalCost, o.costEstimated) + (o.costEstimated ? " (estimate)" : "") : null;
  const params = o.modelParameters && Object.keys(o.modelParameters).length
    ? Object.entries(o.modelParameters).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(", ") : null;
  return [
    h("h3", {}, h("span", { class: "type type-" + o.type }, o.type), " ", o.name || "(unnamed)"),
    kv([["id", o.id], ["start", fmtTime(o.startTime)], ["latency", fmtSec(o.latency)],
      ["model", o.model], ["parameters", params], ["usage", usage], ["cost", cost],
      ["level", o.level === "DEFAULT" ? null : h("span", { class: "lvl-" + o.level }, o.level)],
      ["status", o.statusMessage], ["prompt", o.promptName ? o.promptName + " v" + o.promptVersion : null],
      ["first token", o.completionStartTime ? fmtTime(o.completionStartTime) : null]]),
    scoreList(t.scores.filter((s) => s.observationId === o.id)),
    ioBlock("Input", o.input), ioBlock("Output", o.output),
    jsonDetails("Metadata", o.metadata),
    jsonDetails("Raw observation", o),
  ];
}

// ---------- sessions and users ----------
async function sessionsView() {
  const seq = routeSeq;
  let sessions;
  try { sessions = await api("/api/sessions?limit=200"); } catch (e) { return stale(seq) || failed(e); }
  if (stale(seq)) return;
  const rows = sessions.map((s) => {
    const open = () => { location.hash = "#/session/" + encodeURIComponent(s.id); };
    return h("tr", { tabindex: 0, onclick: open, onkeydown: (ev) => { if (ev.key === "Enter") open(); } },
      h("td", {}, s.id), h("td", { class: "num" }, String(s.traceCount)), h("td", { class: "mono" }, fmtTime(s.firstTimestamp)),
      h("td", { class: "mono" }, fmtTime(s.lastTimestamp)), h("td", {}, s.userIds.join(", ")),
      h("td", { class: "num" }, fmtNum(s.totalTokens)), h("td", { class: "num" }, fmtCost(s.totalCost)),
      h("td", { class: "num" }, String(s.errorCount)));
  });
  render(h("h1", {}, "Sessions"), sessions.length ? h("table", { "aria-label": "Sessions" },
    h("thead", {}, h("tr", {}, ["Session", "Traces", "First", "Last", "Users", "Tokens", "Cost", "Errors"].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows)) : h("div", { class: "empty" }, "No sessions yet."));
  current.refresh = sessionsView;
}

async function sessionView(id) {
  const seq = routeSeq;
  let traces;
  try { traces = await api("/api/sessions/" + encodeURIComponent(id)); } catch (e) { return stale(seq) || failed(e); }
  if (stale(seq)) return;
  render(h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")), h("h1", {}, "Session " + id),
    traces.map((t) => h("div", { class: "session-turn" },
      h("h3", {}, h("a", { href: "#/trace/" + encodeURIComponent(t.id) }, t.name || t.id), " ",
        h("span", { class: "muted" }, fmtTime(t.timestamp) + " · " + fmtSec(t.latency) + " · " + fmtCost(t.totalCost))),
      ioBlock("Input", t.input), ioBlock("Output", t.output))));
}

async function usersView() {
  const seq = routeSeq;
  let users;
  try { users = await api("/api/users?limit=200"); } catch (e) { return stale(seq) || failed(e); }
  if (stale(seq)) return;
  const rows = users.map((u) => {
    const open = () => { location.hash = "#/traces?user=" + encodeURIComponent(u.id); };
    return h("tr", { tabindex: 0, onclick: open, onkeydown: (ev) => { if (ev.key === "Enter") open(); } },
      h("td", {}, u.id), h("td", { class: "num" }, String(u.traceCount)), h("td", { class: "num" }, String(u.sessionCount)),
      h("td", { class: "mono" }, fmtTime(u.firstTimestamp)), h("td", { class: "mono" }, fmtTime(u.lastTimestamp)),
      h("td", { class: "num" }, fmtNum(u.totalTokens)), h("td", { class: "num" }, fmtCost(u.totalCost)),
      h("td", { class: "num" }, String(u.errorCount)));
  });
  render(h("h1", {}, "Users"), users.length ? h("table", { "aria-label": "Users" },
    h("thead", {}, h("tr", {}, ["User", "Traces", "Sessions", "First", "Last", "Tokens", "Cost", "Errors"].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows)) : h("div", { class: "empty" }, "No users yet."));
  current.refresh = usersView;
}

// ---------- live updates ----------
let lastSeq = null;
async function poll() {
  try {
    const { seq } = await api("/api/changes");
    if (lastSeq !== null && seq !== lastSeq && current.refresh) {
      const live = document.getElementById("live");
      live.textContent = "live · updated";
      live.classList.add("flash");
      setTimeout(() => { live.textContent = "live"; live.classList.remove("flash"); }, 1500);
      await current.refresh();
    }
    lastSeq = seq;
  } catch (_) {
    document.getElementById("live").textContent = "offline";
  }
  setTimeout(poll, 2000);
}

// ---------- keyboard ----------
document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;
  if (ev.key === "/" && !typing) {
    const first = document.querySelector("[data-filter]");
    if (first) { first.focus(); ev.preventDefault(); }
  } else if (ev.key === "Escape" && !typing && location.hash.startsWith("#/trace/")) {
    history.length > 1 ? history.back() : (location.hash = "#/traces");
  } else if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && ev.target instanceof HTMLTableRowElement) {
    const next = ev.key === "ArrowDown" ? ev.target.nextElementSibling : ev.target.previousElementSibling;
    if (next) { next.focus(); ev.preventDefault(); }
  }
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => { route(); poll(); });
