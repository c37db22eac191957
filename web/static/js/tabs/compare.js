// Compare: two values of a segment field (typically two model versions) side by side on the same days, from
// /api/compare: the reviewed predictions' accuracy with 95 % Wilson intervals and a test of the difference (said in
// words: which is higher and whether that is significant), per-class recall with its tests (Benjamini-Hochberg
// adjusted), each side's reliability, and the prediction mix of all predictions. Shown only with segments
// configured; its own choice of field and values, not the header's segment. The choice is in the address
// (main.js: `compare=field&a=value&b=value`): what the address leaves out takes the defaults below, and what it names
// but cannot be shown as named (a field not configured, a value with no predictions in the range, A = B) is said
// in a line above the figures, never swapped in silence.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, line, percentAxis, retitle, timeAxis, whiskers } from "../charts.js";
import { assumes, count, estimateTiles, ratio, share, table, tableCard } from "../format.js";

export const id = "compare";
export const title = "Compare";
export const needsSegments = true;
export const unsegmented = "this tab compares the two values chosen below, whatever the header's segment";
const SIDES = ["a", "b"];
const COLORS = { a: "--compare-a", b: "--compare-b" };
let parts;
const chosen = { field: "", a: "", b: "" };

export function build(panel) {
  panel.innerHTML = `
    <div class="compare-controls" role="group" aria-label="What to compare">
      <label>field <select class="compare-field"></select></label>
      <label>A <select class="compare-a"></select></label>
      <label>B <select class="compare-b"></select></label>
    </div>
    <p class="refusal compare-note" role="status" hidden></p>
    <h2 class="section">Accuracy, reviewed predictions</h2>
    <p class="verdict" role="status"></p>
    <div class="tiles compare-tiles"></div>
    <div class="grid compare-grid"></div>`;
  const grid = panel.querySelector(".compare-grid");
  parts = {
    field: panel.querySelector(".compare-field"), a: panel.querySelector(".compare-a"),
    b: panel.querySelector(".compare-b"), verdict: panel.querySelector(".verdict"),
    note: panel.querySelector(".compare-note"),
    tiles: panel.querySelector(".compare-tiles"),
    daily: card(grid, "compare-accuracy", "Accuracy per day, reviewed predictions", "", { wide: true }),
    recall: card(grid, "compare-recall", "Recall by true class, reviewed predictions"),
    mix: card(grid, "compare-mix", "Prediction mix, all predictions"),
    calibration: card(grid, "compare-calibration", "Reliability, reviewed predictions"),
    classes: tableCard(grid, "compare-classes", "Recall by true class: the difference and its test",
                       "Each class tested on its own (two-proportion z-test, or Fisher's exact test for small "
                       + "counts); p adjusted by Benjamini-Hochberg over the classes, so that seven tests do not "
                       + "find a difference by chance."),
  };
  parts.classes.closest(".card").classList.add("wide");
  // A choice made here goes into the address (a new history entry), which draws the tab again.
  parts.field.addEventListener("change", () => {
    const field = parts.field.value;
    lastView.chooseCompare({ field, ...defaults(valuesOf(lastView.segments, field), "", "") });
  });
  for (const side of SIDES) {
    parts[side].addEventListener("change", () => lastView.chooseCompare({ ...chosen, [side]: parts[side].value }));
  }
}

let lastView = null;

const option = (value, text) => Object.assign(document.createElement("option"), { value, textContent: text });

const BUCKETS = ["unknown", "other"];   // clara/segments.py: no field, or beyond the cap

const valuesOf = (segments, field) => (segments.find((s) => s.field === field) || { values: [] }).values;

// The sides not named: the two most reviewed values that are not a bucket (B the busiest), never the other side.
function defaults(values, a, b) {
  const named = [...values].sort((x, y) => y.reviews - x.reviews).map((v) => v.value);
  const ranked = [...named.filter((n) => !BUCKETS.includes(n)), ...named.filter((n) => BUCKETS.includes(n))];
  const chosenB = b || ranked.find((n) => n !== a) || "";
  return { a: a || ranked.find((n) => n !== chosenB) || "", b: chosenB };
}

