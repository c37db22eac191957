"""The Drift & alerts tab in headless Chromium: alerts the drift engine wrote, the daily check charts, and
an alert opened during the test reaching the header badge and the tab without a reload."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.web.alerts_history import alert_sections, history_end, load, open_and_resolve, raise_floor
from tests.web.test_dashboard import CHROMIUM, browser_page, chart_data, open_tab  # noqa: F401 - a fixture
from web.app import create_app

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="scripts/setup --browser installs chromium")]
OPEN_ROWS = "[...document.querySelectorAll('#panel-drift .open-alerts tr[data-alert-id]')].map(r => r.dataset.alertId)"
PAST_ROWS = "[...document.querySelectorAll('#panel-drift .past-alerts tr[data-alert-id]')].map(r => r.dataset.alertId)"


@pytest.fixture
def web_config(make_config):
    return make_config(**alert_sections(history_end()),
                       web={"sse_heartbeat_seconds": 0.5, "sse_max_updates_per_second": 10.0},
                       consumer={"batch_max_seconds": 0.05})


async def test_drift_tab_shows_the_alerts_and_follows_them_live(aiohttp_server, mongo_client, web_config,
                                                                web_collections, browser_page):
    end = history_end()
    load(mongo_client, web_collections, web_config, end)
    during, _ = open_and_resolve(web_collections, web_config, end)
    resolved = next(t.alert_id for t in during.transitions if t.key == "accuracy:last_n")
    server = await aiohttp_server(create_app(web_config), host="127.0.0.1")
    page, problems = browser_page
    await page.goto(str(server.make_url("/")))
    await page.wait_for_function("() => document.body.dataset.ready === 'true'")
    await page.wait_for_function("() => document.querySelector('#live').dataset.state === 'up'")
    alerts = await page.evaluate("fetch('/api/alerts').then(r => r.json())")
    opened = [alert["id"] for alert in alerts["open"]]
    assert opened and await page.evaluate("document.getElementById('alerts-badge').dataset.count") == str(len(opened))

    await open_tab(page, "drift")
    assert await page.evaluate(OPEN_ROWS) == opened
    assert resolved in await page.evaluate(PAST_ROWS)
    first = await page.inner_text(f"#panel-drift tr[data-alert-id='{opened[0]}']")
    assert alerts["open"][0]["message"] in first and alerts["open"][0]["severity"] in first
    drift = await page.evaluate("fetch('/api/drift').then(r => r.json())")
    accuracy = next(s for s in drift["series"] if s["key"] == "accuracy:day")
    # The day's value, the days beyond the alert line again as triangles (not by colour alone), the alert line.
    beyond = [value if firing else None for value, firing in zip(accuracy["values"], accuracy["firing"])]
    assert await chart_data(page, "drift-accuracy-day") == [accuracy["values"], beyond, accuracy["threshold"]]
    assert any(beyond) and await page.evaluate(
        "Chart.getChart(document.getElementById('drift-accuracy-day')).data.datasets.map(d => d.pointStyle)") == \
        ["circle", "triangle", "line"]
    assert None in accuracy["values"]  # days without reviews stay gaps

    # An alert opened now reaches the badge (on every tab) and the open drift tab without a reload.
    await page.evaluate("window.__sameDocument = true")
    floor = await asyncio.to_thread(raise_floor, web_collections, web_config, end)
    [new] = [t.alert_id for t in floor.transitions if t.kind == "opened"]
    await page.wait_for_function("n => document.getElementById('alerts-badge').dataset.count === n",
                                 arg=str(len(opened) + 1), timeout=5_000)
    await page.wait_for_function(f"() => ({OPEN_ROWS})[0] === '{new}'", timeout=5_000)
    assert await page.evaluate("window.__sameDocument") is True
    assert await page.evaluate("document.getElementById('error').hidden")
    assert problems == []
