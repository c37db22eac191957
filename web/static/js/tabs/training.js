// Training data: the training set's class mix beside the mix of ALL predictions in the range (by predicted
// class, from the prediction rollups) and of the reviewed predictions (by true class and by predicted class).
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, percentAxis, retitle } from "../charts.js";
import { count, share, table } from "../format.js";

export const id = "training";
export const title = "Training data";
let parts;

export function build(panel) {
  panel.innerHTML = `<div class="grid mix-grid"></div><div class="grid pies"></div>
    <div class="card"><h2>Counts per class</h2><div class="table"></div></div>`;
  const pies = panel.querySelector(".pies");
  parts = {
    mix: card(panel.querySelector(".mix-grid"), "training-mix", "Class mix: training set, all predictions, "
              + "reviewed predictions"),
    training: card(pies, "training-counts", "Training set by class"),
    all: card(pies, "training-all", "All predictions in the range by predicted class"),
    predicted: card(pies, "training-predicted", "Reviewed predictions in the range by predicted class"),
    table: panel.querySelector(".table"),
  };
  parts.mix.closest(".card").classList.add("wide");
}

const total = (values) => values.reduce((a, b) => a + b, 0);
const shares = (values) => { const n = total(values); return values.map((v) => (n ? v / n : null)); };

export async function refresh({ range }) {
  const body = await getJSON("/api/training", range);
  const n = { training: total(body.training_counts), all: total(body.all_predicted),
              true: total(body.reviewed_true), predicted: total(body.predicted) };
  const series = [
    [`training set, true class (n = ${count(n.training)})`, body.training_counts, "--mix-training"],
    [`all predictions, predicted class (n = ${count(n.all)})`, body.all_predicted, "--mix-all"],
    [`reviewed predictions, true class (n = ${count(n.true)})`, body.reviewed_true, "--mix-reviewed"],
  ];
  retitle(parts.mix, "Class mix: training set, all predictions and reviewed predictions (share of each)",
          "Production priors often differ from training priors. All predictions are known at once; reviewed ones "
          + "are the sample reviewers chose. Bad documents and reviews rejected without a class are left out.");
  draw(parts.mix, "bar", {
    labels: body.classes,
    datasets: series.map(([label, values, color]) => ({ label, data: shares(values), backgroundColor: css(color) })),
  }, {
    plugins: { tooltip: { callbacks: { label: (item) => {
      const n = series[item.datasetIndex][1][item.dataIndex];
      return `${item.dataset.label.split(" (")[0]}: ${share(item.raw)} (${count(n)})`;
    } } } },
    scales: { x: { title: axisTitle("class") },
              y: { ...percentAxis, max: undefined, title: axisTitle("% of its population") } },
  });
  const pie = (label, data) => ({ labels: body.classes, datasets: [{ label, data, backgroundColor: body.colors }] });
  retitle(parts.training, `Training set by class (n = ${count(n.training)} images)`);
  retitle(parts.all, `All predictions in the range by predicted class (n = ${count(n.all)})`);
  retitle(parts.predicted, `Reviewed predictions in the range by predicted class (n = ${count(n.predicted)})`);
  draw(parts.training, "pie", pie("training images", body.training_counts));
  draw(parts.all, "pie", pie("all predictions", body.all_predicted));
  draw(parts.predicted, "pie", pie("reviewed predictions", body.predicted));
  table(parts.table,
        ["class", "training set", "all predictions (predicted)", "reviewed (predicted)", "reviewed (true)"],
        [...body.classes.map((name, c) => [name, count(body.training_counts[c]), count(body.all_predicted[c]),
                                           count(body.predicted[c]), count(body.reviewed_true[c])]),
         ["total", count(n.training), count(n.all), count(n.predicted), count(n.true)]]);
}
