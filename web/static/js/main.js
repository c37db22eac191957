// The dashboard: tabs sharing one date range, refreshed in place on live updates.
import { getJSON } from "./api.js";
import { refreshBadge } from "./badge.js";
import { applyTheme } from "./charts.js";
import { connect } from "./live.js";
import { TABS } from "./tabs/index.js";

const state = { meta: null, range: null, active: TABS[0].id, stale: new Set(), running: null, again: false };

function showError(error) {
  const box = document.getElementById("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

async function refresh(tabId) {
  const tab = TABS.find((t) => t.id === tabId);
  try {
    await tab.refresh({ meta: state.meta, range: state.range });
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
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  }
}

function select(tabId) {
  state.active = tabId;
  for (const tab of TABS) {
    document.getElementById(`tab-${tab.id}`).setAttribute("aria-selected", String(tab.id === tabId));
    document.getElementById(`panel-${tab.id}`).hidden = tab.id !== tabId;
  }
  if (state.stale.has(tabId)) refreshActive();
}

function build() {
  const nav = document.getElementById("tabs");
  const panels = document.getElementById("panels");
  for (const tab of TABS) {
    const button = document.createElement("button");
    button.id = `tab-${tab.id}`;
    button.type = "button";
    button.setAttribute("role", "tab");
    button.textContent = tab.title;
    button.addEventListener("click", () => select(tab.id));
    nav.append(button);
    const panel = document.createElement("section");
    panel.id = `panel-${tab.id}`;
    panel.setAttribute("role", "tabpanel");
    panels.append(panel);
    tab.build(panel, state.meta);
    state.stale.add(tab.id);
  }
}

function everythingStale() {
  TABS.forEach((tab) => state.stale.add(tab.id));
  return refreshActive();
}

// An alerts event: the badge on every tab, and the drift tab (now if it is on screen).
function alertsChanged(badge) {
  refreshBadge(badge).catch(showError);
  state.stale.add("drift");
  if (state.active === "drift") refreshActive();
}

async function start() {
  state.meta = await getJSON("/api/meta");
  const from = document.getElementById("from");
  const to = document.getElementById("to");
  from.value = state.meta.default_range.from;
  to.value = state.meta.default_range.to;
  state.range = { from: from.value, to: to.value };
  document.getElementById("zone").textContent = `days in ${state.meta.timezone}`;
  document.getElementById("range").addEventListener("submit", (event) => {
    event.preventDefault();
    state.range = { from: from.value, to: to.value };
    everythingStale();
  });
  build();
  const badge = document.getElementById("alerts-badge");
  badge.addEventListener("click", () => select("drift"));
  select(state.active);
  await Promise.all([state.running, refreshBadge(badge).catch(showError)]);
  connect(document.getElementById("live"), () => everythingStale(), () => alertsChanged(badge));
  // The charts take their colours from the page's CSS: redraw them when the colour scheme changes.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    applyTheme();
    everythingStale();
  });
  document.body.dataset.ready = "true";
}

start().catch(showError);
