// Chart.js helpers: one chart per canvas, updated in place so a live refresh does not flicker. Colours come
// from the page's CSS custom properties (dashboard.css), read when a chart is drawn, so the dark scheme
// restyles the charts too. Every chart sits in a card with a title, a "what this means" line and CSV / PNG
// downloads of what it draws.
import { exportCard, labelTools } from "./export.js";
import { localHour } from "./format.js";
import { titled } from "./scope.js";

const Chart = window.Chart;

// The value of a CSS custom property of the page, e.g. css("--volume-pending").
export function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Chart.js's defaults from the page's colours: at start, and again when the colour scheme changes.
export function applyTheme() {
  Chart.defaults.color = css("--chart-text");
  Chart.defaults.borderColor = css("--chart-grid");
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.elements.arc.borderColor = css("--card-bg");  // pie slices parted by the card's colour
  Chart.defaults.plugins.legend.labels.usePointStyle = true;    // legends show each series' point shape
  Chart.defaults.plugins.legend.labels.sort = (a, b) => a.datasetIndex - b.datasetIndex;  // not by drawing order
}
applyTheme();

// A chart card: returns its canvas. `name` names its downloads (the canvas id by default).
export function card(parent, id, title, what = "", { name = id, wide = false } = {}) {
  const div = document.createElement("div");
  div.className = wide ? "card wide" : "card";
  div.dataset.name = name;
  div.innerHTML = `<div class="card-head"><h2></h2></div><p class="what" hidden></p>
    <div class="chart"><canvas role="img"></canvas></div>`;
  div.querySelector("canvas").id = id;
  parent.append(div);
  exportCard(div);
  retitle(div.querySelector("canvas"), title, what);
  return div.querySelector("canvas");
}

// A card's title (and its one-line "what this means"), changed after the card was built; `element` is any
// element inside the card (a canvas, a table's box).
export function retitle(element, title, what) {
  const div = element.closest(".card");
  titled(div.querySelector("h2"), title);
  if (what !== undefined) {
    div.querySelector(".what").textContent = what;
    div.querySelector(".what").hidden = !what;
  }
  const canvas = div.querySelector("canvas");
  const shown = div.querySelector("h2").textContent;
  if (canvas) canvas.setAttribute("aria-label", `Chart: ${shown}. Its data: the CSV download.`);
  labelTools(div);
}

// The rows of a chart's CSV: the label column, then one column per dataset (matrix charts: x, y, value).
function chartRows(chart, labelHead) {
  const { labels = [], datasets } = chart.data;
  if (chart.config.type === "matrix") {
    return [["x", "y", "value"], ...datasets[0].data.map((cell) => [cell.x, cell.y, cell.v])];
  }
  return [[labelHead, ...datasets.map((d) => d.label)],
          ...labels.map((label, i) => [label, ...datasets.map((d) => d.data[i])])];
}

// Draw or update a chart. `csv` (rows, or a function giving them) replaces the default CSV of its data;
// `labelHead` names the default CSV's first column.
export function draw(canvas, type, data, options = {}, { csv, labelHead = "label", plugins = [] } = {}) {
  const existing = Chart.getChart(canvas);
  // Fresh options every time: chart.options is Chart.js's resolved proxy, and spreading it into a new
  // options object makes its scriptable resolver recurse ("Recursion detected: _scriptable->_scriptable").
  // The chart fills its box, whose height the stylesheet sets (a fixed aspect ratio squashes it on a phone).
  const full = { animation: false, responsive: true, maintainAspectRatio: false, ...options };
  let chart;
  if (existing && existing.config.type === type) {  // plugins stay those it was created with
    existing.data = data;
    existing.options = full;
    existing.update("none");
    chart = existing;
  } else {
    if (existing) existing.destroy();
    chart = new Chart(canvas, { type, data, options: full, plugins });
  }
  canvas.closest(".card").csv = () => (typeof csv === "function" ? csv() : csv) || chartRows(chart, labelHead);
  return chart;
}

export const percentAxis = { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)} %` } };

// An axis title, for `scales.<axis>.title`.
export function axisTitle(text) {
  return { display: true, text };
}

// A daily line: nulls stay gaps (spanGaps false), never joined across a day without reviews.
export function line(label, data, color, extra = {}) {
  return { type: "line", label, data, borderColor: color, backgroundColor: color, spanGaps: false,
           pointRadius: 3, tension: 0, ...extra };
}

// The x axis of a series per local day or per local hour (`per`, as the API's `by` says) of ISO labels (days,
// or UTC hour starts): the labels shown, the scale's title and ticks (hourly: the hour, and the day where one
// starts; the tooltip and the CSV carry the full time), and the CSV's first column.
export function timeAxis(per, periods, zone) {
  if (per !== "hour") return { labels: periods, x: { title: axisTitle(`local day (${zone})`) }, head: "day" };
  return {
    labels: periods.map((iso) => localHour(iso, zone)),
    x: { title: axisTitle(`hour (${zone})`), ticks: { callback(value) {
      const label = this.getLabelForValue(value);
      return label.endsWith(" 00:00") ? label.slice(0, 10) : label.slice(11);
    } } },
    head: `hour (${zone})`,
  };
}

// Series colours, read from the CSS custom properties each time a chart is drawn.
export const SERIES_COLORS = {
  get accuracy() { return css("--series-accuracy"); },
  get precision() { return css("--series-precision"); },
  get recall() { return css("--series-recall"); },
  get f1() { return css("--series-f1"); },
  get reviews() { return css("--series-reviews"); },
};

// Interval whiskers: a dataset with `whiskers: [{low, high} | null, ...]` (one per point or bar) gets a vertical
// bar from low to high with caps, in the dataset's `whiskerColor` (the chart text's colour by default).
export const whiskers = {
  id: "whiskers",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    chart.data.datasets.forEach((dataset, d) => {
      const meta = chart.getDatasetMeta(d);
      if (!dataset.whiskers || meta.hidden) return;
      const scale = chart.scales[meta.yAxisID];
      ctx.strokeStyle = dataset.whiskerColor || css("--chart-text");
      ctx.lineWidth = 1.5;
      meta.data.forEach((element, i) => {
        const w = dataset.whiskers[i];
        if (!w || w.low === null || w.high === null) return;
        const x = element.x, top = scale.getPixelForValue(w.high), bottom = scale.getPixelForValue(w.low);
        const cap = Math.min(5, (element.width || 10) / 3);
        ctx.beginPath();
        ctx.moveTo(x, top); ctx.lineTo(x, bottom);
        ctx.moveTo(x - cap, top); ctx.lineTo(x + cap, top);
        ctx.moveTo(x - cap, bottom); ctx.lineTo(x + cap, bottom);
        ctx.stroke();
      });
    });
    ctx.restore();
  },
};
