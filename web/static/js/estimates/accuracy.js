// Accuracy with its uncertainty, on the Metrics tab: the range's headline numbers with their intervals (tiles,
// their method and assumption one hover away and in "What these numbers assume"), and per day the reviewed
// predictions' accuracy inside its 95 % Wilson band, a day with too few reviews drawn as a hollow point; beside
// it the estimated accuracy of the unreviewed predictions (dashed) and the combined accuracy of all predictions.
import { getJSON } from "../api.js";
import { SERIES_COLORS, axisTitle, card, css, draw, line, retitle, timeAxis } from "../charts.js";
import { assumes, count, estimateTiles, intervalWords, ratio } from "../format.js";

// The estimate methods in words, for legends and titles: [in full, short enough for a phone's legend].
export const METHODS = {
  post_stratified: ["post-stratified by confidence", "post-stratified"],
  average_confidence: ["average confidence", "average confidence"],
  doc: ["difference of confidences (DoC)", "DoC"],
  atc: ["average thresholded confidence (ATC)", "ATC"],
  atc_weighted: ["ATC, weighted", "ATC, weighted"],
};
const NARROW = 600;   // px: below it the legend's labels are shortened, a phone's legend cannot wrap them
let parts;

export function build(parent) {
  const section = document.createElement("div");
  section.className = "block accuracy-estimates";
  section.innerHTML = `
    <h2 class="section">Accuracy with its uncertainty</h2>
    <p class="section-what">Reviewed predictions are a sample: each number carries its 95 % interval and the number
      of reviews it rests on (n). The unreviewed predictions' accuracy is estimated from the reviewed ones at the same
      confidence.</p>
    <div class="tiles estimate-tiles"></div>
    <div class="grid"></div>
    <details class="notes assumptions"><summary>What these numbers assume</summary><dl></dl></details>`;
  parent.append(section);
  parts = { tiles: section.querySelector(".estimate-tiles"), assumptions: section.querySelector(".assumptions dl"),
            chart: card(section.querySelector(".grid"), "metrics-accuracy-interval",
                        "Accuracy per day with its 95 % interval: reviewed predictions, unreviewed (estimated) "
                        + "and all predictions", "", { wide: true }) };
}

const value = (estimate) => (estimate ? estimate.value : null);
const low = (estimate) => (estimate && estimate.interval ? estimate.interval.low : null);
const high = (estimate) => (estimate && estimate.interval ? estimate.interval.high : null);

function define(items) {
  parts.assumptions.replaceChildren(...items.flatMap(([term, estimate]) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = assumes(estimate);
    return [dt, dd];
  }));
}

