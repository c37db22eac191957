// The dashboard: tabs sharing one range, refreshed in place on live updates. The range lives in the URL
// (?from=YYYY-MM-DD&to=YYYY-MM-DD, or hour-precise ?from=YYYY-MM-DDTHH:00&to=YYYY-MM-DDTHH:00 in the configured
// zone, `to` excluded; [&by=hour|day]#tab), so a link opens the same view and the back button returns to the
// previous range. Series are per local hour for hour-precise ranges and short date ranges, else per day. With
// segments configured, `&segment=field:value` narrows every segmented tab to one segment (scope.js names it in
// every title; the selector lists the values /api/segments saw in the range), the back button included. The
// Compare tab's choice is there too, once made or linked: `&compare=field&a=value&b=value` (tabs/compare.js takes
// what is missing from its defaults and says on the page what it cannot show as named).
import { getJSON } from "./api.js";
import { refreshBadge } from "./badge.js";
import { applyTheme } from "./charts.js";
import { setRange } from "./export.js";
import { addDays, count, coveringDays, isDay, isHourTime, lastHours, today, wallHours } from "./format.js";
import { startPicker } from "./picker.js";
import { connect } from "./live.js";
import { applyScope } from "./scope.js";
import { TABS } from "./tabs/index.js";

const state = { meta: null, range: null, by: "", segment: null, segments: Promise.resolve([]), compare: null,
                active: TABS[0].id, stale: new Set(), running: null, again: false };
let tabs = TABS;   // those shown: a tab that needs segments is left out when none is configured
const HOURLY_UP_TO_DAYS = 2;   // a date range this short is charted per hour unless "per day" is chosen
const MAX_HOURLY_DAYS = 7;     // the API's longest series per hour (web.hours)
const $ = (id) => document.getElementById(id);

// A range typed, picked or linked that was refused: shown until the next range is chosen, so a refresh
// finishing meanwhile (a live update, another tab) does not clear the reason before it is read.
let rangeProblem = null;

function showError(error) {
  const box = $("error");
  const shown = error || rangeProblem;
  box.hidden = !shown;
  box.textContent = shown ? String(shown.message || shown) : "";
}

function refuseRange(problem) {
  rangeProblem = problem || null;
  showError(null);
}

async function refresh(tabId) {
  const tab = tabs.find((t) => t.id === tabId);
  try {
    await tab.refresh(view());
    document.body.dataset.refreshed = tabId; // the tab the last finished refresh drew (browser tests wait on it)
    state.stale.delete(tabId);
    showError(null);
  } catch (error) {
    showError(error);
  }
}

// One refresh at a time; updates arriving meanwhile cause exactly one more.
async function refreshActive() {
  if (state.running) {
    state.again = true;
    return state.running;
  }
  document.body.dataset.busy = "true";
  state.running = (async () => {
    do {
      state.again = false;
      await refresh(state.active);
    } while (state.again);
  })();
  try {
    await state.running;
  } finally {
    state.running = null;
    delete document.body.dataset.busy;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  }
}

function select(tabId, { focus = false, draw = true } = {}) {
  state.active = tabId;
  for (const tab of tabs) {
    const button = $(`tab-${tab.id}`);
    const selected = tab.id === tabId;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;   // roving tabindex: Tab reaches the selected tab, arrows the others
    if (selected && focus) button.focus();
    $(`panel-${tab.id}`).hidden = !selected;
  }
  history.replaceState(history.state, "", `${location.search}#${tabId}`);
  showScopeNote();
  if (draw && state.stale.has(tabId)) refreshActive();
}

// Arrow keys move between the tabs (and show them), Home and End go to the first and the last.
function onTabKey(event) {
  const index = tabs.findIndex((t) => t.id === state.active);
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = (moves[event.key] + tabs.length) % tabs.length;
  select(tabs[next].id, { focus: true });
}

