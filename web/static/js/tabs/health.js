// Data health in two parts. The range's reviews, narrowed to the header's segment when one is selected: pending
// reviews (of all predictions made in the range) and review latency (reviewed predictions). Then the whole
// system, whatever the segment: documents set aside (counted in no segment), the outbox and the consumer (they
// serve every segment at once), marked data-unsegmented so that their titles name no segment. Times are shown in
// one format, in the configured time zone.
import { getJSON } from "../api.js";
import { axisTitle, card, css, draw, retitle } from "../charts.js";
import { count, dateTime, seconds, table, tableCard, tiles } from "../format.js";

export const id = "health";
export const title = "Data health";
export const partlySegmented = "pending reviews and review latency count only its predictions and reviews; "
  + "documents set aside, the outbox and the consumer are the whole system's";
let parts;
let segments = false;   // whether segments are configured: the whole system's headings then say "every segment"
const everySegment = (words) => (segments ? words : "");

export function build(panel, meta) {
  segments = meta.segments.length > 0;
  panel.innerHTML = `
    <h2 class="section">Pending reviews (all predictions) and review latency (reviewed predictions)</h2>
    <div class="tiles health-tiles"></div>
    <div class="grid health-grid"></div>
    <div class="whole-system" data-unsegmented="the whole system's">
      <h2 class="section">The whole system: every prediction and document${everySegment(", whatever the segment")}</h2>
      <div class="tiles system-tiles"></div>
      <div class="grid system-grid"></div>
    </div>`;
  parts = {
    tiles: panel.querySelector(".health-tiles"), system: panel.querySelector(".system-tiles"),
    latency: card(panel.querySelector(".health-grid"), "health-latency", "Review latency, reviewed predictions",
                  "How long after the prediction its review arrived, for the reviews of predictions made in the range."),
    rejects: tableCard(panel.querySelector(".system-grid"), "health-rejects",
                       `Documents set aside by the consumer, by reason: all documents${everySegment(", every segment")}`,
                       `Documents that break the record contract are never counted${everySegment(", in any segment")}; `
                       + "they are kept aside with the reason. One row per field and problem; “values seen” lists the "
                       + "bad values among them."),
  };
}

function edge(upper) {
  if (upper === null) return "longer";
  const [unit, size] = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]].find(([, n]) => upper >= 2 * n || n === 1);
  const value = upper / size;
  return `≤ ${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}

// A reason without its bad value: "output_confidence: expected a number from 0 to 1, got 1.5" ->
// ["expected a number from 0 to 1", "1.5"].
function problemOf(reason, field) {
  let text = field && reason.startsWith(`${field}: `) ? reason.slice(field.length + 2) : reason;
  let value = "";
  const got = text.match(/^(.*?),? got (.*)$/);
  const unknown = text.match(/^unknown class id (\S+?);(.*)$/);
  const outOfRange = text.match(/^(date out of range \(years 1 to 9999\)): (.*?);?(.*)$/);
  if (got) [text, value] = [got[1], got[2]];
  else if (unknown) [text, value] = [`unknown class id;${unknown[2]}`, unknown[1]];
  else if (outOfRange) [text, value] = [outOfRange[1], outOfRange[2]];
  return [text, value];
}

function byReason(rows) {
  const groups = new Map();
  for (const row of rows) {
    const [problem, value] = problemOf(row.reason, row.field);
    const key = `${row.field ?? ""}\u0000${problem}`;
    const group = groups.get(key) || { field: row.field ?? "", problem, count: 0, last: null, values: [] };
    group.count += row.count;
    if (!group.last || (row.last_at && row.last_at > group.last)) group.last = row.last_at;
    if (value && !group.values.includes(value)) group.values.push(value);
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.field.localeCompare(b.field));
}

// With segments: the batches whose segment increments the consumer put off while behind. Until a fold applies
// them, segment figures trail the overall ones; the tile says so, and since when.
function putOff(pending, zone) {
  if (!pending) return [];
  const shown = pending.oldest_at ? `${count(pending.batches)} · since ${dateTime(pending.oldest_at, zone)}`
    : count(pending.batches);
  return [["segments-pending", "Batches not yet in the figures of every segment", pending.batches, shown,
           "Segment increments the consumer put off while behind; the overall figures already count them."]];
}

export async function refresh({ meta, range }) {
  const body = await getJSON("/api/health", range);
  const consumer = body.consumer;
  const zone = meta.timezone;
  tiles(parts.tiles, [
    ["health-pending", "Pending reviews, all predictions made in the range", body.pending, count(body.pending)],
    ["latency-mean", "Mean review latency, reviewed predictions", body.latency.mean_seconds,
     seconds(body.latency.mean_seconds)],
  ]);
  tiles(parts.system, [
    ["rejects-total", `Documents set aside (all time${everySegment(", every segment")})`, body.rejects.total,
     count(body.rejects.total)],
    ["outbox-backlog", `Profiles waiting to upload${everySegment(" (every segment)")}`, body.outbox_backlog,
     count(body.outbox_backlog)],
    ["consumer-lag", "Consumer lag (the whole stream)", consumer.lag_seconds, seconds(consumer.lag_seconds)],
    ["last-batch", `Last consumer batch (${zone})`, consumer.last_batch_at, dateTime(consumer.last_batch_at, zone),
     consumer.last_batch_at || "no batch yet"],
    ...putOff(body.segments_pending, zone),
  ]);
  const histogram = body.latency.histogram;
  retitle(parts.latency, `Review latency, reviewed predictions (n = ${count(body.latency.count)} reviews)`);
  draw(parts.latency, "bar", {
    labels: histogram.map((bin) => edge(bin.upper_seconds)),
    datasets: [{ label: "reviews", data: histogram.map((bin) => bin.count), backgroundColor: css("--latency") }],
  }, { plugins: { legend: { display: false } },
       scales: { x: { title: axisTitle("time from prediction to review (at most)") },
                 y: { beginAtZero: true, title: axisTitle("reviews") } } },
  { csv: () => [["upper bound (seconds)", "reviews"], ...histogram.map((bin) => [bin.upper_seconds, bin.count])] });
  const groups = byReason(body.rejects.by_reason);
  table(parts.rejects, [{ label: "field", text: true }, { label: "problem", text: true },
                        { label: "values seen", text: true, format: (values) => values.join(", ") || "—" },
                        { label: "documents", format: count },
                        { label: `last seen (${zone})`, text: true, format: (iso) => dateTime(iso, zone) }],
        groups.map((g) => [g.field, g.problem, g.values, g.count, g.last]));
  parts.rejects.closest(".card").csv = () => [["field", "problem", "values seen", "documents", "last seen (UTC)"],
                                              ...groups.map((g) => [g.field, g.problem, g.values.join(" | "), g.count, g.last])];
}
