// Drift & alerts: open and past alerts, and each day-window check's statistic per day with its alert line.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, line, percentAxis, retitle } from "../charts.js";

export const id = "drift";
export const title = "Drift & alerts";
let parts;
const canvases = new Map();

export function build(panel) {
  panel.innerHTML = `
    <div class="card"><h2>Open alerts</h2><p class="muted evaluated"></p><div class="open-alerts table"></div></div>
    <div class="card"><h2>Past alerts (opened in the range)</h2><div class="past-alerts table"></div></div>
    <h2 class="section">Day-window checks per day</h2><div class="grid drift-charts"></div>`;
  parts = { open: panel.querySelector(".open-alerts"), past: panel.querySelector(".past-alerts"),
            evaluated: panel.querySelector(".evaluated"), charts: panel.querySelector(".drift-charts") };
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function number(value) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}

function statistic(s) {
  if (s.p_value === undefined || s.p_value === null) return `${s.name} ${number(s.value)}`;
  const p = s.p_value < 0.001 ? "p < 0.001" : `p = ${s.p_value.toFixed(3)}`;
  return `${s.name} ${number(s.value)}, ${p}`;
}

function threshold(t) {
  return Object.entries(t).map(([key, value]) => `${key} ${number(value)}`).join(", ");
}

const COLUMNS = [
  ["severity", (a) => a.severity], ["type", (a) => a.type], ["check", (a) => a.key],
  ["population", (a) => a.population || "—"],
  ["window", (a) => a.window.label ?? a.window.kind], ["statistic", (a) => statistic(a.statistic)],
  ["threshold", (a) => threshold(a.threshold)], ["what happened", (a) => a.message],
  ["opened", (a) => when(a.opened_at)],
];

function alertTable(container, alerts, extra, empty) {
  if (!alerts.length) {
    container.innerHTML = `<p class="muted"></p>`;
    container.firstChild.textContent = empty;
    return;
  }
  const columns = [...COLUMNS, ...extra];
  const html = document.createElement("table");
  html.className = "alerts";
  const header = html.createTHead().insertRow();
  for (const [name] of columns) {
    const th = document.createElement("th");
    th.textContent = name;
    th.className = "text";
    header.append(th);
  }
  const body = html.createTBody();
  for (const alert of alerts) {
    const row = body.insertRow();
    row.dataset.alertId = alert.id;
    row.dataset.key = alert.key;
    row.className = `severity-${alert.severity}`;
    for (const [name, cell] of columns) {
      const td = row.insertCell();
      td.className = "text";
      td.dataset.label = name;  // a phone shows each alert as a card, its cells labelled (dashboard.css)
      td.textContent = cell(alert);
    }
  }
  container.replaceChildren(html);
}

const STATISTIC_NAMES = { js_distance: "Jensen-Shannon distance" };

function drawSeries(days, series) {
  const seen = new Set();
  for (const s of series) {
    const canvasId = `drift-${s.key.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    seen.add(canvasId);
    if (!canvases.has(canvasId)) canvases.set(canvasId, card(parts.charts, canvasId, s.title));
    retitle(canvases.get(canvasId), s.title);
    const [value, firing] = [css("--drift-value"), css("--drift-firing")];
    const pointColors = s.firing.map((f) => (f && s.alerting ? firing : value));
    const datasets = [
      line(STATISTIC_NAMES[s.statistic] || s.statistic, s.values, value,
           { pointBackgroundColor: pointColors, pointBorderColor: pointColors }),
      line(s.threshold_label, s.threshold, css("--drift-line"), { borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 }),
    ];
    const y = s.statistic === "js_distance" ? { min: 0, suggestedMax: 0.3, title: axisTitle("JS distance (0 to 1)") }
      : { ...percentAxis, title: axisTitle(s.statistic) };
    draw(canvases.get(canvasId), "line", { labels: days, datasets },
         { scales: { x: { title: axisTitle("local day") }, y } });
  }
  for (const [canvasId, canvas] of canvases) {
    if (!seen.has(canvasId)) {
      window.Chart.getChart(canvas)?.destroy();
      canvas.closest(".card").remove();
      canvases.delete(canvasId);
    }
  }
}

export async function refresh({ range }) {
  const [alerts, drift] = await Promise.all([getJSON("/api/alerts", range), getJSON("/api/drift", range)]);
  alertTable(parts.open, alerts.open, [["updated", (a) => when(a.updated_at)]], "No open alerts.");
  const resolvedColumns = [["resolved", (a) => when(a.resolved_at)], ["resolution", (a) => a.resolution ?? ""]];
  alertTable(parts.past, alerts.past, resolvedColumns, "No alerts opened and resolved in this range.");
  parts.open.dataset.count = String(alerts.open.length);
  parts.evaluated.textContent = drift.evaluated_at ? `last evaluated ${when(drift.evaluated_at)}` : "not evaluated yet";
  drawSeries(drift.days, drift.series);
}