// The field and values to offer and show: the configured fields, each field's values seen in the range; as the
// address names them (`wanted`), else model_version (or the first field) and its defaults. Returns what the page
// must say about the address's choice.
function choices(segments, wanted) {
  const fields = segments.map((s) => s.field);
  const fallback = fields.includes("model_version") ? "model_version" : fields[0] || "";
  const notes = [];
  let { field = "", a = "", b = "" } = wanted || {};
  if (field && !fields.includes(field)) {
    notes.push(`The address names the field “${field}”, which is not a segment field (${fields.join(", ")}): `
               + `${fallback} is compared instead, its two most reviewed values.`);
    field = a = b = "";
  }
  field = field || fallback;
  const values = valuesOf(segments, field);
  const names = values.map((v) => v.value);
  for (const [side, value] of [["A", a], ["B", b]]) {
    if (value && !names.includes(value)) {
      notes.push(`${side} = ${value}, as the address names it: ${field} = ${value} has no predictions or reviews in `
                 + "this range, so there is nothing of it to compare.");
    }
  }
  if (a && a === b) {
    notes.push(`A and B are both ${field} = ${a}, as the address names them: the two sides are the same.`);
  }
  Object.assign(chosen, { field }, defaults(values, a, b));
  parts.field.replaceChildren(...fields.map((f) => option(f, f)));
  parts.field.value = chosen.field;
  for (const side of SIDES) {
    const offered = values.map((v) => option(v.value, `${v.value} (${count(v.reviews)} reviews)`));
    if (chosen[side] && !names.includes(chosen[side])) {
      offered.push(option(chosen[side], `${chosen[side]} (none in the range)`));
    }
    parts[side].replaceChildren(...offered);
    parts[side].value = chosen[side];
  }
  return notes;
}

export async function refresh(view) {
  const segments = await view.segments;
  lastView = { ...view, segments };
  const notes = choices(segments, view.compare);
  parts.note.textContent = notes.join(" ");
  parts.note.hidden = notes.length === 0;
  await load();
}

async function load() {
  const { meta, range, by } = lastView;
  if (!chosen.a || !chosen.b) {
    parts.verdict.textContent = `Fewer than two values of ${chosen.field} have predictions in this range: nothing `
      + "to compare.";
    return;
  }
  const body = await getJSON("/api/compare", { from: range.from, to: range.to, by, field: chosen.field,
                                               a: chosen.a, b: chosen.b });
  drawBody(body, meta);
}

// A difference in points, signed ("+7.3 points"; "0.0 points" when it rounds to nothing).
function points(difference) {
  if (difference === null) return "—";
  const shown = (Math.abs(difference) * 100).toFixed(1);
  return `${shown === "0.0" ? "" : difference > 0 ? "+" : "−"}${shown} points`;
}

const name = (body, side) => `${body.field} = ${body[side]}`;

function drawBody(body, meta) {
  const accuracy = body.accuracy;
  const days = body.common.length, per = body.by;
  parts.verdict.textContent = days === 0 ? `${body.a} and ${body.b} have no ${per} with reviews of both in this `
    + "range: nothing to compare on the same traffic."
    : `Over the ${days} ${per}${days === 1 ? "" : "s"} with reviews of both (${body.common[0]} to `
      + `${body.common[days - 1]}), ${accuracy.verdict}.`;
  parts.verdict.title = `Method: ${accuracy.method}. Assumes: ${accuracy.assumption}.`;
  estimateTiles(parts.tiles, [
    ...SIDES.map((side) => [`compare-accuracy-${side}`, `Accuracy, ${name(body, side)}`, accuracy[side]]),
    ["compare-difference", `Difference (${body.b} − ${body.a})`,
     { method: accuracy.method, assumption: accuracy.assumption, value: accuracy.difference, notes: [] },
     points(accuracy.difference),
     accuracy.p_value === null ? (accuracy.reason || "")
       : `p = ${accuracy.p_value.toPrecision(3)} (${accuracy.method})`],
  ]);
  drawDaily(body, meta);
  drawRecall(body);
  drawMix(body);
  drawCalibration(body);
  table(parts.classes, [{ label: "true class", text: true },
                        ...SIDES.map((side) => ({ label: `recall ${body[side]}`, text: true })),
                        { label: `${body.b} − ${body.a} (points)`,
                          format: (d) => (d === null ? "—" : (d * 100).toFixed(1)) },
                        { label: "adjusted p", format: (p) => (p === null ? "—" : p.toPrecision(3)) },
                        { label: "significant?", text: true }],
        body.recall.map((row, c) => [body.classes[c], ...SIDES.map((side) => recallWords(row[side])), row.difference,
                                     row.adjusted_p_value, significance(row, body)]));
}

// "yes: v2 higher" / "no" / why it cannot be tested, for the table (the verdict in full is its card's CSV).
function significance(row, body) {
  if (row.significant === null) return row.reason || "not testable";
  if (!row.significant) return "no";
  return `yes: ${row.difference > 0 ? body.b : body.a} higher`;
}

const recallWords = (estimate) => (estimate.value === null ? `— (n = ${count(estimate.n)})`
  : `${ratio(estimate.value)} (n = ${count(estimate.n)})`);

