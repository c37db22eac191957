// Metrics: one chart per metric per day; averaged scores show both averagings, named.
import { getJSON } from "../api.js";
import { SERIES_COLORS, card, draw, line, percentAxis } from "../charts.js";

export const id = "metrics";
export const title = "Metrics";
const METRICS = ["precision", "accuracy", "recall", "f1"];
let canvases;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  canvases = Object.fromEntries(METRICS.map((metric) =>
    [metric, card(grid, `metrics-${metric}`, `${metric === "f1" ? "F1" : metric} per day`)]));
}

export async function refresh({ range }) {
  const daily = await getJSON("/api/daily", range);
  for (const metric of METRICS) {
    const datasets = metric === "accuracy"
      ? [line("accuracy", daily.accuracy, SERIES_COLORS.accuracy)]
      : [line(`${metric} (macro)`, daily[metric].macro, SERIES_COLORS[metric]),
         line(`${metric} (weighted)`, daily[metric].weighted, SERIES_COLORS[metric], { borderDash: [6, 4] })];
    draw(canvases[metric], "line", { labels: daily.days, datasets }, { scales: { y: percentAxis } });
  }
}
