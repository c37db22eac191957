// Overview: today so far and the range's volume of ALL predictions (stacked by where their review stands)
// with the review coverage; then the reviewed predictions' totals, accuracy and averaged scores.
import { getJSON } from "../api.js";
import { SERIES_COLORS, axisTitle, card, css, draw, line, percentAxis, retitle, timeAxis } from "../charts.js";
import { count, ratio, share, tiles } from "../format.js";
import { titled } from "../scope.js";

export const id = "overview";
export const title = "Overview";
const AVERAGE = "macro";
// The stack of the volume chart, bottom to top: [API series, legend label, CSS colour].
const STACK = [
  ["reviewed", "reviewed (true class known)", "--volume-reviewed"],
  ["rejected", "rejected without a class", "--volume-rejected"],
  ["pending", "pending review", "--volume-pending"],
  ["bad", "bad (set aside)", "--volume-bad"],
];
let parts;

export function build(panel) {
  panel.innerHTML = `
    <h2 class="today"></h2><div class="tiles today-tiles"></div>
    <h2 class="section">All predictions in the range</h2><div class="tiles volume-tiles"></div>
    <div class="grid volume-grid"></div>
    <h2 class="section">Reviewed predictions in the range</h2><div class="tiles range-tiles"></div>
    <div class="grid review-grid"></div>`;
  const volumeGrid = panel.querySelector(".volume-grid");
  const reviewGrid = panel.querySelector(".review-grid");
  parts = { today: panel.querySelector("h2.today"), todayTiles: panel.querySelector(".today-tiles"),
            volumeTiles: panel.querySelector(".volume-tiles"), tiles: panel.querySelector(".range-tiles"),
            volume: card(volumeGrid, "overview-volume", "Predictions per day, all predictions"),
            coverage: card(volumeGrid, "overview-coverage", "Review coverage per day, all predictions"),
            classes: card(reviewGrid, "overview-classes", "Reviewed predictions per true class",
                          "How many reviews each class got in the range: the sample the scores rest on. "
                          + "Reviews rejected without a class have no true class and are not in it."),
            daily: card(reviewGrid, "overview-daily", `Scores per day (${AVERAGE} average), reviewed predictions`,
                        "Accuracy and the macro average (every class weighs the same) of precision, recall and F1, "
                        + "per local day of prediction; bars: that day's reviews (right axis). "
                        + "A day without reviews has no value: a gap, never a zero.") };
}

function drawVolume(volume, meta) {
  const per = volume.by;
  const axis = timeAxis(per, volume.periods, meta.timezone);
  const total = volume.total;
  retitle(parts.volume, `Predictions per ${per}, all predictions (n = ${count(total.predictions)})`,
          "Every prediction the model made, counted when it was inserted, stacked by where its review stands. "
          + "Bad: broke the record contract and was set aside (see Data health).");
  tiles(parts.volumeTiles, [
    ["range-predictions", "Predictions", total.predictions, count(total.predictions)],
    ["pending", "Pending review", total.pending, count(total.pending)],
    ["range-coverage", "Review coverage", total.coverage, share(total.coverage)],
    ["range-bad", "Bad (set aside)", total.bad, count(total.bad)],
  ]);
  const { labels } = axis;
  draw(parts.volume, "bar", {
    labels,
    datasets: STACK.map(([key, label, color]) => ({ label, data: volume[key], backgroundColor: css(color),
                                                    stack: "predictions", pointStyle: "rect" })),
  }, {
    interaction: { mode: "index", intersect: false },
    plugins: { tooltip: { callbacks: {
      footer: (items) => {
        const i = items[0].dataIndex;
        return volume.predictions[i] === null ? "" :
          `all predictions: ${count(volume.predictions[i])}; coverage ${share(volume.coverage[i])}`;
      } } } },
    scales: {
      x: { ...axis.x, stacked: true },
      y: { stacked: true, beginAtZero: true, title: axisTitle(`predictions per ${per}`) },
    },
  }, { labelHead: axis.head });
  retitle(parts.coverage, `Review coverage per ${per}, all predictions (${count(total.reviews)} of `
          + `${count(total.reviews + total.pending)} reviewed, ${share(total.coverage)})`,
          `Share of the ${per}'s predictions that reviewers have reviewed so far: reviews ÷ (reviews + pending). `
          + `No value for ${per === "hour" ? "an hour" : "a day"} without predictions.`);
  draw(parts.coverage, "line", {
    labels,
    datasets: [line("review coverage", volume.coverage, css("--coverage"), { pointRadius: per === "hour" ? 1 : 3 })],
  }, {
    plugins: { legend: { display: false }, tooltip: { callbacks: {
      label: (item) => {
        const i = item.dataIndex;
        return `coverage ${share(volume.coverage[i])}: ${count(volume.reviews[i])} of `
          + `${count(volume.reviews[i] + volume.pending[i])} reviewed`;
      } } } },
    scales: { x: axis.x, y: { ...percentAxis, title: axisTitle("% of predictions reviewed") } },
  }, { labelHead: axis.head });
}

