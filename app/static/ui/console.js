// The seqcast console: looks a user up through the public API and draws the answer.
// The user comes from the form or from ?user=ID (then it loads at once); the API key,
// asked for when the service answers 401, is sent as X-API-Key and kept in memory only.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = "";

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const headers = apiKey ? { "X-API-Key": apiKey } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body);
  }
  return response;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// A bar of a probability; a cold start's priors have no score (the bar is empty, "—").
function bar(label, value, name) {
  const known = typeof value === "number";
  const fill = el("span", { class: "fill" });
  fill.style.width = `${known ? Math.max(0, Math.min(1, value)) * 100 : 0}%`;
  return el("li", { class: "bar", "data-name": name, ...(known ? { "data-value": String(value) } : {}) },
    el("span", { class: "label" }, label),
    el("span", { class: "track" }, fill),
    el("span", { class: "value" }, known ? value.toFixed(3) : "—"));
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function drawPrediction(p) {
  $("prediction-meta").textContent =
    `model ${p.model_version}, ${p.window_length} events` + (p.cold_start ? ", cold start (priors)" : "");
  $("next-behavior").replaceChildren(
    ...Object.entries(p.next_behavior).map(([b, v]) => bar(b, v, `next-${b}`)));
  const hours = Math.round(p.horizon_seconds / 3600);
  $("outcomes").replaceChildren(
    bar(`purchase within ${hours} h`, p.purchase_probability, "purchase"),
    bar("return visit", p.return_probability, "return"));
  $("anomaly").textContent = p.anomaly
    ? `Anomaly score ${p.anomaly.percentile.toFixed(3)} (surprise ${p.anomaly.surprise.toFixed(2)} nats per event)`
    : "Anomaly score: none for windows of fewer than 2 events";
  $("top-items").replaceChildren(...p.top_items.map((t) => bar(t.id, t.score, `item-${t.id}`)));
  $("top-categories").replaceChildren(...p.top_categories.map((t) => bar(t.id, t.score, `category-${t.id}`)));
  const events = [...(p.explanation || [])].sort((a, b) => a.position - b.position);
  const largest = Math.max(1e-9, ...events.map((e) => Math.abs(e.contribution)));
  $("window-events").replaceChildren(...events.map((e) => {
    const alpha = (Math.abs(e.contribution) / largest) * 0.6;
    const row = el("tr", { class: "event", "data-position": String(e.position) },
      el("td", { class: "num" }, String(e.position)),
      el("td", {}, new Date(e.timestamp * 1000).toISOString().replace("T", " ").slice(0, 19)),
      el("td", { class: "behavior" }, e.behavior),
      el("td", { class: "item" }, e.item_id),
      el("td", {}, e.category_id || ""),
      el("td", { class: "num contribution", "data-value": String(e.contribution) },
        (e.contribution >= 0 ? "+" : "") + e.contribution.toFixed(4)));
    row.style.background = e.contribution >= 0 ? `rgba(22,163,74,${alpha})` : `rgba(220,38,38,${alpha})`;
    return row;
  }));
  if (!events.length) $("window-events").append(el("tr", {}, el("td", { colspan: "6" }, "no events in the window")));
  for (const id of ["prediction", "tops", "window"]) $(id).hidden = false;
}

function scalars(value, prefix, out) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) scalars(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (typeof value === "number" || typeof value === "string") {
    out.push([prefix, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value)]);
  }
  return out;
}

async function drawModel() {
  const card = await (await api("/v1/model")).json();
  const fields = ["model_version", "trained_at", "loaded_at", "horizon_seconds", "window_len",
    "behaviors", "n_items", "n_categories", "providers", "onnx_sha256"];
  $("model-card").replaceChildren(...fields.flatMap((f) =>
    [el("dt", {}, f), el("dd", {}, Array.isArray(card[f]) ? card[f].join(", ") : String(card[f]))]));
  $("model-metrics").replaceChildren(...scalars(card.metrics, "", []).map(([k, v]) =>
    el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  const { plots } = await (await api("/ui/report")).json();
  const images = await Promise.all(plots.map(async (name) => {
    const blob = await (await api(`/ui/report/${encodeURIComponent(name)}`)).blob();
    return el("img", { src: URL.createObjectURL(blob), alt: name, "data-plot": name });
  }));
  $("model-plots").replaceChildren(...images);
  $("model").hidden = false;
}

// One row per model version and figure: live, and the training report's beside it.
async function drawLive() {
  const live = await (await api("/v1/model/live")).json();
  const head = el("tr", {}, ...["version", "role", "target", "scored", "figure", "live", "training"]
    .map((h) => el("th", {}, h)));
  const rows = [];
  for (const v of live.versions) {
    for (const [target, figures] of Object.entries(v.targets)) {
      for (const [name, value] of Object.entries(figures)) {
        if (typeof value !== "number" || name === "scored") continue;
        const trained = figures.training ? figures.training[name] : undefined;
        rows.push(el("tr", { "data-version": v.version, "data-target": target, "data-figure": name },
          ...[v.version, v.role, target, String(figures.scored), name, value.toFixed(4),
            typeof trained === "number" ? trained.toFixed(4) : "—"].map((c) => el("td", {}, c))));
      }
    }
  }
  $("live-figures").replaceChildren(head, ...rows);
}

async function lookUp(user) {
  status(`looking up ${user}…`);
  try {
    const path = `/v1/users/${encodeURIComponent(user)}/prediction?top_k=5&explain=true`;
    drawPrediction(await (await api(path)).json());
    await drawModel();
    await drawLive();
    status(`user ${user}`);
  } catch (error) {
    if (error.status === 401) {
      $("key-label").hidden = false;
      $("key").focus();
      status(`this service needs an API key (X-API-Key): ${error.message}`, true);
    } else {
      status(`${error.status ? `HTTP ${error.status}: ` : ""}${error.message}`, true);
    }
  }
}

$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("key").value;
  const user = $("user").value.trim();
  history.replaceState(null, "", `?user=${encodeURIComponent(user)}`);
  lookUp(user);
});

const initial = new URLSearchParams(location.search).get("user");
if (initial) {
  $("user").value = initial;
  lookUp(initial);
}
