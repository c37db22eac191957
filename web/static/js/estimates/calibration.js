// Calibration of the reviewed predictions: the reliability diagram (mean confidence of each confidence bin
// against the share of it that was right, with the 95 % Wilson interval as whiskers, and the diagonal where
// the two agree), ECE, MCE and the direction in words, for every predicted class or one chosen.
import { getJSON } from "../api.js";
import { SERIES_COLORS, axisTitle, card, css, draw, percentAxis, retitle, whiskers } from "../charts.js";
import { assumes, count, share } from "../format.js";

const DIRECTION = {
  "over-confident": "over-confident: it is right less often than its confidence says",
  "under-confident": "under-confident: it is right more often than its confidence says",
  calibrated: "calibrated: it is right about as often as its confidence says",
};
let parts, body = null;

export function build(parent) {
  const section = document.createElement("div");
  section.className = "block calibration-section";
  section.innerHTML = `<h2 class="section">Calibration: can the model's confidence be trusted?</h2>
    <p class="section-what">Reviewed predictions with a confidence, grouped by that confidence.</p><div class="grid"></div>`;
  parent.append(section);
  const canvas = card(section.querySelector(".grid"), "calibration-reliability",
                      "Reliability diagram, reviewed predictions", "", { wide: true });
  const div = canvas.closest(".card");
  div.classList.add("calibration");
  const controls = document.createElement("div");
  controls.className = "controls";
  controls.innerHTML = `<label>Predicted class <select class="calibration-class"></select></label>`;
  const facts = document.createElement("p");
  facts.className = "facts";
  div.querySelector(".what").after(controls, facts);
  const details = document.createElement("details");
  details.innerHTML = "<summary>What this assumes</summary><p></p>";
  div.append(details);
  parts = { canvas, facts, select: controls.querySelector("select"), assumption: details.querySelector("p") };
  parts.select.addEventListener("change", () => body && show());
}

function show() {
  const chosen = parts.select.value;
  const curve = chosen === "" ? body.total : body.by_class[Number(chosen)];
  const who = chosen === "" ? "all predicted classes" : `predicted class ${body.classes[Number(chosen)]}`;
  retitle(parts.canvas, `Reliability diagram, reviewed predictions, ${who} (n = ${count(curve.n)})`,
          `Each point: one confidence bin (${body.bins} of equal width) — across, the bin's mean confidence; up, the `
          + "share of its reviewed predictions that were right, with its 95 % interval. On the dashed diagonal the "
          + "model is right exactly as often as it says; below it, over-confident; above it, under-confident.");
  const gap = curve.signed_gap;
  parts.facts.dataset.direction = curve.direction || "";
  parts.facts.textContent = curve.n
    ? `ECE (expected calibration error, the bins' gaps weighted by their reviews): ${share(curve.ece)}; MCE (the `
      + `largest gap of a bin): ${share(curve.mce)}. The model is ${DIRECTION[curve.direction] || curve.direction} `
      + `(mean accuracy − mean confidence ${gap >= 0 ? "+" : "−"}${share(Math.abs(gap))}).`
      + (curve.complete ? "" : " Some hours have no calibration counts yet (python -m replay --rebuild fills them).")
    : `No value: ${curve.reason || "no reviewed predictions with a confidence"}.`;
  parts.assumption.textContent = assumes(curve);
  const bins = curve.bins;
  draw(parts.canvas, "scatter", {
    datasets: [
      { label: "perfect calibration (accuracy = confidence)", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true,
        borderColor: css("--calibration-diagonal"), backgroundColor: css("--calibration-diagonal"),
        borderDash: [6, 4], pointRadius: 0, pointHoverRadius: 0, pointStyle: "line" },
      { label: "share right per bin (bars: 95 % interval)",
        data: bins.map((b) => ({ x: b.confidence, y: b.accuracy })), whiskers: bins.map((b) => b.interval),
        borderColor: SERIES_COLORS.accuracy, backgroundColor: SERIES_COLORS.accuracy, pointRadius: 4, clip: false,
        pointHoverRadius: 6 },
    ],
  }, {
    plugins: { tooltip: { filter: (item) => item.datasetIndex === 1, callbacks: { label: (item) => {
      const b = bins[item.dataIndex];
      return `confidence ${b.low.toFixed(2)}–${b.high.toFixed(2)} (mean ${share(b.confidence)}): ${share(b.accuracy)} `
        + `right of ${count(b.count)}; 95 % ${share(b.interval?.low)}–${share(b.interval?.high)}`;
    } } } },
    scales: { x: { ...percentAxis, type: "linear", title: axisTitle("confidence the model gave (%)") },
              y: { ...percentAxis, title: axisTitle("share right, reviewed (%)") } },
  }, { plugins: [whiskers], csv: () => [
    ["bin low", "bin high", "reviews", "right", "mean confidence", "accuracy", "interval low", "interval high", "gap"],
    ...bins.map((b) => [b.low, b.high, b.count, b.correct, b.confidence, b.accuracy, b.interval?.low ?? null,
                        b.interval?.high ?? null, b.gap])] });
}

export async function refresh({ range }) {
  body = await getJSON("/api/calibration", range);
  const chosen = parts.select.value;
  parts.select.replaceChildren(...[["", `all classes (n = ${count(body.total.n)})`],
    ...body.classes.map((name, c) => [String(c), `${name} (n = ${count(body.by_class[c].n)})`])].map(([v, text]) => {
    const option = document.createElement("option");
    option.value = v;
    option.textContent = text;
    return option;
  }));
  parts.select.value = chosen;
  show();
}
