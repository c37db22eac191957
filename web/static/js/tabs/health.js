// Data health: pending reviews, review latency, documents set aside, the consumer, the outbox.
import { getJSON } from "../api.js";
import { card, draw } from "../charts.js";
import { count, seconds, table, tiles } from "../format.js";

export const id = "health";
export const title = "Data health";
let parts;

export function build(panel) {
  panel.innerHTML = `<div class="tiles"></div><div class="grid"></div>
    <div class="card"><h2>Documents set aside by the consumer</h2><div class="rejects"></div></div>`;
  parts = { tiles: panel.querySelector(".tiles"), rejects: panel.querySelector(".rejects"),
            latency: card(panel.querySelector(".grid"), "health-latency", "Review latency (prediction to review)") };
}

function edge(upper) {
  return upper === null ? "longer" : `≤ ${seconds(upper)}`;
}

export async function refresh({ range }) {
  const body = await getJSON("/api/health", range);
  const consumer = body.consumer;
  tiles(parts.tiles, [
    ["health-pending", "Pending reviews", body.pending, count(body.pending)],
    ["latency-mean", "Mean review latency", body.latency.mean_seconds, seconds(body.latency.mean_seconds)],
    ["rejects-total", "Documents set aside", body.rejects.total, count(body.rejects.total)],
    ["outbox-backlog", "Profiles waiting to upload", body.outbox_backlog, count(body.outbox_backlog)],
    ["consumer-lag", "Consumer lag", consumer.lag_seconds, seconds(consumer.lag_seconds)],
    ["last-batch", "Last consumer batch", consumer.last_batch_at,
     consumer.last_batch_at ? new Date(consumer.last_batch_at).toLocaleString() : "—"],
  ]);
  draw(parts.latency, "bar", {
    labels: body.latency.histogram.map((bin) => edge(bin.upper_seconds)),
    datasets: [{ label: "reviews", data: body.latency.histogram.map((bin) => bin.count), backgroundColor: "#6b8fb5" }],
  }, { plugins: { legend: { display: false } } });
  table(parts.rejects, ["reason", "field", "documents", "last seen"],
        body.rejects.by_reason.map((r) => [r.reason, r.field ?? "", String(r.count), r.last_at ?? ""]));
}