function drawToday(today, meta) {
  titled(parts.today, `Today so far (${today.day}, ${meta.timezone}), all predictions`);
  tiles(parts.todayTiles, [
    ["today-predictions", "Predictions today", today.predictions, count(today.predictions)],
    ["today-reviewed", "Reviewed today (of today's predictions)", today.reviews, count(today.reviews)],
    ["today-pending", "Pending review", today.pending, count(today.pending)],
    ["today-coverage", "Review coverage today", today.coverage, share(today.coverage)],
    ["today-bad", "Bad (set aside)", today.bad, count(today.bad)],
  ]);
}

export async function refresh({ meta, range, by }) {
  const [summary, daily, volume] = await Promise.all([
    getJSON("/api/summary", range), getJSON("/api/daily", { ...range, by }), getJSON("/api/volume", { ...range, by })]);
  drawToday(volume.today, meta);
  drawVolume(volume, meta);
  const avg = (average, score) => summary.averages[average][score];
  tiles(parts.tiles, [
    ["reviews", "Reviewed samples", summary.reviews, count(summary.reviews)],
    ["accuracy", "Accuracy", summary.accuracy, ratio(summary.accuracy)],
    ...["macro", "weighted"].flatMap((average) => ["precision", "recall", "f1"].map((score) => [
      `${score}-${average}`, `${score === "f1" ? "F1" : score[0].toUpperCase() + score.slice(1)} (${average} avg.)`,
      avg(average, score), ratio(avg(average, score))])),
    ["rejected", "Rejected without class", summary.rejected_without_class, count(summary.rejected_without_class)],
  ]);
  retitle(parts.classes, `Reviewed predictions per true class (n = ${count(summary.reviews)})`);
  draw(parts.classes, "bar", {
    labels: summary.classes,
    datasets: [{ label: "reviewed samples", data: summary.samples_by_class, backgroundColor: summary.colors }],
  }, { plugins: { legend: { display: false } },
       scales: { x: { title: axisTitle("true class") }, y: { beginAtZero: true, title: axisTitle("reviews") } } },
  { labelHead: "true class" });
  const axis = timeAxis(daily.by, daily[`${daily.by}s`], meta.timezone);
  const per = daily.by;
  retitle(parts.daily, `Scores per ${per} (${AVERAGE} average), reviewed predictions (n = ${count(summary.reviews)})`,
          "Accuracy and the macro average (every class weighs the same) of precision, recall and F1, "
          + `per local ${per} of prediction; bars: that ${per}'s reviews (right axis). `
          + `${per === "hour" ? "An hour" : "A day"} without reviews has no value: a gap, never a zero.`);
  draw(parts.daily, "line", {
    labels: axis.labels,
    datasets: [
      line("accuracy", daily.accuracy, SERIES_COLORS.accuracy),
      ...["precision", "recall", "f1"].map((score) =>
        line(`${score} (${AVERAGE})`, daily[score][AVERAGE], SERIES_COLORS[score])),
      { type: "bar", label: "reviewed samples", data: daily.reviews, backgroundColor: SERIES_COLORS.reviews,
        yAxisID: "samples" },
    ],
  }, { scales: { x: axis.x,
                 y: { ...percentAxis, title: axisTitle("score") },
                 samples: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                            title: axisTitle(`reviews per ${per}`) } } }, { labelHead: axis.head });
}
