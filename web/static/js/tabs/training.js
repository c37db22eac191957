// Training data: the training set's class mix beside the mix of ALL predictions in the range (by predicted
// class, from the prediction rollups) and of the reviewed predictions (by true class and by predicted class).
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, percentAxis, retitle } from "../charts.js";
import { count, share, table, tableCard } from "../format.js";

export const id = "training";
export const title = "Training data";
let parts;

export function build(panel) {
  panel.innerHTML = `<div class="grid"></div>`;
  const grid = panel.querySelector(".grid");
  parts = {
    mix: card(grid, "training-mix", "Class mix: training set, all predictions and reviewed predictions", "",
              { wide: true }),
    table: tableCard(grid, "training-counts", "Counts per class",
                     "All predictions: by the class the model predicted. Reviewed: by predicted and by true class."),
  };
  parts.table.closest(".card").classList.add("wide");
}

const total = (values) => values.reduce((a, b) => a + b, 0);
const shares = (values) => { const n = total(values); return values.map((v) => (n ? v / n : null)); };

export async function refresh({ range }) {
  const body = await getJSON("/api/training", range);
  const n = { training: total(body.training_counts), all: total(body.all_predicted),
              true: total(body.reviewed_true), predicted: total(body.predicted) };
  const series = [
    [`training set, true class (n = ${count(n.training)})`, body.training_counts, "--mix-training", "rect"],
    [`all predictions, predicted class (n = ${count(n.all)})`, body.all_predicted, "--mix-all", "circle"],
    [`reviewed predictions, true class (n = ${count(n.true)})`, body.reviewed_true, "--mix-reviewed", "triangle"],
  ];
  retitle(parts.mix, "Class mix: training set, all predictions and reviewed predictions (% of each)",
          "Each group of bars is one class; each bar its share of one population. Production priors often differ "
          + "from training priors; all predictions are known at once, reviewed ones are the sample reviewers chose. "
          + "Bad documents and reviews rejected without a class are left out.");
  draw(parts.mix, "bar", {
    labels: body.classes,
    datasets: series.map(([label, values, color, pointStyle]) => ({ label, data: shares(values),
                                                                    backgroundColor: css(color), pointStyle })),
  }, {
    plugins: { tooltip: { callbacks: { label: (item) => {
      const k = series[item.datasetIndex][1][item.dataIndex];
      return `${item.dataset.label.split(" (")[0]}: ${share(item.raw)} (${count(k)})`;
    } } } },
    scales: { x: { title: axisTitle("class") },
              y: { ...percentAxis, max: undefined, title: axisTitle("% of its population") } },
  }, { csv: () => [["class", "training set", "training share", "all predictions (predicted class)", "all predictions share",
                    "reviewed (true class)", "reviewed share"],
                   ...body.classes.map((name, c) => [name, ...series.flatMap(([, values]) => [values[c], shares(values)[c]])])] });
  table(parts.table,
        [{ label: "class", text: true }, ...["training set", "all predictions (predicted)", "reviewed (predicted)",
                                             "reviewed (true)"].map((label) => ({ label, format: count }))],
        body.classes.map((name, c) => [name, body.training_counts[c], body.all_predicted[c], body.predicted[c],
                                       body.reviewed_true[c]]),
        { foot: [["total", n.training, n.all, n.predicted, n.true]] });
}
