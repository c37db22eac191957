// Overview: totals, accuracy and averaged scores, samples per class, and the four metrics per day.
import { getJSON } from "../api.js";
import { SERIES_COLORS, card, draw, line, percentAxis } from "../charts.js";
import { count, ratio, tiles } from "../format.js";

export const id = "overview";
export const title = "Overview";
const AVERAGE = "macro";
let parts;

export function build(panel) {
  panel.innerHTML = `<div class="tiles"></div><div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  parts = { tiles: panel.querySelector(".tiles"),
            classes: card(grid, "overview-classes", "Reviewed samples per class (true class)"),
            daily: card(grid, "overview-daily", `Daily metrics (${AVERAGE} average) and reviewed samples`) };
}

export async function refresh({ range }) {
  const [summary, daily] = await Promise.all([getJSON("/api/summary", range), getJSON("/api/daily", range)]);
  const avg = (average, score) => summary.averages[average][score];
  tiles(parts.tiles, [
    ["reviews", "Reviewed samples", summary.reviews, count(summary.reviews)],
    ["pending", "Pending reviews", summary.pending, count(summary.pending)],
    ["accuracy", "Accuracy", summary.accuracy, ratio(summary.accuracy)],
    ...["macro", "weighted"].flatMap((average) => ["precision", "recall", "f1"].map((score) => [
      `${score}-${average}`, `${score === "f1" ? "F1" : score[0].toUpperCase() + score.slice(1)} (${average} avg.)`,
      avg(average, score), ratio(avg(average, score))])),
    ["rejected", "Rejected without class", summary.rejected_without_class, count(summary.rejected_without_class)],
  ]);
  draw(parts.classes, "bar", {
    labels: summary.classes,
    datasets: [{ label: "reviewed samples", data: summary.samples_by_class, backgroundColor: summary.colors }],
  }, { plugins: { legend: { display: false } } });
  draw(parts.daily, "line", {
    labels: daily.days,
    datasets: [
      line("accuracy", daily.accuracy, SERIES_COLORS.accuracy),
      ...["precision", "recall", "f1"].map((score) =>
        line(`${score} (${AVERAGE})`, daily[score][AVERAGE], SERIES_COLORS[score])),
      { type: "bar", label: "reviewed samples", data: daily.reviews, backgroundColor: SERIES_COLORS.reviews,
        yAxisID: "samples" },
    ],
  }, { scales: { y: percentAxis, samples: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                                             title: { display: true, text: "samples" } } } });
}
