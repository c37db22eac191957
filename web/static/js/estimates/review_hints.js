// Where the next reviews help most: the confidence bins and predicted classes whose accuracy interval is widest
// for the traffic they carry (width × share of all predictions), and how many reviews a day a ±2-point
// accuracy interval needs at the last reviewed day's mix.
import { getJSON } from "../api.js";
import { count, share, table, tableCard, tiles } from "../format.js";

const TOP = 5;
let parts;

export function build(parent) {
  const section = document.createElement("div");
  section.className = "block review-hints";
  section.innerHTML = `<h2 class="section">Where the next reviews help most</h2>
    <p class="section-what">Reviewed predictions against all predictions: a group whose accuracy interval is wide and
      that carries much of the traffic gains most from more reviews.</p>
    <p class="section-what days-note" hidden></p>
    <div class="tiles hint-tiles"></div><div class="grid"></div>`;
  parent.append(section);
  const grid = section.querySelector(".grid");
  parts = {
    note: section.querySelector(".days-note"),
    tiles: section.querySelector(".hint-tiles"),
    bins: tableCard(grid, "review-hints-bins", "Confidence bins to review next: all predictions and their reviews",
                    `The ${TOP} first by priority: the width of the 95 % interval of the bin's accuracy × the bin's `
                    + "share of all predictions."),
    classes: tableCard(grid, "review-hints-classes", "Predicted classes to review next: all predictions and their reviews",
                       `The ${TOP} first by priority: the width of the 95 % interval of the accuracy of the class's `
                       + "predictions (its precision) × the class's share of all predictions."),
  };
}

// "0.65-0.70" (the API's label of a confidence bin) as "65–70 %", the reliability diagram's unit.
const percents = (label) => label.replace(/^(\d\.\d+)-(\d\.\d+)$/,
                                          (_, a, b) => `${Math.round(a * 100)}–${Math.round(b * 100)} %`);
const points = (value) => (value === null || value === undefined ? "—" : (value * 100).toFixed(1));

function hintTable(container, head, rows) {
  table(container, [{ label: head, text: true }, { label: "reviewed", format: count },
                    { label: "traffic share", format: share, title: "Its share of all predictions in the range" },
                    { label: "interval width (pts)", format: points,
                      title: "The width of the 95 % interval of the accuracy, in percentage points" }],
        rows.slice(0, TOP).map((h) => [h.kind === "confidence_bin" ? percents(h.label) : h.label, h.reviewed,
                                       h.traffic_share, h.width]),
        { empty: "no predictions in the range" });
  const card = container.closest(".card");
  card.csv = () => [[head, "reviewed", "traffic share (of all predictions)", "interval width",
                     "priority (width × share)"],
                    ...rows.map((h) => [h.label, h.reviewed, h.traffic_share, h.width, h.score])];
}

export async function refresh({ range, days }) {
  const body = await getJSON("/api/review-hints",   // reviews a day: whole local days only
                             range.segment ? { ...days, segment: range.segment } : days);
  parts.note.hidden = range.from === days.from && range.to === days.to;
  parts.note.textContent = `Over the whole local days ${days.from} to ${days.to}, which the hours shown fall in.`;
  const pm = `±${Math.round(body.half_width * 100)} points`;
  const needed = body.reviews_needed;
  const line = (value) => (value.per_day === null ? `no value: ${value.reason}` : count(value.per_day));
  tiles(parts.tiles, [
    ["reviews-needed-random", `Reviews a day for a ${pm} accuracy interval (random sample)`, needed.wilson.per_day, line(needed.wilson),
     `Method: ${needed.wilson.method}. Assumes: ${needed.wilson.assumption}.`],
    ["reviews-needed-stratified", `Reviews a day for a ${pm} accuracy interval (post-stratified)`, needed.post_stratified.per_day,
     line(needed.post_stratified),
     `Method: ${needed.post_stratified.method}. Assumes: ${needed.post_stratified.assumption}.`],
    ["reviews-now", body.day ? `Reviews on ${body.day}, the last reviewed day` : "Reviews on the last reviewed day",
     needed.wilson.current_per_day, count(needed.wilson.current_per_day)],
  ]);
  parts.tiles.querySelectorAll(".tile .value").forEach((v) => {
    if (v.textContent.startsWith("no value")) v.classList.add("reason");
  });
  hintTable(parts.bins, "confidence bin", body.bins);
  hintTable(parts.classes, "predicted class", body.by_class);
}
