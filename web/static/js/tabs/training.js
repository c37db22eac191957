// Training data: the training set's class mix beside the mix of reviewed predictions in the range.
import { getJSON } from "../api.js";
import { card, draw } from "../charts.js";

export const id = "training";
export const title = "Training data";
let trainingPie, predictedPie;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  trainingPie = card(grid, "training-counts", "Training set by class");
  predictedPie = card(grid, "training-predicted", "Predictions in the range by class");
}

export async function refresh({ range }) {
  const body = await getJSON("/api/training", range);
  const pie = (label, data) => ({ labels: body.classes, datasets: [{ label, data, backgroundColor: body.colors }] });
  draw(trainingPie, "pie", pie("training images", body.training_counts));
  draw(predictedPie, "pie", pie("predictions", body.predicted));
}
