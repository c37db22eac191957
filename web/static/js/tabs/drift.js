// Drift & alerts: open and past alerts in words, how alerts and the day charts relate, and each day-window
// check's statistic per day with its alert line, grouped by what the checks watch: one line per group (its
// checks and the days beyond their lines) that opens to its charts. The precise definitions are one hover
// (title) or one click (the definitions below the explanation) away. With a segment selected, the day charts and
// each line's live verdicts are that segment's (/api/drift?segment=); the alert tables list every alert.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, line, percentAxis, retitle } from "../charts.js";
import { count, dateTime, scrollBox, tableCard } from "../format.js";

export const id = "drift";
export const title = "Drift & alerts";
export const partlySegmented = "the day-window checks and their live verdicts are its own, against its own "
  + "reference period; the alert tables list every alert (one of a segment names it)";
let parts, zone = "UTC", segment = null;
const canvases = new Map();

// detector -> [what it watches, in words; what it means when it fires]
const DETECTORS = {
  prediction_drift: ["Predicted-class mix", "the model predicts the classes in other proportions than in the reference"],
  label_drift: ["True-class mix", "reviewers confirm the classes in other proportions than in the reference"],
  confidence_drift: ["Confidence", "the model's confidence is distributed differently than in the reference"],
  accuracy: ["Accuracy", "a smaller share of reviewed predictions is right than in the reference"],
  recall: ["Recall", "the model finds fewer of a class's true cases than in the reference"],
  calibration_drift: ["Calibration", "the model's confidence matches its share of right answers less well than in the "
                      + "reference"],
  label_shift: ["Estimated true-class mix", "the true-class mix of all predictions, estimated from the reviewed "
                + "confusion, moved away from the reference's"],
  volume: ["Prediction volume", "the model service sends far fewer or far more predictions than usual"],
  backlog: ["Review backlog", "too many predictions are waiting for a review"],
  lag: ["Consumer lag", "the consumer is behind the model service's writes"],
  outbox: ["Profile outbox", "profiles are not reaching their sinks"],
};
const STATISTICS = {
  js_distance: ["JS distance", "Jensen–Shannon distance (base 2) between the window's distribution and the "
                + "reference's: 0 = identical, 1 = no overlap. p: chi-square test of homogeneity of the counts."],
  accuracy: ["accuracy", "Share of the window's reviewed predictions whose true class is the predicted one. p: "
             + "one-sided two-proportion z-test that it is below the reference's."],
  recall: ["recall", "Share of the window's reviews of the class that the model predicted as that class. p: "
           + "one-sided two-proportion z-test that it is below the reference's."],
  volume_ratio: ["volume ratio", "Predictions in the last full hour ÷ the usual number for that hour of the week "
                 + "(median of earlier weeks). p: exact Poisson test."],
  calibration_change: ["calibration change", "The larger change, against the reference, of the expected calibration "
                       + "error (ECE) and of accuracy − confidence. p: chi-square test of the per-bin accuracy."],
  pending_reviews: ["pending reviews", "Predictions waiting for a review."],
  lag_seconds: ["lag", "Seconds between a document's write and its processing, at the consumer's last batch."],
  outbox_entries: ["entries waiting", "Profile outbox entries waiting for the sink with the most."],
};

function number(value) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? count(value) : value.toPrecision(3);
}

