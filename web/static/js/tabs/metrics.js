// Metrics: accuracy with its uncertainty (intervals, the unreviewed predictions' estimate, all traffic); one
// chart per metric per day, reviewed predictions, averaged scores showing both averagings, named, and the same
// numbers as a table (its CSV holds them exactly); the model's calibration; where the next reviews help most.
import { getJSON } from "../api.js";
import { SERIES_COLORS, axisTitle, card, draw, line, percentAxis, retitle, timeAxis } from "../charts.js";
import { count, ratio, table, tableCard } from "../format.js";
import * as accuracy from "../estimates/accuracy.js";
import * as calibration from "../estimates/calibration.js";
import * as hints from "../estimates/review_hints.js";

export const id = "metrics";
export const title = "Metrics";
const CHARTED = ["precision", "recall", "f1"];
const NAMES = { precision: "Precision", recall: "Recall", f1: "F1" };
const WHAT = {
  precision: "Of the predictions of a class, the share that were right; macro: every class weighs the same, "
    + "weighted: classes weigh by their number of reviews.",
  recall: "Of the reviews of a true class, the share the model predicted right; macro and weighted averages.",
  f1: "Harmonic mean of precision and recall per class, then averaged (macro and weighted).",
};
let canvases, daily;

export function build(panel) {
  accuracy.build(panel);
  const scores = document.createElement("div");
  scores.className = "block";
  scores.innerHTML = `<h2 class="section scores-head">Scores per day, reviewed predictions</h2><div class="grid"></div>`;
  panel.append(scores);
  const grid = scores.querySelector(".grid");
  // Accuracy per day is drawn once, with its band, in "Accuracy with its uncertainty" above.
  canvases = Object.fromEntries(CHARTED.map((metric) => [metric, card(grid, `metrics-${metric}`,
    `${NAMES[metric]} per day (macro and weighted averages), reviewed predictions`,
    `${WHAT[metric]} Per local day of prediction; a day without reviews has no value (a gap).`)]));
  daily = tableCard(scores, "metrics-daily", "Daily metrics, reviewed predictions",
                    "Every score of every day in the range; “—”: no reviews that day.");
  calibration.build(panel);
  hints.build(panel);
}

export async function refresh(view) {
  await Promise.all([drawScores(view), accuracy.refresh(view), calibration.refresh(view), hints.refresh(view)]);
}

async function drawScores({ meta, range, by }) {
  const body = await getJSON("/api/daily", { ...range, by });
  const per = body.by;
  const periods = body[`${per}s`];
  const axis = timeAxis(per, periods, meta.timezone);
  document.querySelector("#panel-metrics .scores-head").textContent = `Scores per ${per}, reviewed predictions`;
  for (const metric of CHARTED) {
    retitle(canvases[metric], `${NAMES[metric]} per ${per} (macro and weighted averages), reviewed predictions`,
            `${WHAT[metric]} Per local ${per} of prediction; ${per === "hour" ? "an hour" : "a day"} without reviews `
            + "has no value (a gap).");
    const datasets = [line(`${metric} (macro)`, body[metric].macro, SERIES_COLORS[metric]),
                      line(`${metric} (weighted)`, body[metric].weighted, SERIES_COLORS[metric],
                           { borderDash: [6, 4], pointStyle: "rectRot", pointRadius: 4 })];
    draw(canvases[metric], "line", { labels: axis.labels, datasets },
         { scales: { x: axis.x, y: { ...percentAxis, title: axisTitle(`% (${metric === "f1" ? "F1 score" : metric})`) } } },
         { labelHead: axis.head });
  }
  const scores = ["precision", "recall", "f1"].flatMap((score) => ["macro", "weighted"].map((average) => [score, average]));
  const columns = [{ label: axis.head, text: true }, { label: "reviews", format: count },
                   { label: "accuracy", format: ratio },
                   ...scores.map(([score, average]) => ({ label: `${score} ${average}`, format: ratio }))];
  retitle(daily, `${per === "hour" ? "Hourly" : "Daily"} metrics, reviewed predictions`,
          `Every score of every ${per} in the range; “—”: no reviews that ${per}.`);
  table(daily, columns, axis.labels.map((period, i) => [
    period, body.reviews[i], body.accuracy[i], ...scores.map(([score, average]) => body[score][average][i])]));
}
