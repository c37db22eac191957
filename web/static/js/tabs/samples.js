// Samples by class: the reviewed predictions per class, by true class and by predicted class, as grouped bars
// and as a table with shares and totals.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, retitle } from "../charts.js";
import { count, share, table, tableCard } from "../format.js";

export const id = "samples";
export const title = "Samples by class";
let bar, counts;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  bar = card(grid, "samples-bar", "Reviewed predictions per class", "", { wide: true });
  counts = tableCard(grid, "samples-counts", "Reviewed predictions per class: counts and shares");
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

export async function refresh({ range }) {
  const summary = await getJSON("/api/summary", range);
  const byTrue = summary.samples_by_class, byPredicted = summary.predicted_by_class;
  const nTrue = sum(byTrue), nPredicted = sum(byPredicted);
  retitle(bar, `Reviewed predictions per class, by true and by predicted class (n = ${count(summary.reviews)} reviews)`,
          "Where the reviews fall: by the class reviewers confirmed and by the class the model predicted. A class "
          + "with few reviews has uncertain scores. Reviews rejected without a class count only by predicted class.");
  draw(bar, "bar", {
    labels: summary.classes,
    datasets: [
      { label: `true class (n = ${count(nTrue)})`, data: byTrue, backgroundColor: css("--mix-reviewed"), pointStyle: "rect" },
      { label: `predicted class (n = ${count(nPredicted)})`, data: byPredicted, backgroundColor: css("--mix-all"),
        pointStyle: "triangle" },
    ],
  }, { scales: { x: { title: axisTitle("class") }, y: { beginAtZero: true, title: axisTitle("reviews") } } },
  { labelHead: "class" });
  table(counts, [{ label: "class", text: true }, { label: "by true class", format: count }, { label: "share", format: share },
                 { label: "by predicted class", format: count }, { label: "share", format: share }],
        summary.classes.map((name, c) => [name, byTrue[c], nTrue ? byTrue[c] / nTrue : null,
                                          byPredicted[c], nPredicted ? byPredicted[c] / nPredicted : null]),
        { foot: [["total", nTrue, nTrue ? 1 : null, nPredicted, nPredicted ? 1 : null]] });
}
