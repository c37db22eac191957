// Confusion matrix: counts and row-normalised rates as heatmaps (chartjs-chart-matrix), and as a table.
import { getJSON } from "../api.js";
import { card, draw } from "../charts.js";
import { table } from "../format.js";

export const id = "confusion";
export const title = "Confusion matrix";
let counts, rates, tableBox;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div><div class="card"><h2>Counts (rows: true class, columns: predicted class)</h2><div class="table"></div></div>`;
  const grid = panel.querySelector(".grid");
  counts = card(grid, "confusion-counts", "Counts");
  rates = card(grid, "confusion-rates", "Rates, normalised by true class (row)");
  tableBox = panel.querySelector(".table");
}

function heatmap(canvas, classes, values, intensity, label) {
  const n = classes.length;
  const cells = values.flatMap((row, t) => row.map((v, p) => ({ x: classes[p], y: classes[t], v })));
  draw(canvas, "matrix", {
    datasets: [{
      label, data: cells,
      backgroundColor: (ctx) => `rgba(31, 119, 180, ${0.08 + 0.92 * intensity(ctx.raw ? ctx.raw.v : 0)})`,
      borderColor: "rgba(0,0,0,0.15)", borderWidth: 1,
      width: ({ chart }) => (chart.chartArea || {}).width / n - 2,
      height: ({ chart }) => (chart.chartArea || {}).height / n - 2,
    }],
  }, {
    plugins: { legend: { display: false }, tooltip: { callbacks: {
      title: () => "", label: (ctx) => `true ${ctx.raw.y}, predicted ${ctx.raw.x}: ${ctx.raw.v ?? "—"}` } } },
    scales: {
      x: { type: "category", labels: classes, offset: true, title: { display: true, text: "predicted" }, grid: { display: false } },
      y: { type: "category", labels: classes, offset: true, reverse: false, title: { display: true, text: "true" }, grid: { display: false } },
    },
  });
}

export async function refresh({ range }) {
  const body = await getJSON("/api/confusion", range);
  const max = Math.max(1, ...body.matrix.flat());
  heatmap(counts, body.classes, body.matrix, (v) => v / max, "count");
  heatmap(rates, body.classes, body.rates, (v) => v ?? 0, "rate");
  table(tableBox, ["true \\ predicted", ...body.classes],
        [...body.classes.map((name, t) => [name, ...body.matrix[t].map(String)]),
         ["rejected without class", ...body.rejected.map(String)]]);
}
