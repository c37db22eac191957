"""The volume alert on all predictions: it opens when the model service stops inserting and when traffic
spikes, resolves when traffic is back to its usual for the hour of the week, and goes through the same
lifecycle (cooldown, webhook deliveries) as every alert. Predictions are counted by the consumer."""

from __future__ import annotations

import datetime as dt
import random

from clara.db import Collections
from consumer.predictions import recount_replacing
from drift.evaluate import evaluate
from drift.volume import volume_finding
from drift.windows import today_so_far
from simulator.generator import PredictionStream, Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour
from tests.drift.scenario import TRAINING, drift_settings
from tests.support.inserts import count_inserts

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 15, tzinfo=UTC)   # the model service's last insert before it stops
HOUR = dt.timedelta(hours=1)
PER_HOUR = 100
HOOK = {"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"}


def settings() -> Settings:
    return Settings(Behaviour(class_mix=tuple(float(c) for c in TRAINING), accuracy=(0.9,) * len(TRAINING)),
                    review_fraction=0.0)


def insert_traffic(client, cols, config, start: dt.datetime, end: dt.datetime, per_hour: int, seed: int) -> None:
    """Predictions at `per_hour` spread over [start, end), inserted and counted as the consumer counts inserts."""
    stream, times = PredictionStream(settings(), seed), random.Random(seed)
    n = round((end - start) / HOUR * per_hour)
    docs = [stream.next(at, 0.0).document for at in sorted(
        start + (end - start) * times.random() for _ in range(n))]
    cols.source.insert_many(docs)
    count_inserts(client, cols, config, docs)


def volume(evaluation):
    [finding] = [f for f in evaluation.findings if f.detector == "volume"]
    return finding


def test_volume_alert_opens_when_inserts_stop_and_on_a_spike_and_resolves(mongo_client, collections, make_config):
    sections = drift_settings(volume_weeks=2)
    sections["alerts"] = {"cooldown_seconds": 600, "webhooks": [HOOK]}
    config = make_config(**sections)
    # Two weeks and a day of history at PER_HOUR, counted as a first start counts a collection.
    write_history(collections.source, history_documents(settings(), "volume", END, 15, PER_HOUR * 24))
    recount_replacing(collections, config.n_classes, config.model.rollup_period, None)

    steady = volume(evaluate(collections, config, END - 0.5 * HOUR))
    assert steady.firing is False and steady.population == "all predictions"
    assert steady.message.startswith("all predictions: ") and "median of 2 weeks" in steady.message

    # The model service stops at END: within the hour, silence is seen (critical).
    stopped = evaluate(collections, config, END + 40 * dt.timedelta(minutes=1))
    finding = volume(stopped)
    assert finding.firing is True and finding.severity == "critical", finding.message
    assert "none since 00:00 UTC" in finding.message and "may have stopped" in finding.message
    assert [(t.key, t.kind) for t in stopped.transitions] == [("volume:last_hour", "opened")]
    # An hour later the whole hour is far below its usual: the same alert, still open.
    later = evaluate(collections, config, END + 1.5 * HOUR)
    assert volume(later).firing is True and later.transitions == []
    assert "far below" in volume(later).message and "may have stopped" in volume(later).message
    alert = collections.alerts.find_one({"key": "volume:last_hour", "status": "open"})
    assert alert["severity"] == "critical" and alert["evaluations"] == 2 and alert["population"] == "all predictions"
    assert [d["id"] for d in alert["deliveries"]] == [f"{alert['_id']}:opened:ops"]   # the webhook's delivery

    # It starts again at END + 1.5 h; once a whole hour is back to the usual, the alert resolves.
    insert_traffic(mongo_client, collections, config, END + 1.5 * HOUR, END + 3 * HOUR, PER_HOUR, seed=1)
    back = evaluate(collections, config, END + 3 * HOUR)
    assert volume(back).firing is False, volume(back).message
    assert [(t.key, t.kind) for t in back.transitions] == [("volume:last_hour", "resolved")]

    # A spike: six times the usual in one hour (after the cooldown).
    insert_traffic(mongo_client, collections, config, END + 3 * HOUR, END + 4 * HOUR, 6 * PER_HOUR, seed=2)
    spike = evaluate(collections, config, END + 4 * HOUR + dt.timedelta(minutes=1))
    finding = volume(spike)
    assert finding.firing is True and finding.severity == "warning" and "far above" in finding.message
    assert finding.statistic["observed"] == 6 * PER_HOUR and finding.statistic["value"] > 3
    assert [(t.key, t.kind) for t in spike.transitions] == [("volume:last_hour", "opened")]
    insert_traffic(mongo_client, collections, config, END + 4 * HOUR, END + 5 * HOUR, PER_HOUR, seed=3)
    calm = evaluate(collections, config, END + 5 * HOUR)
    assert [(t.key, t.kind) for t in calm.transitions] == [("volume:last_hour", "resolved")]
    assert collections.alerts.count_documents({"key": "volume:last_hour"}) == 2
    assert collections.alerts.count_documents({"key": "volume:last_hour", "status": "open"}) == 0


def test_no_verdict_without_history_or_traffic_to_judge(mongo_client, collections, make_config):
    config = make_config(**drift_settings())
    assert volume(evaluate(collections, config, END)).firing is None          # no prediction ever
    insert_traffic(mongo_client, collections, config, END - 3 * HOUR, END, PER_HOUR, seed=4)
    fresh = volume(evaluate(collections, config, END + 0.5 * HOUR))
    assert fresh.firing is None and "no earlier week" in fresh.message        # a week old at the least
    # Quiet hours (5 an hour a week ago, none now) decide nothing: too few on every side.
    quiet = make_config(**drift_settings(volume_weeks=1))
    night = END + dt.timedelta(days=30)
    week_ago = night - dt.timedelta(weeks=1)
    insert_traffic(mongo_client, collections, quiet, week_ago - 2 * HOUR, week_ago + HOUR, 5, seed=5)
    finding = volume(evaluate(collections, quiet, night + 0.5 * HOUR))
    assert finding.firing is None and "too few" in finding.message, finding.message


def test_in_a_quarter_hour_zone_the_check_sums_each_hours_periods_and_today_starts_at_local_midnight(
        mongo_client, make_config):
    """Asia/Kathmandu (+05:45) keeps 15-minute prediction rollups: the volume check adds an hour's four up,
    and today's windows run from the local midnight (18:15 UTC), not from a UTC hour."""
    config = make_config(model={"timezone": "Asia/Kathmandu"}, drift={"volume_weeks": 2})
    cols = Collections.of(mongo_client, config)
    now = dt.datetime(2025, 3, 15, 18, 20, tzinfo=UTC)   # 00:05 on the 16th in Kathmandu
    last = dt.datetime(2025, 3, 15, 17, tzinfo=UTC)
    for weeks_back, per_period in ((0, 5), (1, 50), (2, 50)):   # the last hour: 20, where 200 is usual
        for quarter in range(4):
            start = last - weeks_back * dt.timedelta(weeks=1) + quarter * dt.timedelta(minutes=15)
            cols.predictions.insert_one({"_id": start, "predictions": per_period, "classes": {"0": per_period}})
    finding = volume_finding(cols.predictions, config, now)
    assert finding.window["predictions"] == 20 and finding.statistic["expected"] == 200
    assert finding.firing is True
    day, start, end = today_so_far(config, now)
    assert day == dt.date(2025, 3, 16)
    assert start == dt.datetime(2025, 3, 15, 18, 15, tzinfo=UTC) and end == dt.datetime(2025, 3, 15, 19, tzinfo=UTC)