function pText(p) {
  if (p === null || p === undefined) return "";
  return p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`;
}

// A check in words: "Recall of blue", "Predicted-class mix against the training set", "Accuracy, site = north"
// (a segment's own check: its subject ends with "@field=value", drift/segment_checks.py).
function what(alert) {
  const [name] = DETECTORS[alert.detector] || [alert.detector];
  const segment = alert.segment || "";
  const subject = (alert.subject || "").slice(0, segment ? -(segment.length + 1) : undefined);
  const [, ...rest] = subject.split(":");
  const cls = alert.detector === "recall" ? ` of ${alert.statistic?.class ?? rest.join(":")}` : "";
  const against = subject.endsWith(":training") ? " against the training set" : "";
  return `${name}${cls}${against}${segment ? `, ${segment.replace("=", " = ")}` : ""}`;
}

function windowWords(w) {
  if (!w) return ["—", ""];
  const span = w.start && w.end ? `prediction hours ${dateTime(w.start, zone)} to ${dateTime(w.end, zone)} (${zone})` : "";
  if (w.kind === "last_n") return [w.label, `Live window: ${span}, walked back from now until it holds enough.`];
  if (w.kind === "day") return [`today so far (${w.label})`, `Live window: the local day up to now; ${span}.`];
  if (w.kind === "volume") return ["the last full hour", `${w.label}: compared with the same hour of earlier weeks.`];
  if (w.kind === "now") return ["now", "The state at the evaluation."];
  return [w.label || w.kind, span];
}

function statisticWords(s) {
  if (!s) return ["—", ""];
  const [name, definition] = STATISTICS[s.name] || [s.name, ""];
  const value = ["accuracy", "recall"].includes(s.name) && s.value !== null && s.value !== undefined
    ? `${(s.value * 100).toFixed(1)} %` : number(s.value);
  const p = pText(s.p_value);
  const reference = s.reference ? `; reference: ${s.reference}` : "";
  return [`${name} ${value}${p ? `, ${p}` : ""}`, `${definition}${reference}`];
}

function thresholdWords(t) {
  if (!t) return "—";
  const p = t.alpha !== undefined ? `, p < ${t.alpha}` : "";
  if (t.min_distance !== undefined) return `JS distance ≥ ${t.min_distance}${p}`;
  if (t.min_change !== undefined) return `calibration change ≥ ${t.min_change}${p}`;
  if (t.min_drop !== undefined) {
    const floor = t.floor ? `; or under ${(t.floor * 100).toFixed(0)} %` : "";
    return `${(t.min_drop * 100).toFixed(0)} points below the reference${p}${floor}`;
  }
  if (t.low_ratio !== undefined) return `alert under ${t.low_ratio * 100} % or over ${t.high_ratio}× the usual${p}`;
  if (t.max !== undefined) return `alert above ${number(t.max)}`;
  if (t.max_entries !== undefined) return `alert above ${number(t.max_entries)} entries or ${number(t.max_age_seconds)} s old`;
  return Object.entries(t).map(([key, value]) => `${key.replaceAll("_", " ")} ${number(value)}`).join(", ");
}

export function build(panel) {
  panel.innerHTML = `
    <div class="notes">
      <p><strong>How alerts work.</strong> Alerts open and resolve from the <em>live windows</em>, checked every few
        minutes: the last N reviews (or predictions) and today so far. The charts further down recompute the same
        checks for <em>each whole local day</em> of the range, to show when something changed: a day drawn beyond its
        alert line does not by itself open an alert.</p>
      <details><summary>Definitions</summary><dl class="definitions"></dl></details>
    </div>
    <div class="alerts-box" data-unsegmented="every alert"></div>
    <p class="section-what days-note" hidden></p>
    <h2 class="section">Day-window checks per day, all predictions</h2>
    <p class="section-what">Label-free checks on every prediction, known at once. Open a line for its charts.</p>
    <div class="check-groups" data-population="all predictions"></div>
    <h2 class="section">Day-window checks per day, reviewed predictions</h2>
    <p class="section-what">Checks that need the true class, on the sample reviewers chose; known late. Open a line
      for its charts.</p>
    <div class="check-groups" data-population="reviewed predictions"></div>`;
  const definitions = panel.querySelector(".definitions");
  const terms = [
    ["Live window", "“the last N reviews”: prediction hours walked back from now until they hold at least N reviews "
     + "(or predictions); “today so far”: the local day up to now."],
    ["Day window (charts)", "One whole local day of predictions, compared with the same reference period."],
    ["Reference period", "The fixed dates or the days just before the window, set in the configuration; or the "
     + "training set's class counts, for comparisons “against the training set”."],
    ...Object.values(STATISTICS).slice(0, 4),
    ["Alert line", "Where a check fires: a JS distance of at least the configured minimum, or accuracy / recall "
     + "the configured number of points below the reference; and in both cases a p-value below alpha."],
    ["No alert line on a day", "The day, or its reference period, has too few reviews for a verdict, so nothing "
     + "can fire that day; accuracy and recall also need the reference's own value to draw the line."],
    ["Shown beside, not alerted on", "Computed and charted for comparison, but configured never to open an alert "
     + "(drift.class_reference)."],
  ];
  for (const [term, definition] of terms) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = definition;
    definitions.append(dt, dd);
  }
  const box = panel.querySelector(".alerts-box");
  const past = document.createElement("details");
  past.className = "check-group past-group";
  past.innerHTML = `<summary><span class="group-name">Past alerts</span> <span class="group-summary"></span></summary>`;
  const open = tableCard(box, "alerts-open", "Open alerts");
  box.append(past);
  parts = { open, past: tableCard(past, "alerts-past", "Past alerts (opened in the range)"), pastGroup: past,
            note: panel.querySelector(".days-note"),
            charts: Object.fromEntries([...panel.querySelectorAll(".check-groups")].map((g) => [g.dataset.population, g])) };
  parts.open.classList.add("open-alerts");
  parts.past.classList.add("past-alerts");
}

const COLUMNS = [
  ["severity", (a) => [a.severity, ""]],
  ["check", (a) => [what(a), (DETECTORS[a.detector] || [])[1] ? `Fires when ${DETECTORS[a.detector][1]}. (${a.key})` : a.key]],
  ["population", (a) => [a.population || "—", ""]],
  ["window", (a) => windowWords(a.window)],
  ["statistic", (a) => statisticWords(a.statistic)],
  ["alerts at", (a) => [thresholdWords(a.threshold), "Where the check fires: both the size of the change and its "
                                                      + "significance (p below alpha) must be reached."]],
  ["what happened", (a) => [a.message, ""]],
  ["opened", (a) => [dateTime(a.opened_at, zone), a.opened_at]],
];

function alertTable(container, alerts, extra, empty) {
  const columns = [...COLUMNS, ...extra];
  const html = document.createElement("table");
  html.className = "alerts";
  const header = html.createTHead().insertRow();
  for (const [name] of columns) {
    const th = document.createElement("th");
    th.scope = "col";
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
      const [text, definition] = cell(alert);
      td.className = "text";
      td.dataset.label = name;  // a phone shows each alert as a card, its cells labelled (dashboard.css)
      td.textContent = text;
      if (definition) {
        td.title = definition;
        td.classList.add("defined");
      }
    }
  }
  if (!alerts.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "text empty";
    td.dataset.label = "alerts";
    td.textContent = empty;
  }
  container.replaceChildren(html);
  scrollBox(container);
  container.closest(".card").csv = () => [
    [...columns.map(([name]) => name), "key", "id"],
    ...alerts.map((a) => [...columns.map(([name, cell]) => (["opened", "updated", "resolved"].includes(name)
      ? cell(a)[1] : cell(a)[0])), a.key, a.id])];
}

function whatLine(s) {
  const [, meaning] = DETECTORS[s.detector] || [];
  const gaps = s.values.some((v, i) => v !== null && s.threshold[i] === null);
  const firing = s.firing.some((f) => f);
  let text = meaning ? `A point beyond the line means that on that day ${meaning}.` : "";
  if (!s.alerting) text += " Shown beside for comparison: this check never opens an alert.";
  else if (firing) text += " Days beyond the line (▲) are charted only; alerts come from the live windows above.";
  if (gaps) text += " No alert line on some days: too few reviews that day or in its reference period for a verdict.";
  if (s.values.some((v) => v === null)) text += " No point: no data that day.";
  return text.trim();
}

// The collapsible group of a population's checks of one detector, made the first time one is drawn; the
// groups stay in the order of DETECTORS.
function group(s) {
  const box = parts.charts[s.population] || parts.charts["reviewed predictions"];
  let details = [...box.children].find((d) => d.dataset.detector === s.detector);
  if (!details) {
    details = document.createElement("details");
    details.className = "check-group";
    details.dataset.detector = s.detector;
    details.innerHTML = `<summary><span class="group-name"></span> <span class="group-summary"></span></summary>
      <div class="grid"></div>`;
    details.querySelector(".group-name").textContent = (DETECTORS[s.detector] || [s.detector])[0];
    const order = Object.keys(DETECTORS);
    const rank = (d) => (order.includes(d) ? order.indexOf(d) : order.length);
    const after = [...box.children].find((d) => rank(d.dataset.detector) > rank(s.detector));
    box.insertBefore(details, after || null);
  }
  return details;
}

// The latest evaluation's live-window findings of a group's detector and population (of the segment shown, or
// of every prediction: those without a segment).
function liveOf(findings, detector, population) {
  const named = segment ? `${segment.field}=${segment.value}` : "";
  return findings.filter((f) => f.detector === detector && f.population === population && (f.segment || "") === named);
}

function liveWords(live) {
  if (!live.length) return "no live verdict yet";
  const firing = live.filter((f) => f.firing).length;
  const judged = live.filter((f) => f.firing !== null && f.firing !== undefined).length;
  if (firing) return `live windows: ● ${firing} of ${live.length} firing now`;
  return judged ? `live windows: ${live.length === 1 ? "quiet" : `all ${live.length} quiet`}`
    : "live windows: too few for a verdict";
}

// A group's line: how many checks, how many days beyond an alert line (charted only), and the live windows'
// verdicts of the latest evaluation.
function summarize(details, checks, live) {
  const beyond = checks.reduce((n, s) => n + s.firing.filter(Boolean).length, 0);
  const alerting = checks.filter((s) => s.alerting).length;
  const words = [`${checks.length} check${checks.length === 1 ? "" : "s"}`
                 + (alerting < checks.length ? ` (${checks.length - alerting} shown beside, never alerted on)` : ""),
                 beyond ? `▲ ${beyond} day${beyond === 1 ? "" : "s"} beyond the line` : "no day beyond the line",
                 liveWords(live)];
  const summary = details.querySelector(".group-summary");
  summary.textContent = `— ${words.join("; ")}`;
  summary.title = live.map((f) => f.message).join("\n");
  details.dataset.live = String(live.length);
  details.dataset.firing = String(live.filter((f) => f.firing).length);
  details.classList.toggle("beyond", beyond > 0);
}

function drawSeries(days, series, findings) {
  const seen = new Set();
  const groups = new Map();
  for (const s of series) {
    const canvasId = `drift-${s.key.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    seen.add(canvasId);
    const details = group(s);
    groups.set(details, [...(groups.get(details) || []), s]);
    if (!canvases.has(canvasId)) canvases.set(canvasId, card(details.querySelector(".grid"), canvasId, s.title));
    retitle(canvases.get(canvasId), s.title, whatLine(s));
    const [value, firing] = [css("--drift-value"), css("--drift-firing")];
    const [statName] = STATISTICS[s.statistic] || [s.statistic];
    const beyond = s.values.map((v, i) => (s.firing[i] ? v : null));
    const datasets = [
      // A day beyond the line is a triangle in the alert colour instead of a circle: shape and colour both say it.
      line(statName, s.values, value, { pointStyle: "circle", order: 1,
                                        pointRadius: s.firing.map((f) => (f ? 0 : 3)) }),
      line(s.alerting ? "day beyond the alert line (charted only)" : "day beyond the line (not alerted on)", beyond,
           firing, { showLine: false, pointStyle: "triangle", pointRadius: 7, pointHoverRadius: 8, order: 0 }),
      line(s.threshold_label, s.threshold, css("--drift-line"),
           { borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5, pointStyle: "line", order: 2 }),
    ];
    const y = s.statistic === "js_distance"
      ? { min: 0, suggestedMax: 0.3, title: axisTitle("JS distance (0 same to 1)") }
      : { ...percentAxis, title: axisTitle(`% ${s.statistic === "recall" ? "recall" : "correct"}`) };
    draw(canvases.get(canvasId), "line", { labels: days, datasets },
         { scales: { x: { title: axisTitle(`local day (${zone})`) }, y },
           plugins: { tooltip: { callbacks: { footer: (items) => {
             const i = items[0].dataIndex;
             const p = pText(s.p_values[i]);
             const verdict = s.firing[i] === null ? "no verdict" : (s.firing[i] ? "beyond the alert line" : "within");
             return `${p ? `${p}; ` : ""}${verdict}`;
           } } } } },
         { csv: () => [["day", s.statistic, "p value", "alert line", "beyond the line"],
                       ...days.map((day, i) => [day, s.values[i], s.p_values[i], s.threshold[i], s.firing[i]])] });
  }
  for (const [canvasId, canvas] of canvases) {
    if (!seen.has(canvasId)) {
      window.Chart.getChart(canvas)?.destroy();
      canvas.closest(".card").remove();
      canvases.delete(canvasId);
    }
  }
  for (const details of document.querySelectorAll("#panel-drift .check-groups > .check-group")) {
    if (groups.has(details)) {
      const [first] = groups.get(details);
      summarize(details, groups.get(details), liveOf(findings, first.detector, first.population));
    }
    else details.remove();
  }
}

