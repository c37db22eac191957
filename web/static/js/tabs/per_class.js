// Metrics by class: precision, recall and F1 of each class, reviewed predictions, with the reviews they rest on.
import { getJSON } from "../api.js";
import { axisTitle, card, draw, percentAxis } from "../charts.js";
import { count, ratio, table, tableCard } from "../format.js";

export const id = "per-class";
export const title = "Metrics by class";
const SCORES = ["precision", "recall", "f1"];
const TITLES = {
  precision: ["Precision by predicted class, reviewed predictions",
              "Of the predictions of each class, the share whose true class it was. No bar: never predicted."],
  recall: ["Recall by true class, reviewed predictions",
           "Of the reviews of each true class, the share the model predicted as that class. No bar: no reviews."],
  f1: ["F1 by class, reviewed predictions", "Harmonic mean of the class's precision and recall."],
};
let canvases, scores;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  canvases = Object.fromEntries(SCORES.map((score) => [score, card(grid, `per-class-${score}`, ...TITLES[score])]));
  scores = tableCard(grid, "per-class-scores", "Scores by class, reviewed predictions",
                     "Support: reviews of the true class; predicted: reviewed predictions of the class.");
}

export async function refresh({ range }) {
  const body = await getJSON("/api/classes", range);
  for (const score of SCORES) {
    draw(canvases[score], "bar", {
      labels: body.classes,
      datasets: [{ label: score, data: body[score], backgroundColor: body.colors }],
    }, { scales: { x: { title: axisTitle("class") }, y: { ...percentAxis, title: axisTitle(`% (${score === "f1" ? "F1 score" : score})`) } },
         plugins: { legend: { display: false }, tooltip: { callbacks: {
           footer: (items) => `${count(body.support[items[0].dataIndex])} reviews of this true class` } } } },
    { labelHead: "class" });
  }
  table(scores, [{ label: "class", text: true }, ...SCORES.map((s) => ({ label: s, format: ratio })),
                 { label: "support", format: count }, { label: "predicted", format: count }],
        body.classes.map((name, c) => [name, ...SCORES.map((s) => body[s][c]), body.support[c], body.predicted[c]]));
}
