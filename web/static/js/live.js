// The live link: an EventSource on /api/stream, an indicator, and callbacks on every rollups update
// and every alerts change. The browser reconnects by itself and sends Last-Event-ID; the server then
// says if we missed anything.
export function connect(indicator, onUpdate, onAlerts = () => {}) {
  const show = (state, text) => {
    indicator.className = `live ${state}`;
    indicator.textContent = text;
    indicator.dataset.state = state;
  };
  const source = new EventSource("/api/stream");
  source.onopen = () => show("up", "live");
  source.onerror = () => show("down", "live: reconnecting…");
  source.addEventListener("status", (event) => {
    const { live } = JSON.parse(event.data);
    if (live) {
      show("up", "live");
      onUpdate(null);
      onAlerts(null);
    } else {
      show("degraded", "live: database unreachable");
    }
  });
  source.addEventListener("update", (event) => onUpdate(JSON.parse(event.data)));
  source.addEventListener("alerts", (event) => onAlerts(JSON.parse(event.data)));
  return source;
}
