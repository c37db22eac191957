"""The dashboard in headless Chromium (Debian's package): no console errors, every tab draws the API's
numbers, and a review processed during the test changes the page without a reload."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil

import pytest
from playwright.async_api import async_playwright

from tests.web.conftest import UTC, make_documents
from tests.support.inserts import count_inserts
from web.app import create_app

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="scripts/setup --browser installs chromium")]


@pytest.fixture
async def browser_page():
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            yield page, problems
        finally:
            await browser.close()


async def chart_data(page, canvas_id: str) -> list:
    return await page.evaluate(
        "id => Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data)", canvas_id)


async def metric(page, key: str):
    return await page.evaluate("key => JSON.parse(document.querySelector(`[data-metric='${key}']`).dataset.value)",
                               key)


async def open_tab(page, tab: str) -> None:
    """Click a tab and wait until it is drawn: a refresh of another tab that ends meanwhile is not enough."""
    before = await page.evaluate("document.body.dataset.refreshes")
    await page.click(f"#tab-{tab}")
    await page.wait_for_function(
        "([before, tab]) => document.body.dataset.refreshes !== before && document.body.dataset.refreshed === tab",
        arg=[before, tab])


async def test_every_tab_draws_the_api_numbers_and_updates_live(aiohttp_server, mongo_client, web_config,
                                                                web_collections, process, browser_page):
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    docs = make_documents(random.Random(4), now - dt.timedelta(hours=60), 60, 3, web_config.n_classes)
    web_collections.source.insert_many(docs)
    process()
    count_inserts(mongo_client, web_collections, web_config, docs)
    web_collections.rejects.insert_one({"_id": "bad", "reason": "filename: missing", "field": "filename", "at": now})
    server = await aiohttp_server(create_app(web_config), host="127.0.0.1")
    page, problems = browser_page
    await page.goto(str(server.make_url("/")))
    await page.wait_for_function("() => document.body.dataset.ready === 'true'")
    await page.wait_for_function("() => document.querySelector('#live').dataset.state === 'up'")

    async def api(path: str) -> dict:  # the API's own answers are the reference for the page
        return await page.evaluate("path => fetch(path).then(r => r.json())", path)

    meta = await api("/api/meta")
    # No segments configured: no selector, no scope line, no Compare tab.
    assert meta["segments"] == [] and await page.is_hidden("#segment-choice") and await page.is_hidden("#scope")
    assert await page.locator("#tab-compare").count() == 0
    query = f"?from={meta['default_range']['from']}&to={meta['default_range']['to']}"
    summary, daily = await api("/api/summary" + query), await api("/api/daily" + query)
    volume = await api("/api/volume" + query)
    assert summary["reviews"] > 0
    assert await metric(page, "reviews") == summary["reviews"]
    # All predictions: the volume chart stacked by review status, the coverage per day, today so far.
    assert volume["by"] == "day" and volume["total"]["predictions"] == len(docs)
    assert await chart_data(page, "overview-volume") == [volume["reviewed"], volume["rejected"], volume["pending"],
                                                         volume["bad"]]
    assert await chart_data(page, "overview-coverage") == [volume["coverage"]]
    assert any(value is not None for value in volume["coverage"]) and volume["coverage"][0] is None
    assert await metric(page, "pending") == volume["total"]["pending"]
    assert await metric(page, "range-coverage") == volume["total"]["coverage"]
    assert await metric(page, "today-predictions") == volume["today"]["predictions"]
    assert "all predictions" in await page.text_content("#panel-overview .card:has(#overview-volume) h2")
    assert await metric(page, "accuracy") == summary["accuracy"]
    assert await metric(page, "f1-macro") == summary["averages"]["macro"]["f1"]
    assert await metric(page, "precision-weighted") == summary["averages"]["weighted"]["precision"]
    assert await chart_data(page, "overview-classes") == [summary["samples_by_class"]]
    overview_daily = await chart_data(page, "overview-daily")
    assert overview_daily[0] == daily["accuracy"] and overview_daily[-1] == daily["reviews"]
    assert None in daily["accuracy"]  # the range's first days have no reviews: gaps, drawn as null

    await open_tab(page, "metrics")
    assert await chart_data(page, "metrics-recall") == [daily["recall"]["macro"], daily["recall"]["weighted"]]
    realized = await page.evaluate("Chart.getChart(document.getElementById('metrics-accuracy-interval')).data.datasets"
                                   ".filter(d => d.label.startsWith('reviewed')).map(d => d.data)")
    assert realized[0] == pytest.approx(daily["accuracy"])   # accuracy per day is drawn once, inside its band
    assert await page.locator("#metrics-accuracy").count() == 0
    await open_tab(page, "samples")
    assert await chart_data(page, "samples-bar") == [summary["samples_by_class"], summary["predicted_by_class"]]
    assert await page.locator("#panel-samples canvas").count() == 1  # one chart, not the same data twice
    classes = await api("/api/classes" + query)
    await open_tab(page, "per-class")
    for score in ("precision", "recall", "f1"):
        assert await chart_data(page, f"per-class-{score}") == [classes[score]]
    confusion = await api("/api/confusion" + query)
    await open_tab(page, "confusion")
    cells = await chart_data(page, "confusion-counts")
    assert {(c["y"], c["x"]): c["v"] for c in cells[0]} == {
        (meta["classes"][t], meta["classes"][p]): confusion["matrix"][t][p]
        for t in range(len(meta["classes"])) for p in range(len(meta["classes"]))}
    training = await api("/api/training" + query)
    await open_tab(page, "training")
    # Grouped bars: training set, all predictions (predicted class, and true class estimated by BBSE, or nothing
    # where it refuses), reviewed predictions.
    mix = await chart_data(page, "training-mix")
    assert len(mix) == 4
    assert mix[0] == [None] * len(meta["classes"]) and sum(training["training_counts"]) == 0  # none configured
    assert [sum(mix[1]), sum(mix[3])] == [pytest.approx(1.0)] * 2      # shares of all and of reviewed
    assert mix[1] == [n / sum(training["all_predicted"]) for n in training["all_predicted"]]
    await open_tab(page, "health")
    assert await metric(page, "rejects-total") == 1
    assert await metric(page, "health-pending") == summary["pending"]
    assert "segment" not in await page.text_content("#panel-health")   # none configured: no word of segments

    # A review processed now reaches the open tab without a reload. (Overview is still fresh: no data
    # changed since it was drawn, so switching back to it redraws nothing.)
    await page.click("#tab-overview")
    await page.wait_for_function("() => !document.getElementById('panel-overview').hidden")
    await page.evaluate("window.__sameDocument = true")
    fresh = {"_id": 10_000_000, "filename": "live.jpg", "output_prediction": 1, "output_confidence": 0.9,
             "timestamp": now, "output_validated": 1, "timestamp_validated": now}
    await asyncio.to_thread(web_collections.source.insert_one, fresh)
    await asyncio.to_thread(process)
    await page.wait_for_function(
        "expected => JSON.parse(document.querySelector(\"[data-metric='reviews']\").dataset.value) === expected",
        arg=summary["reviews"] + 1, timeout=10_000)
    await asyncio.to_thread(count_inserts, mongo_client, web_collections, web_config, [fresh])  # its prediction
    await page.wait_for_function(
        "expected => JSON.parse(document.querySelector(\"[data-metric='today-predictions']\").dataset.value) "
        "=== expected", arg=volume["today"]["predictions"] + 1, timeout=10_000)
    assert await page.evaluate("window.__sameDocument") is True
    await page.wait_for_timeout(300)  # let the refresh redraw every chart
    assert await page.evaluate("document.getElementById('error').hidden"), \
        await page.evaluate("document.getElementById('error').textContent")
    assert problems == []
