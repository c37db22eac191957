// Confusion matrix of the reviewed predictions: one heatmap (chartjs-chart-matrix) whose cells show the count
// and the rate within the true class (the row), coloured by that rate on a scale shown below it; and the
// counts as a table with row and column totals.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, retitle } from "../charts.js";
import { count, ratio, share, table, tableCard } from "../format.js";

export const id = "confusion";
export const title = "Confusion matrix";
let heat, counts;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  heat = card(grid, "confusion-counts", "Confusion matrix, reviewed predictions", "", { wide: true });
  heat.closest(".card").classList.add("tall");
  const scale = document.createElement("div");
  scale.className = "scale";
  scale.innerHTML = `<span>colour: share of the row</span><span class="ends">0 %<span class="ramp"></span>100 %</span>`;
  heat.closest(".chart").after(scale);
  counts = tableCard(grid, "confusion-table", "Counts, reviewed predictions (rows: true class, columns: predicted class)",
                     "Totals: a row's total is that true class's reviews, a column's the reviewed predictions of that "
                     + "class. Recall = diagonal ÷ row total; precision = diagonal ÷ column total.");
  counts.closest(".card").classList.add("wide");
}

function rgb(hex) {
  const h = hex.replace("#", "");
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

// A colour between the scale's ends, for a rate 0..1.
function heatColor(rate) {
  const [low, high] = [rgb(css("--heat-low")), rgb(css("--heat-high"))];
  const mix = low.map((l, i) => Math.round(l + (high[i] - l) * rate));
  return `rgb(${mix.join(",")})`;
}

// Writes each cell's count and rate in it, in a colour that stands out from the cell's.
const cellText = {
  id: "cellText",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    const meta = chart.getDatasetMeta(0);
    const [light, dark] = [css("--heat-text-light"), css("--heat-text-dark")];
    ctx.save();
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    meta.data.forEach((element, i) => {
      const cell = chart.data.datasets[0].data[i];
      const { x, y, width, height } = element.getProps(["x", "y", "width", "height"], true);
      const size = Math.max(9, Math.min(14, width / 5, height / 3));
      ctx.fillStyle = (cell.r ?? 0) > 0.55 ? light : dark;
      ctx.font = `600 ${size}px ${chart.options.font?.family || "sans-serif"}`;
      const rate = cell.r === null ? "—" : `${(cell.r * 100).toFixed(width > 60 ? 1 : 0)} %`;
      if (height >= size * 2.6) {
        ctx.fillText(count(cell.v), x + width / 2, y + height / 2 - size * 0.6);
        ctx.font = `${size * 0.9}px ${chart.options.font?.family || "sans-serif"}`;
        ctx.fillText(rate, x + width / 2, y + height / 2 + size * 0.65);
      } else {
        ctx.fillText(count(cell.v), x + width / 2, y + height / 2);
      }
    });
    ctx.restore();
  },
};

export async function refresh({ range }) {
  const body = await getJSON("/api/confusion", range);
  const { classes, matrix, rates, rejected } = body;
  const n = classes.length;
  const rowTotals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const columnTotals = classes.map((_, p) => matrix.reduce((a, row) => a + row[p], 0));
  const reviews = rowTotals.reduce((a, b) => a + b, 0);
  const cells = matrix.flatMap((row, t) => row.map((v, p) => ({ x: classes[p], y: classes[t], v, r: rates[t][p] })));
  retitle(heat, `Confusion matrix, reviewed predictions (n = ${count(reviews)} with a true class)`,
          "Each cell: how many reviews of the true class (row) the model predicted as the column's class, and that "
          + "share of the row. The diagonal is right; a dark cell off it is a frequent confusion. "
          + `Totals in the axis labels. Rejected without a class (${count(rejected.reduce((a, b) => a + b, 0))}) are `
          + "not in the matrix: they have no true class.");
  draw(heat, "matrix", {
    datasets: [{
      label: "reviews", data: cells,
      backgroundColor: (ctx) => heatColor(ctx.raw ? ctx.raw.r ?? 0 : 0),
      borderColor: css("--card-bg"), borderWidth: 1,
      width: ({ chart }) => (chart.chartArea || {}).width / n - 2,
      height: ({ chart }) => (chart.chartArea || {}).height / n - 2,
    }],
  }, {
    plugins: { legend: { display: false }, tooltip: { callbacks: {
      title: () => "", label: (ctx) => `true ${ctx.raw.y}, predicted ${ctx.raw.x}: ${count(ctx.raw.v)} `
        + `(${share(ctx.raw.r)} of the true class)` } } },
    scales: {
      x: { type: "category", labels: classes, offset: true, position: "top", grid: { display: false },
           title: axisTitle("predicted class (column total)"),
           ticks: { callback: (_, i) => [classes[i], `(${count(columnTotals[i])})`], maxRotation: 60, autoSkip: false } },
      // Rows top-down, true class 0 at the top as in the counts table. A vertical category axis runs top-down
      // by itself, but chartjs-chart-matrix's defaults set y.reverse (for linear axes): it must be turned off
      // here, not just left out.
      y: { type: "category", labels: classes, offset: true, reverse: false, grid: { display: false },
           title: axisTitle("true class (row total)"),
           ticks: { callback: (_, i) => [classes[i], `(${count(rowTotals[i])})`], autoSkip: false } },
    },
  }, {
    plugins: [cellText],
    csv: () => [["true class", "predicted class", "count", "share of the true class"],
                ...cells.map((c) => [c.y, c.x, c.v, c.r])],
  });
  const columns = [{ label: "true \\ predicted", text: true }, ...classes.map((name) => ({ label: name, format: count })),
                   { label: "total", format: count }, { label: "recall", format: ratio }];
  table(counts, columns,
        classes.map((name, t) => [name, ...matrix[t], rowTotals[t], rowTotals[t] ? matrix[t][t] / rowTotals[t] : null]),
        { foot: [
          ["rejected without class", ...rejected, rejected.reduce((a, b) => a + b, 0), null],
          ["total", ...columnTotals.map((c, p) => c + rejected[p]), reviews + rejected.reduce((a, b) => a + b, 0), null],
          Object.assign(["precision", ...columnTotals.map((c, p) => (c + rejected[p] ? matrix[p][p] / (c + rejected[p]) : null)),
                         null, null], { format: ratio }),
        ] });
}
