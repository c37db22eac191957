// Chart.js helpers: one chart per canvas, updated in place so a live refresh does not flicker. Colours come
// from the page's CSS custom properties (dashboard.css), read when a chart is drawn, so the dark scheme
// restyles the charts too.
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
}
applyTheme();

export function card(parent, id, title, what = "") {
  const div = document.createElement("div");
  div.className = "card";
  div.innerHTML = `<h2></h2><p class="what" hidden></p><div class="chart"><canvas></canvas></div>`;
  div.querySelector("h2").textContent = title;
  if (what) {
    div.querySelector(".what").textContent = what;
    div.querySelector(".what").hidden = false;
  }
  div.querySelector("canvas").id = id;
  parent.append(div);
  return div.querySelector("canvas");
}

// A card's title (and its one-line "what this means"), changed after the card was built.
export function retitle(canvas, title, what) {
  const div = canvas.closest(".card");
  div.querySelector("h2").textContent = title;
  if (what !== undefined) {
    div.querySelector(".what").textContent = what;
    div.querySelector(".what").hidden = !what;
  }
}

export function draw(canvas, type, data, options = {}) {
  const existing = Chart.getChart(canvas);
  // Fresh options every time: chart.options is Chart.js's resolved proxy, and spreading it into a new
  // options object makes its scriptable resolver recurse ("Recursion detected: _scriptable->_scriptable").
  // The chart fills its box, whose height the stylesheet sets (a fixed aspect ratio squashes it on a phone).
  const full = { animation: false, responsive: true, maintainAspectRatio: false, ...options };
  if (existing && existing.config.type === type) {
    existing.data = data;
    existing.options = full;
    existing.update("none");
    return existing;
  }
  if (existing) existing.destroy();
  return new Chart(canvas, { type, data, options: full });
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

// Series colours, read from the CSS custom properties each time a chart is drawn.
export const SERIES_COLORS = {
  get accuracy() { return css("--series-accuracy"); },
  get precision() { return css("--series-precision"); },
  get recall() { return css("--series-recall"); },
  get f1() { return css("--series-f1"); },
  get reviews() { return css("--series-reviews"); },
};
