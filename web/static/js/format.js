// Numbers on screen: ratios as percentages, counts as integers, null as a dash (no invented values).
export function ratio(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(2)} %`;
}

export function count(value) {
  return value === null || value === undefined ? "—" : value.toLocaleString("en-US");
}

// A share (0..1) as a percentage with one decimal, e.g. coverage.
export function share(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}

// A UTC hour (ISO 8601) as local day and time in the configured zone, e.g. "31 Mar 14:00".
export function localHour(iso, zone) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: zone, day: "numeric", month: "short", hour: "2-digit",
                                            minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  if (value < 172800) return `${(value / 3600).toFixed(1)} h`;
  return `${(value / 86400).toFixed(1)} d`;
}

// A row of tiles; each value carries its exact number in data-value for readers and tests.
export function tiles(container, items) {
  container.replaceChildren(...items.map(([key, label, value, shown]) => {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.innerHTML = `<div class="label"></div><div class="value"></div>`;
    tile.querySelector(".label").textContent = label;
    const cell = tile.querySelector(".value");
    cell.textContent = shown;
    cell.dataset.metric = key;
    cell.dataset.value = JSON.stringify(value ?? null);
    return tile;
  }));
}

export function table(container, head, rows) {
  const html = document.createElement("table");
  const header = html.createTHead().insertRow();
  head.forEach((text, i) => {
    const th = document.createElement("th");
    th.textContent = text;
    if (i === 0) th.className = "text";
    header.append(th);
  });
  const body = html.createTBody();
  rows.forEach((row) => {
    const tr = body.insertRow();
    row.forEach((text, i) => {
      const td = tr.insertCell();
      td.textContent = text;
      if (i === 0) td.className = "text";
    });
  });
  container.replaceChildren(html);
}
