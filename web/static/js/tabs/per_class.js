// Metrics by class: precision, recall and F1 of each class.
import { getJSON } from "../api.js";
import { card, draw, percentAxis } from "../charts.js";

export const id = "per-class";
export const title = "Metrics by class";
const SCORES = ["precision", "recall", "f1"];
let canvases;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  canvases = Object.fromEntries(SCORES.map((score) =>
    [score, card(grid, `per-class-${score}`, `${score === "f1" ? "F1" : score} by class`)]));
}

export async function refresh({ range }) {
  const body = await getJSON("/api/classes", range);
  for (const score of SCORES) {
    draw(canvases[score], "bar", {
      labels: body.classes,
      datasets: [{ label: score, data: body[score], backgroundColor: body.colors }],
    }, { scales: { y: percentAxis }, plugins: { legend: { display: false } } });
  }
}
