// Chart.js helpers: one chart per canvas, updated in place so a live refresh does not flicker.
const Chart = window.Chart;

export function card(parent, id, title) {
  const div = document.createElement("div");
  div.className = "card";
  div.innerHTML = `<h2></h2><canvas></canvas>`;
  div.querySelector("h2").textContent = title;
  div.querySelector("canvas").id = id;
  parent.append(div);
  return div.querySelector("canvas");
}

export function draw(canvas, type, data, options = {}) {
  const existing = Chart.getChart(canvas);
  // Fresh options every time: chart.options is Chart.js's resolved proxy, and spreading it into a new
  // options object makes its scriptable resolver recurse ("Recursion detected: _scriptable->_scriptable").
  const full = { animation: false, responsive: true, ...options };
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

// A daily line: nulls stay gaps (spanGaps false), never joined across a day without reviews.
export function line(label, data, color, extra = {}) {
  return { type: "line", label, data, borderColor: color, backgroundColor: color, spanGaps: false,
           pointRadius: 3, tension: 0, ...extra };
}

export const SERIES_COLORS = { accuracy: "#1f77b4", precision: "#ff7f0e", recall: "#2ca02c", f1: "#d62728",
                               reviews: "rgba(120,120,140,0.35)" };
