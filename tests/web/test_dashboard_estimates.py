"""The honest numbers on the dashboard, in headless Chromium: the Metrics tab draws accuracy per day with its
95 % Wilson band (a day with too few reviews drawn hollow, never hidden), the estimated accuracy of the
unreviewed predictions as a dashed line beside it, the reliability diagram with ECE, MCE and the direction in
words, and where the next reviews help most; the Training data tab adds the estimated true-class mix of all
traffic (or says why it refuses). At a phone's width (390 px) and a desktop's (1440 px), in both colour
schemes: no horizontal overflow, no console error, no serious or critical axe-core violation.

One data set (two weeks of simulated traffic and a last day with few reviews), one server and one browser
serve the whole module (test_dashboard_views' fixtures, over this module's own `dashboard_data`).
Screenshots go to $CLARA_SCREENSHOTS, or a directory below pytest's temporary directory; the path is printed
at the end.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from clara.config import config_from_mapping
from clara.db import Collections
from consumer.catchup import catch_up
from consumer.predictions import recount_replacing
from simulator.generator import Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour
from tests.web.alerts_history import DAY, TRAINING, history_end
from tests.web.test_dashboard import CHROMIUM
from tests.web.test_dashboard_views import axe_source, base_url, browser, opened, screenshots, seeded  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="scripts/setup --browser installs chromium"),
              pytest.mark.asyncio(loop_scope="module")]
WIDTHS = {"phone": 390, "desktop": 1440}
SCHEMES = ("light", "dark")
TABS = ("metrics", "training")
# The parts of those tabs this module is about, each also shot alone (a full phone page is too tall to read).
PARTS = {"metrics": (".accuracy-estimates", ".calibration-section", ".review-hints"), "training": ("[data-name=training-mix]",)}
HISTORY_DAYS, PER_DAY = 14, 300     # the default range (7 days) and its reference period (the 7 days before)
LAST_DAY = 50                       # yesterday: about 20 reviews, fewer than the 30 of a certain day


def load_estimates_data(client, cols: Collections, config, end) -> None:
    """Two weeks of predictions, 40 % of them reviewed, ending the day before `end`; then that day, with few."""
    behaviour = Behaviour(class_mix=tuple(float(c) for c in TRAINING), accuracy=(0.92, 0.9, 0.85, 0.9, 0.7, 0.9, 0.88))
    settings = Settings(behaviour, review_fraction=0.4, review_delay=600.0, legacy_fraction=0.0)
    write_history(cols.source, history_documents(settings, "web-estimates", end - DAY, HISTORY_DAYS, PER_DAY))
    write_history(cols.source, history_documents(settings, "web-estimates-last", end, 1, LAST_DAY))
    catch_up(client, cols, config)
    recount_replacing(cols, config.n_classes, config.model.rollup_period, None)


@pytest.fixture(scope="module")
def dashboard_data(mongo_uri, tmp_path_factory):
    root = tmp_path_factory.mktemp("estimates")
    config = config_from_mapping({"mongodb": {"database": f"t_{uuid.uuid4().hex[:12]}"},
                                  "model": {"training_counts": list(TRAINING), "timezone": "UTC"},
                                  "profiles": {"local_store": False, "local_store_dir": str(root / "profiles")},
                                  "web": {"sse_heartbeat_seconds": 0.5}},
                                 {"MONGODB_URI": mongo_uri}, source="test")
    yield from seeded(config, load_estimates_data)


async def drawn(page, canvas: str) -> dict:
    """What a chart draws: its labels and, per dataset, its label, data and dash pattern."""
    return await page.evaluate("""id => { const chart = Chart.getChart(document.getElementById(id));
      return { labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({ label: d.label, data: d.data,
        dash: d.borderDash || [], fill: d.fill ?? null, background: d.pointBackgroundColor || null,
        whiskers: d.whiskers || null })) }; }""", canvas)


async def test_metrics_draw_the_band_the_estimate_the_calibration_and_the_hints(browser, base_url):
    async with opened(browser, 1440, "light", base_url + "/#metrics") as view:
        page = view.page
        intervals = await view.api("/api/intervals")
        unreviewed = await view.api("/api/unreviewed")
        chart = await drawn(page, "metrics-accuracy-interval")
        assert chart["labels"] == [d["day"] for d in intervals["days"]]
        low, high, realized, legend_only, estimated, combined = chart["datasets"]
        assert low["data"] == [d["accuracy"]["interval"] and d["accuracy"]["interval"]["low"] for d in intervals["days"]]
        assert high["fill"] == "-1" and "Wilson" in high["label"]
        assert high["data"] == [d["accuracy"]["interval"] and d["accuracy"]["interval"]["high"]
                                for d in intervals["days"]]
        assert realized["data"] == [d["accuracy"]["value"] for d in intervals["days"]]
        # The day with few reviews is drawn (hollow, named in the legend), not hidden.
        few = [i for i, d in enumerate(intervals["days"]) if d["uncertain"] and d["reviews"]]
        assert len(few) == 1 and realized["data"][few[0]] is not None
        assert len(set(realized["background"])) == 2 and realized["background"][few[0]] != realized["background"][0]
        assert "uncertain" in legend_only["label"] and all(v is None for v in legend_only["data"])
        assert estimated["label"] == "unreviewed predictions: estimated (post-stratified by confidence)"
        assert estimated["dash"] and estimated["data"] == [d["estimate"]["value"] for d in unreviewed["days"]]
        assert any(v is not None for v in estimated["data"])
        assert combined["data"] == [d["combined"]["value"] for d in unreviewed["days"]]
        tiles = await page.evaluate("Object.fromEntries([...document.querySelectorAll('.estimate-tiles .value')]"
                                    ".map(v => [v.dataset.metric, JSON.parse(v.dataset.value)]))")
        assert tiles["accuracy-interval"] == intervals["total"]["accuracy"]["value"]
        assert tiles["f1-macro-interval"] == intervals["total"]["f1"]["macro"]["value"]
        assert tiles["unreviewed-estimate"] == unreviewed["total"]["estimate"]["value"]
        assert tiles["combined-accuracy"] == unreviewed["total"]["combined"]["value"]
        assert "bootstrap" in await page.text_content(".estimate-tiles")
        assumptions = await page.text_content(".assumptions")
        assert unreviewed["total"]["estimate"]["assumption"] in assumptions

        # The reliability diagram: the diagonal, one point per non-empty bin with its interval; ECE, MCE in words.
        calibration = await view.api("/api/calibration")
        diagram = await drawn(page, "calibration-reliability")
        diagonal, observed = diagram["datasets"]
        assert diagonal["data"] == [{"x": 0, "y": 0}, {"x": 1, "y": 1}]
        assert observed["data"] == [{"x": b["confidence"], "y": b["accuracy"]} for b in calibration["total"]["bins"]]
        assert observed["whiskers"] == [b["interval"] for b in calibration["total"]["bins"]]
        facts = await page.text_content(".calibration .facts")
        assert "ECE" in facts and "MCE" in facts and calibration["total"]["direction"] in facts
        await page.select_option(".calibration-class", "4")
        diagram = await drawn(page, "calibration-reliability")
        assert diagram["datasets"][1]["data"] == [{"x": b["confidence"], "y": b["accuracy"]}
                                                  for b in calibration["by_class"][4]["bins"]]
        assert "green_point" in await page.text_content("[data-name=calibration-reliability] h2")

        # Review hints: reviews a day for ±2 points, and the bins and classes to review next.
        hints = await view.api("/api/review-hints")
        needed = await page.evaluate("JSON.parse(document.querySelector('[data-metric=reviews-needed-random]')"
                                     ".dataset.value)")
        assert needed == hints["reviews_needed"]["wilson"]["per_day"] > 0
        rows = await page.evaluate("[...document.querySelectorAll('[data-name=review-hints-bins] tbody tr')]"
                                   ".map(r => r.cells[0].textContent)")
        assert rows == [f"{round(float(a) * 100)}–{round(float(b) * 100)} %"
                        for a, b in (h["label"].split("-") for h in hints["bins"][:5])]
        reason = hints["reviews_needed"]["post_stratified"]["reason"]
        assert reason and reason in await page.text_content(".hint-tiles")


async def test_training_data_shows_the_estimated_true_class_mix(browser, base_url):
    async with opened(browser, 390, "dark", base_url + "/#training") as view:
        shift = await view.api("/api/label-shift")
        chart = await drawn(view.page, "training-mix")
        estimated = chart["datasets"][2]
        assert estimated["label"].startswith("all predictions, true class estimated (BBSE")
        if shift["estimate"]["defined"]:
            assert estimated["data"] == shift["estimate"]["mix"]
            assert estimated["whiskers"] == shift["estimate"]["intervals"]
            assert not await view.page.is_visible("[data-name=training-mix] .refusal")
        else:
            assert shift["estimate"]["reason"] in await view.page.text_content("[data-name=training-mix] .refusal")


async def test_the_training_data_tab_says_why_the_estimate_refuses(browser, base_url, screenshots):
    """The history's first days: their reference period (the days before) has no reviews, so the estimate refuses."""
    first = (history_end() - (HISTORY_DAYS + 1) * DAY).date().isoformat()
    last = (history_end() - (HISTORY_DAYS - 1) * DAY).date().isoformat()
    async with opened(browser, 390, "light", f"{base_url}/?from={first}&to={last}#training") as view:
        shift = await view.api(f"/api/label-shift?from={first}&to={last}")
        assert not shift["estimate"]["defined"] and shift["estimate"]["reason"]
        refusal = view.page.locator("[data-name=training-mix] .refusal")
        assert await refusal.is_visible()
        assert shift["estimate"]["reason"] in await refusal.text_content()
        chart = await drawn(view.page, "training-mix")
        assert "refused" in chart["datasets"][2]["label"] and set(chart["datasets"][2]["data"]) == {None}
        await view.page.screenshot(path=screenshots / "phone-light-training-refused.png", full_page=True)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("size", WIDTHS)
async def test_the_changed_tabs_fit_the_screen_and_are_accessible(browser, base_url, axe_source, screenshots, size,
                                                                  scheme):
    async with opened(browser, WIDTHS[size], scheme, base_url + "/") as view:
        await view.page.evaluate(axe_source)
        for tab in TABS:
            await view.tab(tab)
            await view.page.wait_for_timeout(50)
            width = await view.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{tab} at {size} ({scheme}) is {width[0]} px wide in a {width[1]} px window"
            await view.page.screenshot(path=screenshots / f"{size}-{scheme}-{tab}.png", full_page=True)
            for n, selector in enumerate(PARTS[tab]):
                await view.page.locator(selector).screenshot(path=screenshots / f"{size}-{scheme}-{tab}-{n}.png")
            violations = await view.page.evaluate("""async () => {
              const result = await axe.run(document, { resultTypes: ["violations"] });
              return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
                .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target).join(" | ")}`);
            }""")
            assert violations == [], f"{tab} at {size} ({scheme}): {violations}"