function build() {
  const nav = $("tabs");
  const panels = $("panels");
  for (const tab of tabs) {
    const button = document.createElement("button");
    button.id = `tab-${tab.id}`;
    button.type = "button";
    button.setAttribute("role", "tab");
    button.setAttribute("aria-controls", `panel-${tab.id}`);
    button.textContent = tab.title;
    button.addEventListener("click", () => select(tab.id));
    nav.append(button);
    const panel = document.createElement("section");
    panel.id = `panel-${tab.id}`;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", `tab-${tab.id}`);
    if (tab.unsegmented) panel.dataset.unsegmented = tab.unsegmented;
    panels.append(panel);
    tab.build(panel, state.meta);
    state.stale.add(tab.id);
  }
  nav.addEventListener("keydown", onTabKey);
}

function everythingStale() {
  tabs.forEach((tab) => state.stale.add(tab.id));
  return refreshActive();
}

// An alerts event: the badge on every tab, and the drift tab (now if it is on screen).
function alertsChanged(badge) {
  refreshBadge(badge).catch(showError);
  state.stale.add("drift");
  if (state.active === "drift") refreshActive();
}

// What a tab draws: the range as given, the series' granularity, and the whole local days the range touches
// (for what is only reported per day: drift checks, review hints).
// `range` carries the segment (`segment=field:value`) when one is selected; `segments`: a promise of each field's
// values seen in the range (the Compare tab's choices); `compare`: the Compare tab's choice as the address names
// it ({field, a, b}, any of them "" when not named), null when it names none; `chooseCompare`: a new choice.
function view() {
  const range = state.segment ? { ...state.range, segment: segmentParameter(state.segment) } : { ...state.range };
  return { meta: state.meta, range, by: seriesBy(state.range, state.by), days: coveringDays(state.range),
           segment: state.segment, segments: state.segments, compare: state.compare, chooseCompare };
}

// The Compare tab's choice from the address: compare=field&a=value&b=value, each part optional.
function compareOf(params) {
  const [field, a, b] = ["compare", "a", "b"].map((name) => params.get(name) || "");
  return field || a || b ? { field, a, b } : null;
}

// A new choice on the Compare tab: a new history entry, and that tab drawn again.
function chooseCompare(choice) {
  const same = (x, y) => ["field", "a", "b"].every((part) => (x ? x[part] : "") === (y ? y[part] : ""));
  if (same(choice, state.compare)) return;
  state.compare = choice;
  history.pushState({ range: state.range, by: state.by }, "", urlOf(state.range, state.by, state.segment));
  state.stale.add("compare");
  refreshActive();
}

const segmentParameter = (segment) => `${segment.field}:${segment.value}`;

// `field:value` as a segment of a configured field, or why it is none.
function segmentOf(text) {
  if (!text) return { segment: null };
  const colon = text.indexOf(":");
  const field = text.slice(0, colon), value = text.slice(colon + 1);
  if (colon < 1 || !value) return { problem: `Segment: "${text}" is not field:value` };
  if (!state.meta.segments.includes(field)) {
    const fields = state.meta.segments.join(", ") || "none configured";
    return { problem: `Segment: "${field}" is not a segment field (${fields})` };
  }
  return { segment: { field, value } };
}