export async function refresh({ meta, range, by }) {
  const [intervals, unreviewed] = await Promise.all([getJSON("/api/intervals", { ...range, by }),
                                                     getJSON("/api/unreviewed", { ...range, by })]);
  const per = by, rows = intervals[`${per}s`], rest = unreviewed[`${per}s`];
  const a = per === "hour" ? "an hour" : "a day";
  const [method, short] = METHODS[unreviewed.method] || [unreviewed.method, unreviewed.method];
  const narrow = window.innerWidth < NARROW;
  const names = narrow
    ? { band: "95 % interval (Wilson)", realized: "reviewed: accuracy", few: `under ${intervals.min_reviews} reviews (uncertain)`,
        estimated: `unreviewed: estimated (${short})`, combined: "all predictions: combined" }
    : { band: "95 % interval (Wilson), reviewed predictions", realized: "reviewed predictions: accuracy (realized)",
        few: `${per} with fewer than ${intervals.min_reviews} reviews (uncertain)`,
        estimated: `unreviewed predictions: estimated (${method})`,
        combined: "all predictions: combined (realized + estimated)" };
  const { total } = intervals;
  const all = unreviewed.total;
  estimateTiles(parts.tiles, [
    ["accuracy-interval", "Accuracy, reviewed predictions", total.accuracy],
    ["f1-macro-interval", "F1 (macro avg.), reviewed predictions", total.f1.macro],
    ["f1-weighted-interval", "F1 (weighted avg.), reviewed predictions", total.f1.weighted],
    ["unreviewed-estimate", `Accuracy, unreviewed predictions: estimated (${method})`, all.estimate, undefined,
     `${intervalWords(all.estimate)}; ${count(all.unreviewed)}\u00a0unreviewed`],
    ["combined-accuracy", "Accuracy, all predictions (reviewed + estimated)", all.combined, undefined,
     `${intervalWords(all.combined)}; ${count(all.predictions)}\u00a0predictions`],
  ]);
  define([["Accuracy of reviewed predictions (and its band)", total.accuracy],
          ["F1, macro and weighted", total.f1.macro],
          [`Estimated accuracy of unreviewed predictions (${method})`, all.estimate],
          ["Accuracy of all predictions", all.combined]]);

  const axis = timeAxis(per, rows.map((d) => d[per]), meta.timezone);
  const days = axis.labels;
  const acc = rows.map((d) => d.accuracy);
  const uncertain = rows.map((d) => d.uncertain && d.reviews > 0);
  const estimated = rest.map((d) => d.estimate);
  const combined = rest.map((d) => d.combined);
  const color = SERIES_COLORS.accuracy, hollow = css("--card-bg");
  const lows = [...acc, ...estimated, ...combined].map(low).filter((v) => v !== null);
  const floor = lows.length ? Math.max(0, Math.floor(Math.min(...lows) * 10) / 10) : 0;
  const few = uncertain.filter(Boolean).length;
  retitle(parts.chart, `Accuracy per ${per} with its 95 % interval: reviewed predictions (n = ${count(total.reviews)}), `
          + `unreviewed (estimated) and all predictions`,
          `Solid line: the share of the ${per}'s reviewed predictions that were right, inside its 95 % Wilson band. `
          + `Hollow point: fewer than ${intervals.min_reviews} reviews that ${per}, so the value is uncertain (drawn, `
          + `not hidden${few ? `: ${few} ${per}${few === 1 ? "" : "s"} here` : ""}). Dashed: the estimated accuracy of `
          + `the predictions nobody reviewed (${method}); dotted: all predictions, realized where reviewed and estimated `
          + `elsewhere. ${a[0].toUpperCase()}${a.slice(1)} without reviews has no value (a gap). Assumptions: “What these `
          + "numbers assume” below.");
  const band = { pointRadius: 0, pointHoverRadius: 0, borderWidth: 0, band: true, backgroundColor: css("--band-accuracy") };
  draw(parts.chart, "line", {
    labels: days,
    datasets: [
      line("95 % interval low", acc.map(low), "transparent", { ...band, fill: false }),
      line(names.band, acc.map(high), "transparent",
           { ...band, fill: "-1", pointStyle: "rect" }),
      line(names.realized, acc.map(value), color, {
        pointRadius: 4, pointHoverRadius: 6, borderWidth: 2,
        pointBackgroundColor: uncertain.map((u) => (u ? hollow : color)),
        pointBorderWidth: uncertain.map((u) => (u ? 2 : 1)) }),
      line(names.few, days.map(() => null), color,
           { pointBackgroundColor: hollow, pointBorderWidth: 2, pointRadius: 4 }),
      line(names.estimated, estimated.map(value), css("--series-estimated"),
           { borderDash: [7, 4], pointStyle: "rectRot", pointRadius: 4, borderWidth: 2, estimate: estimated }),
      line(names.combined, combined.map(value), css("--series-combined"),
           { borderDash: [2, 3], pointStyle: "triangle", pointRadius: 4, borderWidth: 2, estimate: combined }),
    ],
  }, {
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: { labels: { filter: (item, data) => !data.datasets[item.datasetIndex].label.endsWith("low") } },
      tooltip: {
        filter: (item) => !item.dataset.band && item.raw !== null,
        callbacks: {
          label: (item) => {
            const i = item.dataIndex;
            const estimate = item.datasetIndex === 2 ? acc[i] : item.dataset.estimate[i];
            return `${item.dataset.label.split(":")[0]}: ${ratio(item.raw)} (${intervalWords(estimate)})`;
          },
          footer: (items) => {
            const i = items[0].dataIndex;
            const row = rows[i];
            return `${count(row.reviews)} reviews${row.uncertain ? " (uncertain: too few)" : ""}; `
              + `${count(rest[i].unreviewed)} unreviewed`;
          },
        } },
    },
    scales: { x: axis.x,
              y: { min: floor, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)} %` },
                   title: axisTitle("accuracy (% right)") } },
  }, { csv: () => [
    [axis.head, "reviews", "uncertain", "accuracy (reviewed)", "low", "high", `estimated unreviewed (${unreviewed.method})`,
     "low", "high", "unreviewed", "combined all predictions", "low", "high"],
    ...days.map((day, i) => [day, rows[i].reviews, rows[i].uncertain, value(acc[i]), low(acc[i]),
                             high(acc[i]), value(estimated[i]), low(estimated[i]), high(estimated[i]),
                             rest[i].unreviewed, value(combined[i]), low(combined[i]), high(combined[i])]),
  ] });
}
