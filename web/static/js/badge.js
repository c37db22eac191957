// The header's open-alerts badge, on every tab: refreshed at start, on reconnect and on every alerts event.
import { getJSON } from "./api.js";

export async function refreshBadge(badge) {
  const { open } = await getJSON("/api/alerts", { limit: 0 });
  const critical = open.some((alert) => alert.severity === "critical");
  badge.dataset.count = String(open.length);
  badge.textContent = open.length === 1 ? "1 open alert" : `${open.length} open alerts`;
  badge.className = `badge ${open.length ? (critical ? "critical" : "warning") : "clear"}`;
  badge.hidden = false;
}
