// Samples by class: reviewed samples per true class, as a pie and as bars, in the class colours.
import { getJSON } from "../api.js";
import { card, draw } from "../charts.js";

export const id = "samples";
export const title = "Samples by class";
let pie, bar;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  pie = card(grid, "samples-pie", "Reviewed samples by class");
  bar = card(grid, "samples-bar", "Reviewed samples by class");
}

export async function refresh({ range }) {
  const summary = await getJSON("/api/summary", range);
  const data = () => ({ labels: summary.classes, datasets: [
    { label: "reviewed samples", data: summary.samples_by_class, backgroundColor: summary.colors }] });
  draw(pie, "pie", data());
  draw(bar, "bar", data(), { plugins: { legend: { display: false } } });
}
