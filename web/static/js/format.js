// Numbers and dates on screen: ratios as percentages, counts as integers, null as a dash (no invented values),
// dates and times in one format (ISO: 2025-03-31, 2025-03-31 14:00) in the configured time zone.
import { exportCard } from "./export.js";
import { titled } from "./scope.js";

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

const formatters = new Map();
function parts(date, zone) {
  if (!formatters.has(zone)) {
    formatters.set(zone, new Intl.DateTimeFormat("en-US", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23" }));
  }
  return Object.fromEntries(formatters.get(zone).formatToParts(date).map((p) => [p.type, p.value]));
}

// An instant (ISO 8601) as "2025-03-31 14:00" in the zone; with seconds: "2025-03-31 14:00:05".
export function dateTime(iso, zone, { withSeconds = false } = {}) {
  if (!iso) return "—";
  const p = parts(new Date(iso), zone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`;
}

// A UTC hour (ISO 8601) as its local day and hour in the zone, e.g. "2025-03-31 14:00".
export function localHour(iso, zone) {
  return dateTime(iso, zone);
}

// Today's date in the zone, as YYYY-MM-DD.
export function today(zone) {
  const p = parts(new Date(), zone);
  return `${p.year}-${p.month}-${p.day}`;
}

// A YYYY-MM-DD day moved by `days` days (calendar arithmetic, no time zone involved).
export function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

// An instant as its local wall time in the zone, "YYYY-MM-DDTHH:MM": how an hour-precise range is written.
function wallTime(ms, zone) {
  const p = parts(new Date(ms), zone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// The last `hours` local hours, the current one (so far) included: {from, to}, `to` excluded, as wall times.
export function lastHours(zone, hours) {
  const now = Date.now();
  const p = parts(new Date(now), zone);
  const end = now - ((Number(p.minute) * 60 + Number(p.second)) * 1000 + (now % 1000)) + 3_600_000;
  return { from: wallTime(end - hours * 3_600_000, zone), to: wallTime(end, zone) };
}

// A local hour's start, "YYYY-MM-DDTHH:00" (how the dashboard writes an hour-precise range's ends).
export function isHourTime(text) {
  return /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):00$/.test(text) && isDay(text.slice(0, 10));
}

// Wall-clock hours from one hour-precise end to the other (a clock change moves the true span by its shift).
export function wallHours(from, to) {
  return (Date.parse(`${to}:00Z`) - Date.parse(`${from}:00Z`)) / 3_600_000;
}

// The whole local days a range touches, for what is only reported per day (drift checks, review hints).
export function coveringDays(range) {
  if (!isHourTime(range.from)) return range;
  const last = range.to.endsWith("T00:00") ? addDays(range.to.slice(0, 10), -1) : range.to.slice(0, 10);
  return { from: range.from.slice(0, 10), to: last };
}

export function isDay(text) {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))
    && new Date(`${text}T00:00:00Z`).toISOString().startsWith(text);
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
  container.replaceChildren(...items.map(([key, label, value, shown, title]) => {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.innerHTML = `<div class="label"></div><div class="value"></div>`;
    tile.querySelector(".label").textContent = label;
    const cell = tile.querySelector(".value");
    cell.textContent = shown;
    cell.dataset.metric = key;
    cell.dataset.value = JSON.stringify(value ?? null);
    if (title) tile.title = title;
    return tile;
  }));
}

// A card holding a table, with a CSV download of the table's exact values: returns the table's box.
export function tableCard(parent, name, title, what = "") {
  const div = document.createElement("div");
  div.className = "card";
  div.innerHTML = `<div class="card-head"><h2></h2></div><p class="what" hidden></p><div class="table"></div>`;
  titled(div.querySelector("h2"), title);
  div.dataset.name = name;
  if (what) Object.assign(div.querySelector(".what"), { textContent: what, hidden: false });
  exportCard(div, { png: false });
  parent.append(div);
  return div.querySelector(".table");
}

// A table wider than its card scrolls inside its box: keyboard users reach that scroll by focusing the box.
export function scrollBox(container) {
  const card = container.closest(".card");
  container.tabIndex = 0;
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", card ? `Table: ${card.querySelector("h2").textContent}` : "Table");
}

// A table. columns: [{label, text?: true for a left-aligned text column, format?: value -> shown}];
// rows: arrays of raw values (the CSV download holds these, the cells show them formatted). An empty table
// says "none" in its body. Options: foot (rows drawn in a <tfoot>, e.g. totals), caption, empty. A row with a
// `format` property (Object.assign([...], { format })) formats its own values, e.g. a row of rates.
export function table(container, columns, rows, { foot = [], caption = "", empty = "none" } = {}) {
  const html = document.createElement("table");
  if (caption) html.createCaption().textContent = caption;
  const header = html.createTHead().insertRow();
  columns.forEach((column) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = column.label;
    if (column.title) th.title = column.title;
    if (column.text) th.className = "text";
    header.append(th);
  });
  const fill = (section, row) => {
    const tr = section.insertRow();
    row.forEach((value, i) => {
      const column = columns[i] || {};
      const cell = i === 0 && column.text ? document.createElement("th") : tr.insertCell();
      if (cell.tagName === "TH") {
        cell.scope = "row";
        tr.append(cell);
      }
      const format = (i > 0 && row.format) || column.format;
      const shown = format ? format(value) : (value === null || value === undefined ? "—" : value);
      cell.textContent = shown;
      if (column.text) cell.classList.add("text");
    });
    return tr;
  };
  const body = html.createTBody();
  rows.forEach((row) => fill(body, row));
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "text empty";
    td.textContent = empty;
  }
  if (foot.length) {
    const tfoot = html.createTFoot();
    foot.forEach((row) => fill(tfoot, row));
  }
  container.replaceChildren(html);
  scrollBox(container);
  const card = container.closest(".card");
  if (card) card.csv = () => [columns.map((c) => c.label), ...rows, ...foot];
  return html;
}

// An estimate of the API ({method, assumption, value, interval, n, reason, notes}) in words.
// The interval as "85.8–90.7 %" (one decimal), or "" when there is none.
export function interval(estimate) {
  const i = estimate && estimate.interval;
  if (!i || i.low === null || i.high === null) return "";
  return `${(i.low * 100).toFixed(1)}–${(i.high * 100).toFixed(1)} %`;
}

// "95 % interval 85.8–90.7 % (wilson), n = 642", or why there is no value.
export function intervalWords(estimate) {
  if (!estimate) return "";
  if (estimate.value === null) return estimate.reason ? `no value: ${estimate.reason}` : "no value";
  const i = interval(estimate);
  const level = estimate.interval ? `${Math.round(estimate.interval.level * 100)} % interval` : "";
  return `${i ? `${level} ${i} (${estimate.interval.method}), ` : "no interval, "}n\u00a0=\u00a0${count(estimate.n)}`;
}

// What an estimate rests on, for a title or a definition: its method, assumption and notes.
export function assumes(estimate) {
  if (!estimate) return "";
  const notes = (estimate.notes || []).length ? ` Notes: ${estimate.notes.join("; ")}.` : "";
  return `Method: ${estimate.method}. Assumes: ${estimate.assumption}.${notes}`;
}

// Tiles whose values are estimates: each tile shows the value, its interval and n below it, and carries its
// method and assumption in its title. items: [key, label, estimate] (or [key, label, estimate, shown, sub]).
export function estimateTiles(container, items) {
  tiles(container, items.map(([key, label, estimate, shown]) => [
    key, label, estimate ? estimate.value : null, shown ?? ratio(estimate ? estimate.value : null), assumes(estimate)]));
  items.forEach(([, , estimate, , sub], i) => {
    const line = document.createElement("div");
    line.className = "sub";
    line.textContent = sub ?? intervalWords(estimate);
    container.children[i].append(line);
  });
}