function drawDaily(body, meta) {
  const axis = timeAxis(body.by, body.periods, meta.timezone);
  const rows = body.accuracy_by_period;
  const reviews = (side) => rows[side].reduce((sum, e) => sum + e.n, 0);
  retitle(parts.daily, `Accuracy per ${body.by}, reviewed predictions: ${name(body, "a")} and ${body.b} `
          + `(n = ${count(reviews("a"))} and ${count(reviews("b"))} in the range)`,
          `The same ${body.by}s for both, bars: the 95 % Wilson interval. A ${body.by} without reviews of a side `
          + "has no point for it.");
  draw(parts.daily, "line", {
    labels: axis.labels,
    datasets: SIDES.map((side) => ({
      ...line(`${name(body, side)}`, rows[side].map((e) => e.value), css(COLORS[side])),
      whiskers: rows[side].map((e) => e.interval), whiskerColor: css(COLORS[side]) })),
  }, { plugins: { tooltip: { callbacks: { label: (item) => {
    const e = rows[SIDES[item.datasetIndex]][item.dataIndex];
    return `${item.dataset.label}: ${ratio(e.value)}, n = ${count(e.n)}`;
  } } } }, scales: { x: axis.x, y: { ...percentAxis, title: axisTitle("accuracy (%)") } } },
  { labelHead: axis.head, plugins: [whiskers] });
}

function drawRecall(body) {
  retitle(parts.recall, `Recall by true class, reviewed predictions: ${body.a} and ${body.b}`,
          "Of each true class's reviews, the share predicted as that class; bars: 95 % Wilson interval. Over the "
          + `${body.by}s with reviews of both.`);
  draw(parts.recall, "bar", {
    labels: body.classes,
    datasets: SIDES.map((side) => ({ label: name(body, side), data: body.recall.map((row) => row[side].value),
                                     backgroundColor: css(COLORS[side]), pointStyle: "rect",
                                     whiskers: body.recall.map((row) => row[side].interval) })),
  }, { scales: { x: { title: axisTitle("true class") }, y: { ...percentAxis, title: axisTitle("recall (%)") } } },
  { labelHead: "true class", plugins: [whiskers] });
}

function drawMix(body) {
  const mix = body.mix;
  retitle(parts.mix, `Prediction mix, all predictions: ${body.a} (n = ${count(mix.a.predictions)}) and ${body.b} `
          + `(n = ${count(mix.b.predictions)})`,
          `The share of each side's predictions given to each class, reviewed or not, over the ${body.by}s with `
          + "reviews of both.");
  const shares = (side) => mix[side].by_class.map((n) => (mix[side].predictions ? n / mix[side].predictions : null));
  draw(parts.mix, "bar", {
    labels: body.classes,
    datasets: SIDES.map((side) => ({ label: name(body, side), data: shares(side), backgroundColor: css(COLORS[side]),
                                     pointStyle: "rect" })),
  }, { plugins: { tooltip: { callbacks: { label: (item) => {
    const side = SIDES[item.datasetIndex];
    return `${item.dataset.label}: ${share(item.raw)} (${count(mix[side].by_class[item.dataIndex])} predictions)`;
  } } } }, scales: { x: { title: axisTitle("predicted class") },
                     y: { ...percentAxis, title: axisTitle("share of predictions (%)") } } },
  { labelHead: "predicted class" });
}

function drawCalibration(body) {
  const [a, b] = SIDES.map((side) => body.calibration[side]);
  const words = (side, curve) => `${body[side]}: ECE ${share(curve.ece)}, ${curve.direction || curve.reason || "—"}`;
  retitle(parts.calibration, `Reliability, reviewed predictions: ${body.a} and ${body.b}`,
          `Over the ${body.by}s with reviews of both, each point a confidence bin: across its mean confidence, up `
          + `the share right. ${words("a", a)}; `
          + `${words("b", b)}. ${assumes(a)}`);
  draw(parts.calibration, "scatter", {
    datasets: [
      { label: "perfect calibration", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0,
        borderColor: css("--calibration-diagonal"), backgroundColor: css("--calibration-diagonal"), borderDash: [6, 4],
        pointHoverRadius: 0, pointStyle: "line" },
      ...SIDES.map((side) => ({ label: name(body, side), pointRadius: 4, clip: false,
                                data: body.calibration[side].bins.map((b) => ({ x: b.confidence, y: b.accuracy })),
                                borderColor: css(COLORS[side]), backgroundColor: css(COLORS[side]) })),
    ],
  }, { scales: { x: { ...percentAxis, type: "linear", title: axisTitle("confidence the model gave (%)") },
                 y: { ...percentAxis, title: axisTitle("share right, reviewed (%)") } } });
}