export async function refresh({ meta, range, days, segment: selected }) {
  zone = meta.timezone;
  segment = selected;
  // Day windows and alerts opened per local day: an hour-precise range is shown as the days it falls in.
  const checked = range.segment ? { ...days, segment: range.segment } : days;
  const [alerts, drift] = await Promise.all([getJSON("/api/alerts", days), getJSON("/api/drift", checked)]);
  parts.note.hidden = range.from === days.from && range.to === days.to;
  parts.note.textContent = `Alerts and checks per whole local day: ${days.from} to ${days.to}, the days the hours `
    + "shown fall in.";
  alertTable(parts.open, alerts.open, [["updated", (a) => [dateTime(a.updated_at, zone), a.updated_at]]], "none");
  const resolvedColumns = [["resolved", (a) => [dateTime(a.resolved_at, zone), a.resolved_at]],
                           ["resolution", (a) => [a.resolution ?? "", ""]]];
  alertTable(parts.past, alerts.past, resolvedColumns, "none opened in this range");
  parts.pastGroup.querySelector(".group-summary").textContent =
    `— ${alerts.past.length} opened in the range${alerts.past.length ? " (newest first): open for what each one said" : ""}`;
  parts.open.dataset.count = String(alerts.open.length);
  retitle(parts.open, `Open alerts (${alerts.open.length})`, drift.evaluated_at
    ? `Live windows last evaluated ${dateTime(drift.evaluated_at, zone)}; times in ${zone}. Hover a cell for its `
      + "precise definition."
    : "The live windows have not been evaluated yet.");
  drawSeries(drift.days, drift.series, drift.findings);
}
