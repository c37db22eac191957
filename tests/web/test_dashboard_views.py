"""The dashboard as people see it, in headless Chromium: every tab (and Data health and Compare with a segment selected
and a comparison linked) at a phone's width (390 px) and a desktop's (1440 px), in the light and the dark colour
scheme, fits the screen, logs no error and has no serious or critical axe-core violation; the tabs answer the
keyboard; a link with a range (of days, or of hours) opens that range and the back button returns to the previous
one; the 24 h preset charts the last 24 local hours as scikit-learn counts them on the raw documents; the calendar
sets the range by keyboard; the confusion heatmap runs top-down like its table; every drift check keeps its chart in
its detector's collapsible line; the CSV of the daily metrics holds the API's numbers; charts download as PNG; a
Compare link shows exactly its two values (the API's figures, scikit-learn's on the raw documents) and a new choice
goes into the address, back and forward included; Data health of a segment shows that segment's figures and names
what is the whole system's.

One data set (a week of simulated traffic with an accuracy drift, its alerts, documents set aside, and
traffic from midnight to now so that the last 24 hours always hold some), one server and one browser serve
the whole module. Screenshots of every tab in both schemes are written to
$CLARA_SCREENSHOTS, or a directory below pytest's temporary directory; the path is printed at the end.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import random
import re
import shutil
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import async_playwright

from clara.config import config_from_mapping
from clara.db import Collections, connect, ensure_indexes
from tests.web.alerts_history import alert_sections, history_end, load, open_and_resolve
from consumer.catchup import catch_up
from tests.support.inserts import count_inserts
from tests.web.conftest import expected_metrics, local_day, make_documents
from tests.web.test_dashboard import CHROMIUM, LAUNCH_ARGS
from web import assets
from web.app import create_app

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="scripts/setup --browser installs chromium"),
              pytest.mark.asyncio(loop_scope="module")]
TABS = ["overview", "metrics", "samples", "per-class", "confusion", "training", "compare", "health", "drift"]
SITES = ("north", "south")
WIDTHS = {"phone": 390, "desktop": 1440}
HOUR = dt.timedelta(hours=1)
# Whether the focused element, through the calendar's shadow roots, is the day button of a date ("1 December").
DAY_FOCUSED = """day => {
  let focused = document.activeElement;
  while (focused && focused.shadowRoot && focused.shadowRoot.activeElement) focused = focused.shadowRoot.activeElement;
  const label = new Date(`${day}T00:00:00Z`).toLocaleDateString("en-GB",
                                                                 { day: "numeric", month: "long", timeZone: "UTC" });
  return focused && focused.getAttribute("aria-label") === label;
}"""
SCHEMES = ("light", "dark")
# Documents set aside: two reasons, one of them with two different bad values (one row per reason on screen).
REJECTS = [("r1", "output_confidence", "expected a number from 0 to 1, got 1.5"),
           ("r2", "output_confidence", "expected a number from 0 to 1, got -0.2"),
           ("r3", "output_prediction", "unknown class id 9; expected 0 to 6")]


def with_segments(end: dt.datetime):
    """Segment fields of the history's documents: model v1 alone for its first three days, then v1 and v2 side by
    side (the comparison's same days); two sites."""
    rng = random.Random(18)
    switch = end - dt.timedelta(days=4)

    def tag(doc: dict) -> dict:
        doc["model_version"] = "v1" if doc["timestamp"] < switch or rng.random() < 0.5 else "v2"
        doc["site"] = rng.choice(SITES)
        return doc
    return tag


def load_dashboard_data(client, cols: Collections, config, end: dt.datetime) -> None:
    """A week of predictions and reviews with an accuracy drift, its alerts (one open, one resolved), and
    documents set aside; each with a model version and a site (segments)."""
    load(client, cols, config, end, with_segments(end))
    open_and_resolve(cols, config, end)
    now = dt.datetime.now(dt.timezone.utc)
    # Traffic from midnight to this hour, after the alerts were evaluated: the last 24 hours always hold some.
    today = make_documents(random.Random(2412), end, (now - end) // HOUR + 1, 40, config.n_classes, first_id=50_000_000)
    cols.source.insert_many(today)
    catch_up(client, cols, config)
    count_inserts(client, cols, config, today)
    for n, (doc_id, field, reason) in enumerate(REJECTS):
        cols.rejects.insert_one({"_id": doc_id, "field": field, "reason": f"{field}: {reason}",
                                 "at": now - dt.timedelta(minutes=n)})


def dashboard_config(mongo_uri: str, root: Path):
    sections = alert_sections(history_end())
    raw = sections | {"mongodb": {"database": f"t_{uuid.uuid4().hex[:12]}"},
                      "profiles": sections["profiles"] | {"local_store_dir": str(root / "profiles")},
                      "web": {"sse_heartbeat_seconds": 0.5, "sse_max_updates_per_second": 10.0},
                      "segments": {"fields": ["model_version", "site"]}}
    return config_from_mapping(raw, {"MONGODB_URI": mongo_uri}, source="test")


async def serve(config, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    return runner, f"http://127.0.0.1:{port}"


def seeded(config, load):
    """A module's dashboard data: `config`'s database filled by `load(client, cols, config, end)`, dropped after."""
    client = connect(config)
    cols = Collections.of(client, config)
    ensure_indexes(cols)
    load(client, cols, config, history_end())
    try:
        yield config
    finally:
        client.drop_database(config.mongodb.database)
        client.close()


@pytest.fixture(scope="module")
def dashboard_data(mongo_uri, tmp_path_factory):
    yield from seeded(dashboard_config(mongo_uri, tmp_path_factory.mktemp("dashboard")), load_dashboard_data)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base_url(dashboard_data):
    runner, url = await serve(dashboard_data)
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory, request) -> Path:
    directory = Path(os.environ.get("CLARA_SCREENSHOTS") or tmp_path_factory.mktemp("dashboard-screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ndashboard screenshots: {directory}")


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's script, from the npm package package-lock.json pins (integrity-checked like the page's)."""
    return assets.browser_test_file("axe-core/axe.min.js").read_text()


class Page:
    """A page in a fresh browser context, collecting console errors and uncaught exceptions."""

    def __init__(self, page):
        self.page, self.problems = page, []
        page.on("console", lambda message: self.problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(str(error)))

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.page.wait_for_function("() => document.body.dataset.ready === 'true'")

    async def tab(self, tab: str) -> None:
        """Show a tab and wait until it is drawn (or see that it already is)."""
        page = self.page
        if await page.get_attribute(f"#tab-{tab}", "aria-selected") == "true" and \
                await page.evaluate("tab => document.body.dataset.refreshed === tab && !document.body.dataset.busy",
                                    tab):
            return
        before = await page.evaluate("document.body.dataset.refreshes")
        await page.click(f"#tab-{tab}")
        await page.wait_for_function(
            "([before, tab]) => document.body.dataset.refreshes !== before && document.body.dataset.refreshed === tab",
            arg=[before, tab])

    async def api(self, path: str):
        return await self.page.evaluate("path => fetch(path).then(r => r.json())", path)

    def clean(self) -> None:
        assert self.problems == []


@contextlib.asynccontextmanager
async def opened(browser, width: int, scheme: str, url: str):
    """The dashboard at `url` in a fresh context of that width and colour scheme, ready (and its tab drawn when
    the URL names one); closed afterwards, and no console error may have been logged meanwhile."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                        accept_downloads=True)
    try:
        view = Page(await context.new_page())
        await view.open(url)
        tab = url.partition("#")[2]
        if tab:
            await view.page.wait_for_function("tab => document.body.dataset.refreshed === tab", arg=tab)
        yield view
        view.clean()
    finally:
        await context.close()


# What the screenshots cover: every tab as the page opens, and, with a segment selected and a comparison that the
# address names (not the default one), Data health and Compare: the address, and each tab with its picture's name.
VIEWS = {"tabs": ("", [(tab, tab) for tab in TABS]),
         "segmented": ("?segment=model_version:v2&compare=site&a=south&b=north",
                       [("health", "health-segment"), ("compare", "compare-linked"), ("drift", "drift-segment")])}


@pytest.mark.parametrize("views", VIEWS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("size", WIDTHS)
async def test_every_tab_fits_the_screen_and_is_accessible(browser, base_url, axe_source, screenshots, size, scheme,
                                                           views):
    address, shown = VIEWS[views]
    async with opened(browser, WIDTHS[size], scheme, f"{base_url}/{address}") as view:
        await view.page.evaluate(axe_source)
        for tab, name in shown:
            await view.tab(tab)
            await view.page.wait_for_timeout(50)
            width = await view.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{name} at {size} ({scheme}) is {width[0]} px wide in a {width[1]} px window"
            await view.page.screenshot(path=screenshots / f"{size}-{scheme}-{name}.png", full_page=True)
            violations = await serious_violations(view.page)
            assert violations == [], f"{name} at {size} ({scheme}): {violations}"


async def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is (its script already evaluated there)."""
    return await page.evaluate("""async () => {
      const result = await axe.run(document, { resultTypes: ["violations"] });
      return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
        .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target).join(" | ")}`);
    }""")


async def test_a_link_opens_its_range_and_the_back_button_returns(browser, base_url, dashboard_data):
    end = history_end().date()
    first, last = (end - dt.timedelta(days=4)).isoformat(), (end - dt.timedelta(days=2)).isoformat()
    async with opened(browser, 1440, "light", f"{base_url}/?from={first}&to={last}#metrics") as view:
        page = view.page
        assert await page.get_attribute("#tab-metrics", "aria-selected") == "true"
        assert [await page.input_value("#from"), await page.input_value("#to")] == [first, last]
        daily = await view.api(f"/api/daily?from={first}&to={last}")
        assert await page.evaluate("Chart.getChart(document.getElementById('metrics-recall')).data.labels") == \
            daily["days"] == [first, (end - dt.timedelta(days=3)).isoformat(), last]

        # A preset is a new history entry; back returns to the linked range, forward to the preset.
        before = await page.evaluate("document.body.dataset.refreshes")
        await page.click(".presets button[data-days='30']")
        await page.wait_for_function("b => document.body.dataset.refreshes !== b", arg=before)
        today = dt.datetime.now(dashboard_data.model.zone).date()
        thirty = [(today - dt.timedelta(days=29)).isoformat(), today.isoformat()]
        assert page.url.endswith(f"?from={thirty[0]}&to={thirty[1]}#metrics")
        assert await page.get_attribute(".presets button[data-days='30']", "aria-pressed") == "true"
        await page.wait_for_function(
            "n => Chart.getChart(document.getElementById('metrics-recall')).data.labels.length === n", arg=30)
        await page.go_back()
        await page.wait_for_function("first => document.getElementById('from').value === first", arg=first)
        await page.wait_for_function(
            "n => Chart.getChart(document.getElementById('metrics-recall')).data.labels.length === n", arg=3)
        await page.go_forward()
        await page.wait_for_function("first => document.getElementById('from').value === first", arg=thirty[0])

        # Dates typed by hand in ISO form; a bad one is refused with a message, the range shown stays.
        await page.fill("#from", "2026-13-01")
        await page.click("#range button[type='submit']")
        await page.wait_for_function("() => document.getElementById('error').textContent.includes('not a date')")
        assert await page.input_value("#to") == thirty[1]
        # A refresh finishing afterwards (here another tab's first draw) leaves the reason shown.
        before = await page.evaluate("document.body.dataset.refreshes")
        await page.click("#tab-overview")
        await page.wait_for_function("b => document.body.dataset.refreshes !== b", arg=before)
        assert "not a date" in await page.text_content("#error")


def _hours_of(view_range: tuple[str, str], zone) -> list[dt.datetime]:
    """The UTC start of each local hour of an hour-precise range (local wall times, `to` excluded)."""
    start, end = (dt.datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(dt.timezone.utc)
                  for text in view_range)
    return [start + n * HOUR for n in range((end - start) // HOUR)]


async def _chart(page, canvas_id: str):
    return await page.evaluate("id => { const c = Chart.getChart(document.getElementById(id)); "
                               "return { labels: c.data.labels, data: c.data.datasets.map(d => d.data) }; }", canvas_id)


async def test_the_24_h_preset_shows_the_last_24_hours_per_hour_as_sklearn_counts_them(
        browser, base_url, dashboard_data, screenshots):
    zone = dashboard_data.model.zone
    async with opened(browser, 1440, "light", base_url + "/#overview") as view:
        page = view.page
        ends = {(dt.datetime.now(zone).replace(minute=0, second=0, microsecond=0) + HOUR)}
        await page.click(".presets button[data-hours='24']")
        ends.add(dt.datetime.now(zone).replace(minute=0, second=0, microsecond=0) + HOUR)
        await page.wait_for_function(
            "() => Chart.getChart(document.getElementById('overview-daily')).data.labels.length === 24 && "
            "Chart.getChart(document.getElementById('overview-volume')).data.labels.length === 24")
        params = dict(part.split("=") for part in page.url.partition("?")[2].partition("#")[0].split("&"))
        end = dt.datetime.fromisoformat(params["to"]).replace(tzinfo=zone)
        assert end in ends and params["from"] == (end - 24 * HOUR).strftime("%Y-%m-%dT%H:%M")
        assert await page.get_attribute(".presets button[data-hours='24']", "aria-pressed") == "true"
        assert [await page.input_value("#from"), await page.input_value("#to")] == [params["from"], params["to"]]
        hours = _hours_of((params["from"], params["to"]), zone)
        labels = [hour.astimezone(zone).strftime("%Y-%m-%d %H:%M") for hour in hours]
        daily = await _chart(page, "overview-daily")
        assert daily["labels"] == labels == (await _chart(page, "overview-volume"))["labels"]
        client = connect(dashboard_data)
        try:
            docs = list(Collections.of(client, dashboard_data).source.find(
                {"timestamp": {"$gte": hours[0], "$lt": hours[-1] + HOUR}}))
        finally:
            client.close()
        stamped = [(d["timestamp"].replace(tzinfo=dt.timezone.utc), d) for d in docs]
        expected = [expected_metrics([d for at, d in stamped if h <= at < h + HOUR], dashboard_data.n_classes)
                    for h in hours]
        assert sum(e["reviews"] for e in expected) > 500   # today's traffic, and at most hours the history's last day
        accuracy, precision, recall, f1, reviews = daily["data"]
        assert accuracy == [e["accuracy"] for e in expected]
        assert reviews == [e["reviews"] for e in expected]
        for score, shown in (("precision", precision), ("recall", recall), ("f1", f1)):
            assert shown == [e["macro"][score] if e["reviews"] else None for e in expected], score
        tiles = await page.evaluate("[...document.querySelectorAll('#panel-overview .range-tiles [data-metric]')]"
                                    ".map(t => [t.dataset.metric, t.dataset.value])")
        everything = expected_metrics(docs, dashboard_data.n_classes)
        assert dict(tiles)["reviews"] == str(everything["reviews"])
        assert float(dict(tiles)["accuracy"]) == everything["accuracy"]
        await page.screenshot(path=screenshots / "desktop-light-overview-24h.png", full_page=True)

        await view.tab("metrics")
        recall = await _chart(page, "metrics-recall")
        assert recall["labels"] == labels
        assert recall["data"] == [[e["macro"]["recall"] if e["reviews"] else None for e in expected],
                                  [e["weighted"]["recall"] if e["reviews"] else None for e in expected]]
        band = await _chart(page, "metrics-accuracy-interval")
        assert band["labels"] == labels and band["data"][2] == [e["accuracy"] for e in expected]
        assert "24 local hours" in await page.text_content("#zone")
        await page.screenshot(path=screenshots / "desktop-light-metrics-24h.png", full_page=True)


async def test_an_hourly_link_opens_that_range(browser, base_url, dashboard_data):
    zone = dashboard_data.model.zone
    last = history_end().astimezone(zone).date() - dt.timedelta(days=1)
    first_hour, end_hour = f"{last - dt.timedelta(days=1)}T19:00", f"{last}T07:00"
    async with opened(browser, 390, "dark", f"{base_url}/?from={first_hour}&to={end_hour}#metrics") as view:
        page = view.page
        assert [await page.input_value("#from"), await page.input_value("#to")] == [first_hour, end_hour]
        labels = [hour.astimezone(zone).strftime("%Y-%m-%d %H:%M") for hour in _hours_of((first_hour, end_hour), zone)]
        assert len(labels) == 12
        assert (await _chart(page, "metrics-recall"))["labels"] == labels
        api = await view.api(f"/api/daily?from={first_hour}&to={end_hour}")
        assert (await _chart(page, "metrics-recall"))["data"][0] == api["recall"]["macro"]
        # What is only reported per day says which whole days it covers.
        await view.tab("drift")
        assert f"{last - dt.timedelta(days=1)} to {last}" in await page.text_content("#panel-drift .days-note")


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_calendar_picks_days_into_the_url(browser, base_url, dashboard_data, axe_source, screenshots, scheme):
    today = dt.datetime.now(dashboard_data.model.zone).date()
    async with opened(browser, 390, scheme, base_url + "/#samples") as view:
        page = view.page
        await page.click("#calendar-toggle")
        assert await page.get_attribute("#calendar-toggle", "aria-expanded") == "true"
        assert await page.is_visible("#calendar calendar-range")
        await page.evaluate(axe_source)
        assert await serious_violations(page) == []
        await page.screenshot(path=screenshots / f"phone-{scheme}-calendar.png")
        await page.wait_for_function(DAY_FOCUSED, arg=today.isoformat())   # the calendar has the focus, on `to`
        day = today
        for key in ["ArrowLeft"] * 3 + ["Enter"] + ["ArrowRight"] * 2 + ["Enter"]:   # each key once the last one is in
            await page.keyboard.press(key)
            day += dt.timedelta(days={"ArrowLeft": -1, "ArrowRight": 1}.get(key, 0))
            if key != "Enter" or day == today - dt.timedelta(days=3):
                await page.wait_for_function(DAY_FOCUSED, arg=day.isoformat())
        first, last = today - dt.timedelta(days=3), today - dt.timedelta(days=1)
        await page.wait_for_function("s => location.search === s", arg=f"?from={first}&to={last}")
        await page.wait_for_function(
            "() => document.body.dataset.refreshed === 'samples' && !document.body.dataset.busy")
        summary = await view.api(f"/api/summary?from={first}&to={last}")
        shown = await page.evaluate("Chart.getChart(document.getElementById('samples-bar')).data.datasets[0].data")
        assert shown == summary["samples_by_class"]
        assert [await page.input_value("#from"), await page.input_value("#to")] == [first.isoformat(), last.isoformat()]
        assert await page.is_hidden("#calendar")
        assert await page.evaluate("document.activeElement.id") == "calendar-toggle"
        await page.click("#calendar-toggle")
        await page.keyboard.press("Escape")
        assert await page.is_hidden("#calendar")
        assert await page.evaluate("document.activeElement.id") == "calendar-toggle"


async def test_tabs_follow_the_arrow_keys(browser, base_url):
    async with opened(browser, 390, "dark", base_url + "/") as view:
        page = view.page
        await page.focus("#tab-overview")
        assert await page.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)") == \
            [0] + [-1] * (len(TABS) - 1)
        await page.keyboard.press("ArrowRight")
        assert await page.evaluate("document.activeElement.id") == "tab-metrics"
        assert await page.get_attribute("#tab-metrics", "aria-selected") == "true"
        assert await page.is_visible("#panel-metrics") and not await page.is_visible("#panel-overview")
        await page.keyboard.press("ArrowLeft")
        await page.keyboard.press("ArrowLeft")
        assert await page.evaluate("document.activeElement.id") == "tab-drift"
        await page.keyboard.press("Home")
        assert await page.evaluate("document.activeElement.id") == "tab-overview"
        await page.keyboard.press("End")
        await page.wait_for_function("() => document.body.dataset.refreshed === 'drift' && !document.body.dataset.busy")
        assert await page.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)") == \
            [-1] * (len(TABS) - 1) + [0]
        assert page.url.endswith("#drift")


async def test_downloads_hold_the_api_numbers(browser, base_url):
    async with opened(browser, 1440, "light", base_url + "/#metrics") as view:
        page = view.page
        meta = await view.api("/api/meta")
        first, last = meta["default_range"]["from"], meta["default_range"]["to"]
        daily = await view.api(f"/api/daily?from={first}&to={last}")
        async with page.expect_download() as info:
            await page.click("[data-name='metrics-daily'] .tools button[data-kind='csv']")
        download = await info.value
        assert download.suggested_filename == f"metrics-daily_{first}_{last}.csv"
        rows = list(csv.reader(io.StringIO(Path(await download.path()).read_text())))
        scores = [(score, average) for score in ("precision", "recall", "f1") for average in ("macro", "weighted")]
        assert rows[0] == ["day", "reviews", "accuracy", *[f"{score} {average}" for score, average in scores]]
        number = lambda text: None if text == "" else float(text)  # noqa: E731
        assert [row[0] for row in rows[1:]] == daily["days"]
        assert [int(row[1]) for row in rows[1:]] == daily["reviews"]
        assert [number(row[2]) for row in rows[1:]] == daily["accuracy"]
        for k, (score, average) in enumerate(scores):
            assert [number(row[3 + k]) for row in rows[1:]] == daily[score][average]

        # Every card offers its CSV, every chart its PNG too; a chart's PNG is an image of the chart.
        assert await page.evaluate("[...document.querySelectorAll('.card')].every(c => c.querySelector("
                                   "'.tools [data-kind=csv]') && (!c.querySelector('canvas') || "
                                   "c.querySelector('.tools [data-kind=png]')))")
        async with page.expect_download() as info:
            await page.click("[data-name='metrics-accuracy-interval'] .tools button[data-kind='png']")
        png = Path(await (await info.value).path()).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
        async with page.expect_download() as info:
            await page.click("[data-name='metrics-daily'] .tools button[data-kind='csv']")
        rows = list(csv.reader(io.StringIO(Path(await (await info.value).path()).read_text())))
        assert rows[0][:3] == ["day", "reviews", "accuracy"]
        assert [number(row[2]) for row in rows[1:]] == daily["accuracy"]


async def test_data_health_groups_documents_set_aside_by_reason(browser, base_url):
    async with opened(browser, 390, "light", base_url + "/#health") as view:
        page = view.page
        rows = await page.evaluate("[...document.querySelectorAll('[data-name=health-rejects] tbody tr')]"
                                   ".map(r => [...r.cells].map(c => c.textContent))")
        assert [row[:4] for row in rows] == [
            ["output_confidence", "expected a number from 0 to 1", "-0.2, 1.5", "2"],
            ["output_prediction", "unknown class id; expected 0 to 6", "9", "1"]]
        assert all(len(row[4]) == len("2026-01-01 00:00") for row in rows)


async def test_the_confusion_heatmap_runs_top_down_like_its_table(browser, base_url):
    async with opened(browser, 1440, "light", base_url + "/#confusion") as view:
        page = view.page
        classes = (await view.api("/api/meta"))["classes"]
        # The y scale's pixel of each class, its tick labels top-down, and the drawn diagonal cells' tops.
        order = await page.evaluate("""(classes) => {
          const chart = Chart.getChart(document.getElementById('confusion-counts'));
          const y = chart.scales.y, cells = chart.getDatasetMeta(0).data, data = chart.data.datasets[0].data;
          const rowTop = (name) => cells[data.findIndex((c) => c.y === name && c.x === name)].y;
          return { pixels: classes.map((_, i) => y.getPixelForValue(i)), labels: y.ticks.map((t) => t.label[0]),
                   cells: classes.map(rowTop) };
        }""", classes)
        table = await page.evaluate("[...document.querySelectorAll('[data-name=confusion-table] tbody tr')]"
                                    ".map(r => r.cells[0].textContent)")
        assert table == classes
        assert order["labels"] == classes
        assert order["pixels"] == sorted(order["pixels"]) and order["pixels"][0] < order["pixels"][-1]   # 0 on top
        assert order["cells"] == sorted(order["cells"]) and len(order["cells"]) == len(classes)


async def test_drift_checks_are_one_line_per_detector_that_opens_to_its_charts(browser, base_url, screenshots):
    async with opened(browser, 390, "light", base_url + "/#drift") as view:
        page = view.page
        drift = await view.api("/api/drift")
        groups = await page.evaluate("""[...document.querySelectorAll('#panel-drift .check-groups > details')].map(
          (d) => ({ detector: d.dataset.detector, open: d.open, summary: d.querySelector('summary').textContent,
                    population: d.parentElement.dataset.population,
                    charts: [...d.querySelectorAll('canvas')].map((c) => c.id) }))""")
        by_group: dict[tuple, list] = {}
        for series in drift["series"]:
            by_group.setdefault((series["population"], series["detector"]), []).append(series)
        assert {(g["population"], g["detector"]) for g in groups} == set(by_group)   # nothing lost, one line each
        for g in groups:
            series = by_group[(g["population"], g["detector"])]
            assert not g["open"]
            assert sorted(g["charts"]) == sorted("drift-" + re.sub(r"[^A-Za-z0-9_-]", "-", s["key"]) for s in series)
            beyond = sum(sum(1 for f in s["firing"] if f) for s in series)
            assert f"{len(series)} check{'s' if len(series) > 1 else ''}" in g["summary"]
            assert (f"▲ {beyond} day" in g["summary"]) if beyond else ("no day beyond the line" in g["summary"])
        # A line opens from the keyboard, and its charts are drawn at the card's width.
        first = groups[0]
        await page.focus(f"#panel-drift details[data-detector='{first['detector']}'] > summary")
        await page.keyboard.press("Enter")
        chart = first["charts"][0]
        await page.wait_for_function("id => Chart.getChart(document.getElementById(id)).width > 200", arg=chart)
        assert await page.is_visible(f"#{chart}")
        await page.screenshot(path=screenshots / "phone-light-drift-opened.png", full_page=True)
        assert await page.evaluate("document.querySelector('#panel-drift .past-group').open") is False
        assert len(await page.evaluate("[...document.querySelectorAll('#panel-drift .past-alerts tr[data-alert-id]')]"
                                       ".map(r => r.dataset.alertId)")) == len((await view.api("/api/alerts"))["past"])


async def test_a_segmented_drift_tab_shows_the_segments_own_checks_and_live_verdicts(browser, base_url,
                                                                                     dashboard_data, screenshots):
    async with opened(browser, 1440, "light", f"{base_url}/?segment=site:north#drift") as view:
        page = view.page
        first, last = await page.input_value("#from"), await page.input_value("#to")
        drift = await view.api(f"/api/drift?from={first}&to={last}&segment=site:north")
        every = await view.api(f"/api/drift?from={first}&to={last}")
        assert drift["segment"] == {"field": "site", "value": "north"} and every["segment"] is None
        assert drift["findings"] and {f["segment"] for f in drift["findings"]} == {"site=north"}
        assert drift["series"] and [s["values"] for s in drift["series"]] != [s["values"] for s in every["series"]]
        for series in drift["series"]:   # each chart draws the segment's own series, its title naming it
            canvas = "drift-" + re.sub(r"[^A-Za-z0-9_-]", "-", series["key"])
            chart = await _chart(page, canvas)
            assert chart["labels"] == drift["days"] and chart["data"][0] == series["values"]
            assert chart["data"][2] == series["threshold"]
            title = await page.text_content(f"#panel-drift .card:has(#{canvas}) h2")
            assert title == series["title"] + " · site = north" and series["population"] in title
        lines = await page.evaluate("""[...document.querySelectorAll('#panel-drift .check-groups > details')].map(
          (d) => ({ detector: d.dataset.detector, population: d.parentElement.dataset.population,
                    live: Number(d.dataset.live), firing: Number(d.dataset.firing),
                    summary: d.querySelector('summary').textContent }))""")
        assert lines
        for line in lines:   # each detector's line carries the segment's live verdicts
            live = [f for f in drift["findings"]
                    if f["detector"] == line["detector"] and f["population"] == line["population"]]
            assert (line["live"], line["firing"]) == (len(live), sum(1 for f in live if f["firing"]))
            assert "live windows" in line["summary"] or not live
        sections = await page.eval_on_selector_all("#panel-drift h2.section", "hs => hs.map(h => h.textContent)")
        assert sections == ["Day-window checks per day, all predictions · site = north",
                            "Day-window checks per day, reviewed predictions · site = north"]
        assert (await page.text_content("#panel-drift .open-alerts")).strip()
        assert not (await page.text_content("#panel-drift [data-name=alerts-open] h2")).endswith("north")
        scope = await page.text_content("#scope")
        assert "is selected, but" not in scope and "the day-window checks and their live verdicts are its own" in scope
        await page.click("#panel-drift details[data-detector=accuracy] > summary")   # a line opens to its charts
        await page.wait_for_function("() => Chart.getChart(document.getElementById('drift-accuracy-day')).width > 200")
        await page.screenshot(path=screenshots / "desktop-light-drift-segment-opened.png", full_page=True)
        await page.select_option("#segment", "")   # and back to every prediction: the overall series and verdicts
        await page.wait_for_function("() => !location.search.includes('segment=')")
        await page.wait_for_function("""want => {
          const c = Chart.getChart(document.getElementById(want.id));
          return c && JSON.stringify(c.data.datasets[0].data) === JSON.stringify(want.values); }""",
                                     arg={"id": "drift-" + re.sub(r"[^A-Za-z0-9_-]", "-", every["series"][0]["key"]),
                                          "values": every["series"][0]["values"]})
        assert not (await page.text_content("#panel-drift h2.section")).endswith("north")


async def test_a_segment_in_the_url_narrows_every_segmented_tab_and_the_back_button_returns(
        browser, base_url, dashboard_data, screenshots):
    end = history_end().date()
    first, last = (end - dt.timedelta(days=3)).isoformat(), (end - dt.timedelta(days=1)).isoformat()
    link = f"{base_url}/?from={first}&to={last}&segment=model_version:v2#overview"
    async with opened(browser, 1440, "light", link) as view:
        page = view.page
        assert await page.input_value("#segment") == "model_version:v2"
        mine = await view.api(f"/api/summary?from={first}&to={last}&segment=model_version:v2")
        every = await view.api(f"/api/summary?from={first}&to={last}")
        assert 0 < mine["reviews"] < every["reviews"]
        assert await page.get_attribute("#panel-overview .range-tiles [data-metric=reviews]", "data-value") == \
            str(mine["reviews"])
        assert float(await page.get_attribute("#panel-overview .range-tiles [data-metric=accuracy]", "data-value")) == \
            mine["accuracy"]
        titles = await page.eval_on_selector_all("#panel-overview h2", "hs => hs.map(h => h.textContent)")
        assert titles and all(title.endswith(" · model_version = v2") for title in titles), titles
        assert any("all predictions" in title for title in titles) and any("reviewed" in title for title in titles)
        assert "Segment model_version = v2 only" in await page.text_content("#scope")
        await page.screenshot(path=screenshots / "desktop-light-overview-segment.png", full_page=True)
        await view.tab("per-class")
        classes = await view.api(f"/api/classes?from={first}&to={last}&segment=model_version:v2")
        assert (await _chart(page, "per-class-recall"))["data"] == [classes["recall"]]
        assert (await page.text_content("#panel-per-class h2")).endswith("· model_version = v2")
        await view.tab("drift")   # a segment's own alert names its segment in the check column
        checks = await page.eval_on_selector_all("#panel-drift table.open-alerts tbody tr, "
                                                 "#panel-drift .open-alerts tbody tr",
                                                 "rs => rs.map(r => [r.dataset.key, r.cells[1].textContent])")
        named = [(key, check) for key, check in checks if "@" in key]
        assert named and all(check.endswith(", " + key.rsplit("@", 1)[1].replace("=", " = ")) for key, check in named)
        await view.tab("health")   # pending and latency narrowed; the whole system's part says it is not
        assert (await page.text_content("#panel-health h2")).endswith("· model_version = v2")
        assert "the outbox and the consumer are the whole system's" in await page.text_content("#scope")

        before = await page.evaluate("document.body.dataset.refreshes")
        await page.select_option("#segment", "")
        await page.wait_for_function("b => document.body.dataset.refreshes !== b", arg=before)
        assert "segment=" not in page.url and await page.is_hidden("#scope")
        await view.tab("overview")
        assert await page.get_attribute("#panel-overview .range-tiles [data-metric=reviews]", "data-value") == \
            str(every["reviews"])
        assert not (await page.text_content("#panel-overview h2.section")).endswith("v2")
        await page.go_back()   # to the entry the segment was left from (the health tab)
        await page.wait_for_function("() => document.getElementById('segment').value === 'model_version:v2'")
        await view.tab("overview")
        await page.wait_for_function(
            "n => document.querySelector('#panel-overview .range-tiles [data-metric=reviews]').dataset.value === n",
            arg=str(mine["reviews"]))
        assert page.url.endswith(f"?from={first}&to={last}&segment=model_version:v2#overview")


async def test_the_compare_tab_puts_two_versions_side_by_side_in_words(browser, base_url, screenshots):
    async with opened(browser, 390, "dark", base_url + "/#compare") as view:
        page = view.page
        meta = await view.api("/api/meta")
        first, last = meta["default_range"]["from"], meta["default_range"]["to"]
        assert [await page.input_value(f"#panel-compare .compare-{name}") for name in ("field", "a", "b")] == \
            ["model_version", "v2", "v1"]
        body = await view.api(f"/api/compare?from={first}&to={last}&field=model_version&a=v2&b=v1")
        assert len(body["common"]) >= 3
        verdict = await page.text_content("#panel-compare .verdict")
        assert body["accuracy"]["verdict"] in verdict and f"Over the {len(body['common'])} days" in verdict
        assert ("not significant" in verdict) == (body["accuracy"]["significant"] is False)
        assert (await _chart(page, "compare-recall"))["data"] == [[row[side]["value"] for row in body["recall"]]
                                                                  for side in ("a", "b")]
        rows = await page.eval_on_selector_all("#panel-compare .table tbody tr", "rs => rs.length")
        assert rows == len(meta["classes"])
        await page.screenshot(path=screenshots / "phone-dark-compare-versions.png", full_page=True)
        await page.select_option("#panel-compare .compare-field", "site")   # the two sites, on the same days
        await page.wait_for_function("() => /north|south/.test(document.querySelector('#panel-compare .verdict')"
                                     ".textContent)")
        assert {await page.input_value("#panel-compare .compare-a"),
                await page.input_value("#panel-compare .compare-b")} == {"north", "south"}


def _source_docs(config, selector: dict) -> list[dict]:
    client = connect(config)
    try:
        return list(Collections.of(client, config).source.find(selector))
    finally:
        client.close()


async def _compare_choice(page) -> list[str]:
    return [await page.input_value(f"#panel-compare .compare-{name}") for name in ("field", "a", "b")]


async def _choose(page, selector: str, value: str) -> None:
    """Pick a value in one of the Compare tab's selectors and wait until the tab is drawn again."""
    before = await page.evaluate("document.body.dataset.refreshes")
    await page.select_option(selector, value)
    await page.wait_for_function("b => document.body.dataset.refreshes !== b && !document.body.dataset.busy",
                                 arg=before)


async def test_a_compare_link_shows_exactly_its_two_versions_and_a_new_choice_goes_into_the_url(
        browser, base_url, dashboard_data):
    end = history_end().date()
    first, last = (end - dt.timedelta(days=3)).isoformat(), (end - dt.timedelta(days=1)).isoformat()
    query = f"?from={first}&to={last}&compare=model_version&a=v1&b=v2"   # the default is A = v2, B = v1
    async with opened(browser, 1440, "light", f"{base_url}/{query}#compare") as view:
        page = view.page
        assert await _compare_choice(page) == ["model_version", "v1", "v2"]
        assert await page.is_hidden("#panel-compare .compare-note")
        body = await view.api(f"/api/compare?from={first}&to={last}&field=model_version&a=v1&b=v2")
        assert (body["a"], body["b"]) == ("v1", "v2") and len(body["common"]) == 3
        tiles = dict(await page.evaluate("[...document.querySelectorAll('#panel-compare .compare-tiles [data-metric]')]"
                                         ".map(t => [t.dataset.metric, JSON.parse(t.dataset.value)])"))
        assert [tiles["compare-accuracy-a"], tiles["compare-accuracy-b"]] == \
            [body["accuracy"]["a"]["value"], body["accuracy"]["b"]["value"]]
        assert tiles["compare-difference"] == body["accuracy"]["difference"]
        assert body["accuracy"]["verdict"] in await page.text_content("#panel-compare .verdict")
        assert (await _chart(page, "compare-recall"))["data"] == [[row[side]["value"] for row in body["recall"]]
                                                                  for side in ("a", "b")]
        legend = await page.evaluate("Chart.getChart(document.getElementById('compare-accuracy')).data.datasets"
                                     ".map(d => d.label)")
        assert legend == ["model_version = v1", "model_version = v2"]
        # scikit-learn on the raw documents of each version, over the days both have reviews
        zone, common = dashboard_data.model.zone, set(body["common"])
        for side, version in (("a", "v1"), ("b", "v2")):
            docs = [doc for doc in _source_docs(dashboard_data, {"model_version": version})
                    if local_day(doc, zone).isoformat() in common]
            expected = expected_metrics(docs, dashboard_data.n_classes)
            assert (body["accuracy"][side]["n"], tiles[f"compare-accuracy-{side}"]) == \
                (expected["reviews"], expected["accuracy"]), side

        # A new choice is a new history entry; back returns to the linked one, forward to the choice.
        await _choose(page, "#panel-compare .compare-field", "site")
        sites = await _compare_choice(page)
        assert sites[0] == "site" and set(sites[1:]) == set(SITES)
        assert page.url.endswith(f"?from={first}&to={last}&compare=site&a={sites[1]}&b={sites[2]}#compare")
        verdict = await page.text_content("#panel-compare .verdict")
        assert sites[1] in verdict and sites[2] in verdict
        await _choose(page, "#panel-compare .compare-a", sites[2])   # A = B is allowed, and said
        assert page.url.endswith(f"&compare=site&a={sites[2]}&b={sites[2]}#compare")
        assert "the two sides are the same" in await page.text_content("#panel-compare .compare-note")
        await page.go_back()
        await page.wait_for_function("() => document.querySelector('#panel-compare .compare-a').value !== "
                                     "document.querySelector('#panel-compare .compare-b').value")
        await page.go_back()
        await page.wait_for_function("() => document.querySelector('#panel-compare .compare-field').value === "
                                     "'model_version' && !document.body.dataset.busy")
        assert await _compare_choice(page) == ["model_version", "v1", "v2"]
        assert page.url.endswith(f"{query}#compare")
        await page.go_forward()
        await page.wait_for_function("() => document.querySelector('#panel-compare .compare-field').value === 'site'")
        # A range chosen in the header keeps the comparison in the address.
        before = await page.evaluate("document.body.dataset.refreshes")
        await page.click(".presets button[data-days='7']")
        await page.wait_for_function("b => document.body.dataset.refreshes !== b", arg=before)
        assert f"&compare=site&a={sites[1]}&b={sites[2]}#compare" in page.url


async def test_a_compare_link_that_names_what_cannot_be_shown_says_so(browser, base_url, screenshots):
    end = history_end().date()
    first, last = (end - dt.timedelta(days=3)).isoformat(), (end - dt.timedelta(days=1)).isoformat()
    async with opened(browser, 390, "light",
                      f"{base_url}/?from={first}&to={last}&compare=model_version&a=v1&b=v9#compare") as view:
        page = view.page
        assert await _compare_choice(page) == ["model_version", "v1", "v9"]   # kept as named, not swapped
        note = await page.text_content("#panel-compare .compare-note")
        assert "B = v9, as the address names it: model_version = v9 has no predictions or reviews in this range" in note
        assert await page.evaluate("document.querySelector('#panel-compare .compare-b').selectedOptions[0]"
                                   ".textContent") == "v9 (none in the range)"
        assert "no day with reviews of both" in await page.text_content("#panel-compare .verdict")
        await page.screenshot(path=screenshots / "phone-light-compare-unseen.png", full_page=True)
    async with opened(browser, 390, "light", f"{base_url}/?compare=camera&a=c1#compare") as view:
        page = view.page
        assert await _compare_choice(page) == ["model_version", "v2", "v1"]   # the default range's default
        note = await page.text_content("#panel-compare .compare-note")
        assert "“camera”, which is not a segment field (model_version, site): model_version is compared instead" in note


async def test_data_health_of_a_segment_shows_its_figures_and_names_the_whole_systems(browser, base_url, screenshots):
    end = history_end().date()
    first, last = (end - dt.timedelta(days=3)).isoformat(), (end - dt.timedelta(days=1)).isoformat()
    link = f"{base_url}/?from={first}&to={last}&segment=model_version:v2#health"
    async with opened(browser, 1440, "dark", link) as view:
        page = view.page
        mine = await view.api(f"/api/health?from={first}&to={last}&segment=model_version:v2")
        every = await view.api(f"/api/health?from={first}&to={last}")
        assert 0 < mine["latency"]["count"] < every["latency"]["count"]
        values = dict(await page.evaluate("[...document.querySelectorAll('#panel-health [data-metric]')]"
                                          ".map(t => [t.dataset.metric, JSON.parse(t.dataset.value)])"))
        assert values["health-pending"] == mine["pending"]
        assert values["latency-mean"] == mine["latency"]["mean_seconds"]
        assert values["rejects-total"] == every["rejects"]["total"] == len(REJECTS)
        assert values["outbox-backlog"] == every["outbox_backlog"]
        assert values["segments-pending"] == every["segments_pending"]["batches"] == mine["segments_pending"]["batches"]
        assert (await _chart(page, "health-latency"))["data"] == [[b["count"] for b in mine["latency"]["histogram"]]]
        narrowed = await page.eval_on_selector_all("#panel-health > h2, #panel-health > .grid h2",
                                                   "hs => hs.map(h => h.textContent)")
        assert len(narrowed) == 2 and all(t.endswith(" · model_version = v2") for t in narrowed), narrowed
        assert "all predictions" in narrowed[0] and all("reviewed predictions" in t for t in narrowed)
        whole = await page.eval_on_selector_all("#panel-health .whole-system h2", "hs => hs.map(h => h.textContent)")
        assert len(whole) == 2 and all("model_version" not in t for t in whole), whole
        assert "whole system" in whole[0] and "every segment" in whole[1]
        labels = await page.eval_on_selector_all("#panel-health .system-tiles .label", "ls => ls.map(l => l.textContent)")
        assert all(re.search(r"every segment|whole stream|Last consumer batch", label) for label in labels), labels
        assert await page.text_content("#scope") == (
            "Segment model_version = v2: pending reviews and review latency count only its predictions and reviews; "
            "documents set aside, the outbox and the consumer are the whole system's.")
        await page.screenshot(path=screenshots / "desktop-dark-health-segment-3-days.png", full_page=True)
