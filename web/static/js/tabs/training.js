// Training data: the training set's class mix beside the mix of ALL predictions in the range (by predicted
// class, from the prediction rollups), the estimated true-class mix of all predictions (BBSE or RLLS, from a
// reference period's reviewed confusion matrix, with its bootstrap interval; or why it refuses), and the mix of
// the reviewed predictions (by true class).
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, retitle, whiskers } from "../charts.js";
import { assumes, count, share, table, tableCard } from "../format.js";

export const id = "training";
export const title = "Training data";
const METHOD = { bbse: "BBSE", rlls: "RLLS" };
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
  const div = parts.mix.closest(".card");
  div.insertAdjacentHTML("beforeend", `<p class="refusal" hidden></p>
    <details><summary>How the true-class mix of all predictions is estimated</summary><p></p></details>`);
  parts.refusal = div.querySelector(".refusal");
  parts.method = div.querySelector("details p");
  parts.table.closest(".card").classList.add("wide");
}

const total = (values) => values.reduce((a, b) => a + b, 0);
const shares = (values) => { const n = total(values); return values.map((v) => (n ? v / n : null)); };

export async function refresh({ range }) {
  const [body, shift] = await Promise.all([getJSON("/api/training", range), getJSON("/api/label-shift", range)]);
  const estimate = shift.estimate;
  const method = METHOD[shift.method] || shift.method;
  const ref = shift.reference.range;
  const n = { training: total(body.training_counts), all: total(body.all_predicted),
              true: total(body.reviewed_true), predicted: total(body.predicted) };
  const mix = estimate.defined ? estimate.mix : body.classes.map(() => null);
  const series = [
    [`training set, true class (n = ${count(n.training)})`, shares(body.training_counts), body.training_counts,
     "--mix-training", "rect"],
    [`all predictions, predicted class (n = ${count(n.all)})`, shares(body.all_predicted), body.all_predicted,
     "--mix-all", "circle"],
    [`all predictions, true class estimated (${method}${estimate.defined ? "" : ": refused"})`, mix, null,
     "--mix-estimated", "rectRot"],
    [`reviewed predictions, true class (n = ${count(n.true)})`, shares(body.reviewed_true), body.reviewed_true,
     "--mix-reviewed", "triangle"],
  ];
  retitle(parts.mix, "Class mix: training set, all predictions (predicted and estimated true class) and reviewed "
          + "predictions (% of each)",
          "Each group of bars is one class; each bar its share of one population. Production priors often differ "
          + "from training priors; all predictions are known at once, reviewed ones are the sample reviewers chose. "
          + `The estimated true class of all predictions corrects the predicted mix by the model's errors on the `
          + `reviews of ${ref.from} to ${ref.to} (whiskers: 95 % interval). Bad documents and reviews rejected `
          + "without a class are left out.");
  parts.refusal.hidden = estimate.defined;
  parts.refusal.textContent = estimate.defined ? ""
    : `The estimated true-class mix of all predictions is not shown: ${estimate.reason}.`;
  parts.method.textContent = `${assumes(estimate)} Reference: reviews of ${ref.from} to ${ref.to} `
    + `(${count(shift.reference.reviews)}); confusion matrix condition number `
    + `${estimate.condition === null ? "—" : estimate.condition.toFixed(1)}.`;
  draw(parts.mix, "bar", {
    labels: body.classes,
    datasets: series.map(([label, values, , color, pointStyle], s) => ({
      label, data: values, backgroundColor: css(color), pointStyle,
      whiskers: s === 2 && estimate.defined ? estimate.intervals : undefined })),
  }, {
    plugins: { tooltip: { callbacks: { label: (item) => {
      const [, , counts] = series[item.datasetIndex];
      const name = item.dataset.label.split(" (")[0];
      if (counts) return `${name}: ${share(item.raw)} (${count(counts[item.dataIndex])})`;
      const i = estimate.intervals?.[item.dataIndex];
      return `${name}: ${share(item.raw)}${i ? ` (95 % ${share(i.low)}–${share(i.high)})` : ""}`;
    } } } },
    scales: { x: { title: axisTitle("class") },
              y: { beginAtZero: true, ticks: { callback: (v) => `${Math.round(v * 100)} %` },
                   title: axisTitle("% of its population") } },
  }, { csv: () => [["class", "training set", "training share", "all predictions (predicted class)", "all predictions share",
                    `all predictions, estimated true class share (${shift.method})`, "low", "high",
                    "reviewed (true class)", "reviewed share"],
                   ...body.classes.map((name, c) => [name, body.training_counts[c], series[0][1][c], body.all_predicted[c],
                                                     series[1][1][c], mix[c], estimate.intervals?.[c]?.low ?? null,
                                                     estimate.intervals?.[c]?.high ?? null, body.reviewed_true[c],
                                                     series[3][1][c]])],
       plugins: [whiskers] });
  table(parts.table,
        [{ label: "class", text: true }, ...["training set", "all predictions (predicted)", "reviewed (predicted)",
                                             "reviewed (true)"].map((label) => ({ label, format: count }))],
        body.classes.map((name, c) => [name, body.training_counts[c], body.all_predicted[c], body.predicted[c],
                                       body.reviewed_true[c]]),
        { foot: [["total", n.training, n.all, n.predicted, n.true]] });
}
