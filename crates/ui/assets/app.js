// The Freshet dashboard: reads the API with the signed-in token and redraws the overview
// every two seconds. Every value is written with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "freshet-token";
const REFRESH_MS = 2000;
const history = new Map(); // model -> recent live accuracies, for the sparkline
let timer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { headers, cache: "no-store" });
  if (r.status === 401) throw new Unauthorized("the token was refused");
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const msg = body && body.error && body.error.message ? body.error.message : r.statusText;
    throw new Error(r.status + ": " + msg);
  }
  return body;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 129600) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function phaseText(phase) {
  if (!phase) return "";
  if (typeof phase === "string") return phase;
  let text = String(phase.name || "").replace(/_/g, " ");
  if (typeof phase.weight_pct === "number") text += " " + phase.weight_pct + "%";
  if (phase.reason) text += " (" + phase.reason + ")";
  return text;
}

const ACTIVE = (phase) => phase && !["promoted", "rolled_back"].includes(phase.name);
const results = new Map(); // model -> the answer to the last button pressed

async function rolloutStep(model, step) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const body = step === "pause" ? JSON.stringify({ reason: "paused from the dashboard" }) : "null";
  try {
    const r = await fetch("/v1/models/" + encodeURIComponent(model) + "/rollout/" + step,
      { method: "POST", headers, body });
    const answer = await r.json().catch(() => ({}));
    if (r.ok) {
      const ds = answer.decisions || [];
      const d = ds[ds.length - 1];
      results.set(model, { ok: true, text: step + ": " + (d ? d.to + " — " + d.reason : "done") });
    } else {
      const msg = answer.error && answer.error.message ? answer.error.message : r.statusText;
      results.set(model, { ok: false, text: step + " refused: " + msg });
    }
  } catch (e) {
    results.set(model, { ok: false, text: step + " failed: " + e.message });
  }
  clearTimeout(timer);
  refresh();
}

function rolloutButtons(model, rollout) {
  const box = el("div", { class: "actions" });
  if (rollout && ACTIVE(rollout.phase)) {
    const paused = rollout.phase.name === "paused";
    const steps = paused ? ["resume", "rollback"] : ["promote", "rollback", "pause"];
    const labels = { promote: "Promote", rollback: "Roll back", pause: "Pause", resume: "Resume" };
    for (const step of steps) {
      const b = el("button", { type: "button", "data-testid": "rollout-" + step }, labels[step]);
      b.addEventListener("click", () => rolloutStep(model, step));
      box.append(b);
    }
  }
  const res = results.get(model);
  if (res) box.append(el("p", { class: res.ok ? "ok" : "bad", "data-testid": "action-result" }, res.text));
  return box;
}

function sparkline(values) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 36");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("data-testid", "sparkline");
  if (values.length > 1) {
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) =>
      ((i / (values.length - 1)) * 100).toFixed(1) + "," + (34 - ((v - lo) / span) * 32).toFixed(1));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return svg;
}

function card(name, st) {
  const row = (label, value, testid, cls) =>
    [el("dt", {}, label), el("dd", { "data-testid": testid, class: cls || "" }, value)];
  const versions = st.versions || [];
  const champ = versions.find((v) => v.role === "champion");
  const chall = versions.find((v) => v.role !== "champion");
  const mon = st.monitoring || {};
  const acc = mon.live_accuracy;
  const drift = mon.drift;
  const loop = st.loop || {};
  const jobs = loop.history || [];
  const last = jobs.length ? jobs[jobs.length - 1] : null;
  const rollout = st.rollout;
  const decisions = rollout && rollout.decisions ? rollout.decisions : [];
  const lastDecision = decisions.length ? decisions[decisions.length - 1] : null;
  const openAlerts = (mon.alerts || []).filter((a) => String(a.status).toLowerCase() !== "resolved");

  if (acc && typeof acc.accuracy === "number") {
    const h = history.get(name) || [];
    h.push(acc.accuracy);
    while (h.length > 60) h.shift();
    history.set(name, h);
  }
  const driftText = drift && drift.report && drift.report.dataset
    ? drift.report.dataset.drifted_columns + " of " + drift.report.dataset.columns + " features drifted"
    : "not tested yet";
  const driftCls = !(drift && drift.report && drift.report.dataset) ? "muted"
    : drift.report.dataset.drifted_columns > 0 ? "warn" : "ok";
  const served = st.served
    ? el("span", { class: "badge ok" }, "serving")
    : el("span", { class: "badge muted" }, "no champion");
  return el("article", { class: "card", "data-testid": "model-" + name },
    el("h3", {}, name, served),
    el("dl", {},
      ...row("Champion", champ ? "v" + champ.version : "none", "champion"),
      ...row("Challenger", chall ? "v" + chall.version + " — " + chall.role.replace("challenger ", "") : "none", "challenger"),
      ...row("Rollout", rollout ? phaseText(rollout.phase) + " (v" + rollout.candidate_version + ")" : "none", "rollout"),
      ...row("Last decision", lastDecision ? lastDecision.to + ": " + lastDecision.reason : "—", "decision"),
      ...row("Live accuracy", acc ? acc.accuracy.toFixed(3) + " on " + acc.labelled + " labels (v" + acc.version + ")" : "no labels yet", "accuracy"),
      ...row("Drift", driftText, "drift", driftCls),
      ...row("Freshness", loop.trained_ms ? "trained " + ago(loop.trained_ms) + " on " + (loop.trained_rows || 0) + " rows" : "not trained yet", "freshness"),
      ...row("Last retrain", last ? (last.trigger + " → " + last.outcome + (last.version ? " (v" + last.version + ")" : "") + ", " + ago(last.finished_ms)) : "none", "retrain"),
      ...row("Traffic, last minute", champ ? champ.last_minute.requests + " requests, p99 " + Number(champ.last_minute.p99_ms || 0).toFixed(2) + " ms" : "—", "traffic"),
      ...row("Open alerts", openAlerts.length ? openAlerts.map((a) => a.kind).join(", ") : "none", "alerts", openAlerts.length ? "bad" : "ok"),
    ),
    rolloutButtons(name, rollout),
    sparkline(history.get(name) || []));
}

async function refresh() {
  try {
    const list = await api("/v1/models");
    $("who").textContent = list.principal;
    const cards = [];
    for (const name of list.models) {
      const st = await api("/v1/models/" + encodeURIComponent(name) + "/status");
      cards.push(card(name, st));
    }
    if (!cards.length) cards.push(el("p", { class: "muted", "data-testid": "no-models" }, "No models you may read are declared."));
    $("models").replaceChildren(...cards);
    $("overview-error").textContent = "";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    show("overview");
  } catch (e) {
    if (e instanceof Unauthorized) {
      signOut(sessionStorage.getItem(TOKEN_KEY) ? "The token was refused (revoked, expired or mistyped)." : "");
      return;
    }
    $("overview-error").textContent = "Cannot refresh: " + e.message;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function show(which) {
  $("signin").hidden = which !== "signin";
  $("overview").hidden = which !== "overview";
  $("signout").hidden = which !== "overview" || !sessionStorage.getItem(TOKEN_KEY);
}

function signOut(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  history.clear();
  $("who").textContent = "";
  $("signin-error").textContent = message || "";
  show("signin");
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("signin-error").textContent = "";
    clearTimeout(timer);
    refresh();
  });
  $("signout").addEventListener("click", () => signOut(""));
  refresh();
});
