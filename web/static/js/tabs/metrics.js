// Metrics: one chart per metric per day, reviewed predictions; averaged scores show both averagings, named;
// and the same numbers as a table (its CSV holds them exactly).
import { getJSON } from "../api.js";
import { SERIES_COLORS, axisTitle, card, draw, line, percentAxis } from "../charts.js";
import { count, ratio, table, tableCard } from "../format.js";

export const id = "metrics";
export const title = "Metrics";
const METRICS = ["accuracy", "precision", "recall", "f1"];
const NAMES = { accuracy: "Accuracy", precision: "Precision", recall: "Recall", f1: "F1" };
const WHAT = {
  accuracy: "Share of the day's reviewed predictions whose true class is the predicted class.",
  precision: "Of the predictions of a class, the share that were right; macro: every class weighs the same, "
    + "weighted: classes weigh by their number of reviews.",
  recall: "Of the reviews of a true class, the share the model predicted right; macro and weighted averages.",
  f1: "Harmonic mean of precision and recall per class, then averaged (macro and weighted).",
};
let canvases, daily;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  canvases = Object.fromEntries(METRICS.map((metric) => [metric, card(grid, `metrics-${metric}`,
    `${NAMES[metric]} per day${metric === "accuracy" ? "" : " (macro and weighted averages)"}, reviewed predictions`,
    `${WHAT[metric]} Per local day of prediction; a day without reviews has no value (a gap).`)]));
  daily = tableCard(panel, "metrics-daily", "Daily metrics, reviewed predictions",
                    "Every score of every day in the range; “—”: no reviews that day.");
}

export async function refresh({ meta, range }) {
  const body = await getJSON("/api/daily", range);
  const x = { title: axisTitle(`local day (${meta.timezone})`) };
  for (const metric of METRICS) {
    const datasets = metric === "accuracy"
      ? [line("accuracy", body.accuracy, SERIES_COLORS.accuracy)]
      : [line(`${metric} (macro)`, body[metric].macro, SERIES_COLORS[metric]),
         line(`${metric} (weighted)`, body[metric].weighted, SERIES_COLORS[metric],
              { borderDash: [6, 4], pointStyle: "rectRot", pointRadius: 4 })];
    draw(canvases[metric], "line", { labels: body.days, datasets },
         { scales: { x, y: { ...percentAxis, title: axisTitle(`% (${metric === "f1" ? "F1 score" : metric})`) } } },
         { labelHead: "day" });
  }
  const scores = ["precision", "recall", "f1"].flatMap((score) => ["macro", "weighted"].map((average) => [score, average]));
  const columns = [{ label: "day", text: true }, { label: "reviews", format: count }, { label: "accuracy", format: ratio },
                   ...scores.map(([score, average]) => ({ label: `${score} ${average}`, format: ratio }))];
  table(daily, columns, body.days.map((day, i) => [
    day, body.reviews[i], body.accuracy[i], ...scores.map(([score, average]) => body[score][average][i])]));
}