function dayCount({ from, to }) {
  return (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1;
}

function seriesBy(range, by) {
  if (isHourTime(range.from)) return "hour";
  return by || (dayCount(range) <= HOURLY_UP_TO_DAYS ? "hour" : "day");
}

// The range a URL names, or why it names none; no parameters: the configured default range.
function rangeOf(search) {
  const params = new URLSearchParams(search);
  const by = ["hour", "day"].includes(params.get("by")) ? params.get("by") : "";
  const { segment = null, problem: segmentProblem = "" } = segmentOf(params.get("segment"));
  const compare = compareOf(params);
  if (!params.has("from") && !params.has("to")) {
    return { range: { ...state.meta.default_range }, by, segment, compare, problem: segmentProblem };
  }
  const range = { from: params.get("from") || "", to: params.get("to") || "" };
  const problem = check(range, by) || segmentProblem;
  return problem ? { problem, range: { ...state.meta.default_range }, by, segment, compare }
    : { range, by, segment, compare };
}

function check({ from, to }, by = "") {
  if (isHourTime(from) || isHourTime(to)) return checkHours(from, to, by);
  if (!isDay(from)) return `From: "${from}" is not a date; expected YYYY-MM-DD (or YYYY-MM-DDTHH:00)`;
  if (!isDay(to)) return `To: "${to}" is not a date; expected YYYY-MM-DD (or YYYY-MM-DDTHH:00)`;
  if (to < from) return `To: ${to} is before ${from}`;
  const span = dayCount({ from, to });
  if (span > state.meta.max_range_days) return `The range spans ${span} days; at most ${state.meta.max_range_days}`;
  if (by === "hour" && span > MAX_HOURLY_DAYS) return `Per hour: at most ${MAX_HOURLY_DAYS} days; this range spans ${span}`;
  return "";
}

function checkHours(from, to, by) {
  for (const [name, value] of [["From", from], ["To", to]]) {
    if (!isHourTime(value)) return `${name}: "${value}" is not a local hour; give both ends as YYYY-MM-DDTHH:00, or both as dates`;
  }
  const hours = wallHours(from, to);
  if (hours <= 0) return `To: ${to} is not after ${from} (an hour range ends at to, excluded)`;
  if (hours > MAX_HOURLY_DAYS * 24) return `The range spans ${hours} hours; at most ${MAX_HOURLY_DAYS * 24}`;
  if (by === "day") return "An hour-precise range is shown per hour; give dates for a series per day";
  return "";
}

// Range values are digits, dashes, T and colons: written as they are, so the address stays readable; a segment's
// value is encoded but for its colon. The Compare tab's choice follows, its parts named.
function urlOf(range, by, segment) {
  const narrowed = segment ? `&segment=${encodeURIComponent(segmentParameter(segment)).replace("%3A", ":")}` : "";
  const compared = state.compare ? [["compare", "field"], ["a", "a"], ["b", "b"]]
    .filter(([, part]) => state.compare[part])
    .map(([name, part]) => `&${name}=${encodeURIComponent(state.compare[part])}`).join("") : "";
  return `?from=${range.from}&to=${range.to}${by ? `&by=${by}` : ""}${narrowed}${compared}#${state.active}`;
}

// The line under the tabs naming the segment shown, or saying that this tab covers every prediction anyway.
function showScopeNote() {
  const note = $("scope");
  const tab = tabs.find((t) => t.id === state.active);
  note.hidden = !state.segment;
  if (!state.segment) return;
  const name = `${state.segment.field} = ${state.segment.value}`;
  if (tab && tab.unsegmented) note.textContent = `Segment ${name} is selected, but ${tab.unsegmented}.`;
  else if (tab && tab.partlySegmented) note.textContent = `Segment ${name}: ${tab.partlySegmented}.`;
  else note.textContent = `Segment ${name} only: every figure on this tab counts just its predictions and reviews.`;
}

// The selector's choices: every prediction, then each field's values seen in the range (busiest first), and the
// selected segment even when the range holds none of it. Resolves to the fields' values.
async function showSegments(range) {
  const select = $("segment");
  $("segment-choice").hidden = state.meta.segments.length === 0;
  if (state.meta.segments.length === 0) return [];
  const listed = await getJSON("/api/segments", { from: range.from, to: range.to });
  if (range !== state.range) return listed.fields;   // a newer range was chosen meanwhile: its own list shows
  const option = (value, text) => Object.assign(document.createElement("option"), { value, textContent: text });
  const groups = listed.fields.map(({ field, values }) => {
    const group = Object.assign(document.createElement("optgroup"), { label: field });
    const shown = values.map((v) => option(`${field}:${v.value}`, `${field} = ${v.value} (${count(v.predictions)} `
                                                                  + `predictions)`));
    if (state.segment && state.segment.field === field && !values.some((v) => v.value === state.segment.value)) {
      shown.push(option(segmentParameter(state.segment), `${field} = ${state.segment.value} (none in the range)`));
    }
    group.append(...shown);
    return group;
  });
  select.replaceChildren(option("", "all predictions"), ...groups);
  select.value = state.segment ? segmentParameter(state.segment) : "";
  return listed.fields;
}

// Show a range (and segment): the form, the presets' pressed state, the zone line, the segment's choices and
// names, and every tab marked stale.
function show(range, by, segment = null) {
  state.range = { from: range.from, to: range.to };
  state.by = by;
  state.segment = segment;
  applyScope(segment);
  showScopeNote();
  state.segments = showSegments(state.range).catch((error) => {
    showError(error);
    return [];
  });
  setRange(state.range);
  $("from").value = range.from;
  $("to").value = range.to;
  $("by").value = by;
  showPicker(range);
  for (const preset of document.querySelectorAll(".presets button")) {
    const presetRange = presetOf(preset);
    preset.setAttribute("aria-pressed", String(range.from === presetRange.from && range.to === presetRange.to));
  }
  const zone = state.meta.timezone;
  const per = seriesBy(range, by);
  if (isHourTime(range.from)) {
    const hours = wallHours(range.from, range.to);
    $("zone").textContent = `${hours} local hours, ${range.from.replace("T", " ")} to ${range.to.replace("T", " ")} `
      + `(excluded), in ${zone}; charts per hour`;
  } else {
    const days = dayCount(range);
    $("zone").textContent = `${days} local day${days === 1 ? "" : "s"} in ${zone}; charts per ${per}`;
  }
  return everythingStale();
}

// A new range (or segment) chosen here: a new history entry, so the back button returns to the one before.
function choose(range, by, segment = state.segment) {
  const problem = check(range, by);
  refuseRange(problem);
  if (problem) return;
  const same = (a, b) => (a ? segmentParameter(a) : "") === (b ? segmentParameter(b) : "");
  if (range.from !== state.range.from || range.to !== state.range.to || by !== state.by
      || !same(segment, state.segment)) {
    history.pushState({ range, by }, "", urlOf(range, by, segment));
  }
  show(range, by, segment);
}

// A preset's range now: the last 24 local hours (the current one so far included), or the last N local days.
function presetOf(preset) {
  const zone = state.meta.timezone;
  if (preset.dataset.hours) return lastHours(zone, Number(preset.dataset.hours));
  const last = today(zone);
  return { from: addDays(last, 1 - Number(preset.dataset.days)), to: last };
}

let showPicker = () => {};

function startForm() {
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    choose({ from: $("from").value.trim(), to: $("to").value.trim() }, $("by").value);
  });
  $("by").addEventListener("change", () => choose(state.range, $("by").value));
  $("segment").addEventListener("change", () => choose(state.range, state.by, segmentOf($("segment").value).segment));
  for (const preset of document.querySelectorAll(".presets button")) {
    preset.addEventListener("click", () => choose(presetOf(preset), ""));
  }
  showPicker = startPicker($("calendar-toggle"), $("calendar"), (range) => choose(range, $("by").value),
                           () => state.meta.timezone);
  window.addEventListener("popstate", () => {
    const { range, by, segment, compare, problem } = rangeOf(location.search);
    state.compare = compare;
    const tab = location.hash.slice(1);
    if (tabs.some((t) => t.id === tab) && tab !== state.active) select(tab, { draw: false });
    refuseRange(problem);
    show(range, by, segment);
  });
}

async function start() {
  state.meta = await getJSON("/api/meta");
  tabs = TABS.filter((tab) => !tab.needsSegments || state.meta.segments.length);
  build();
  startForm();
  const { range, by, segment, compare, problem } = rangeOf(location.search);
  state.compare = compare;
  history.replaceState({ range, by }, "", problem ? urlOf(range, by, segment) : `${location.search}${location.hash}`);
  const tab = location.hash.slice(1);
  state.active = tabs.some((t) => t.id === tab) ? tab : tabs[0].id;
  const badge = $("alerts-badge");
  badge.addEventListener("click", () => select("drift", { focus: true }));
  select(state.active, { draw: false });
  refuseRange(problem && `${problem}: showing the default range instead`);
  await Promise.all([show(range, by, segment), refreshBadge(badge).catch(showError)]);
  connect($("live"), () => everythingStale(), () => alertsChanged(badge));
  // The charts take their colours from the page's CSS: redraw them when the colour scheme changes.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    applyTheme();
    everythingStale();
  });
  document.body.dataset.ready = "true";
}

start().catch(showError);
