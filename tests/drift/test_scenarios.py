"""Weeks of simulated traffic through the consumer's catch-up: quiet when stable, the right alert on drift."""

from __future__ import annotations

import datetime as dt

import pytest

from clara.db import connect
from drift import queries
from drift.evaluate import evaluate_after_batch
from simulator.generator import Drift
from tests.drift.scenario import DAY, END, at_day, drift_settings, load_history, run_hourly

DRIFT_ON, DRIFT_OFF = 9, 11   # days from the start of the history
TWO_HOURS = dt.timedelta(hours=2)


def opened_keys(evaluations) -> list[str]:
    return [t.key for e in evaluations for t in e.transitions if t.kind == "opened"]


def test_stable_weeks_raise_no_drift_or_performance_alert(mongo_client, collections, make_config):
    # The defaults that matter: a rolling 7-day baseline, the recent past as class reference, day windows.
    config = make_config(**drift_settings(reference_start="", reference_end="", baseline_days=7))
    load_history(mongo_client, collections, config)
    evaluations = run_hourly(collections, config, at_day(7), END, step=TWO_HOURS)
    assert opened_keys(evaluations) == []
    assert collections.alerts.count_documents({}) == 0
    verdicts = {f.key for e in evaluations for f in e.findings if f.firing is False}
    assert {"prediction_drift:last_n", "label_drift:last_n", "confidence_drift:last_n", "accuracy:last_n",
            "accuracy:day", "confidence_drift:day"} <= verdicts
    history = queries.daily_statistics(collections, config, at_day(7).date(), (END - DAY).date())
    assert len(history["days"]) == 7
    assert all(point["firing"] is not True for points in history["series"].values() for point in points)
    assert len(history["series"]["accuracy:day"]) == 7


def reviews_between(cols, start, end) -> int:
    return sum(doc["reviews"] for doc in cols.rollups.find({"_id": {"$gte": start, "$lt": end}}))


@pytest.mark.parametrize("kind, strength, expected, quiet", [
    ("class-mix", 0.3, {"prediction_drift:last_n", "label_drift:last_n"}, {"accuracy:last_n"}),
    ("confidence", 0.3, {"confidence_drift:last_n"},
     {"accuracy:last_n", "prediction_drift:last_n", "label_drift:last_n"}),
    ("accuracy", 0.2, {"accuracy:last_n"}, {"label_drift:last_n"}),
])
def test_drift_opens_the_right_alert_and_it_resolves_after_the_drift(mongo_client, collections, config,
                                                                     kind, strength, expected, quiet):
    drift = Drift(kind, start=DRIFT_ON * 86400.0, end=DRIFT_OFF * 86400.0, strength=strength)
    load_history(mongo_client, collections, config, drift)
    window = config.drift.window_reviews
    evaluations = run_hourly(collections, config, at_day(DRIFT_ON - 1), at_day(DRIFT_OFF + 2), step=TWO_HOURS)
    for key in expected:
        opened = [(e.at, t) for e in evaluations for t in e.transitions if t.key == key and t.kind == "opened"]
        assert len(opened) == 1, f"{key}: expected one alert, got {opened}"
        at, transition = opened[0]
        assert at > at_day(DRIFT_ON), f"{key} opened before the drift started"
        assert reviews_between(collections, at_day(DRIFT_ON), at) <= window, f"{key} took too many reviews"
        alert = collections.alerts.find_one({"_id": transition.alert_id})
        assert alert["status"] == "resolved", f"{key} did not resolve after the drift ended"
        assert alert["resolved_at"] > at_day(DRIFT_OFF)
        assert reviews_between(collections, at_day(DRIFT_OFF), alert["resolved_at"]) <= 2 * window
        assert [t["kind"] for t in alert["transitions"]] == ["opened", "resolved"]
        assert alert["evaluations"] >= 2
    assert not quiet & set(opened_keys(evaluations)), f"unexpected alerts: {opened_keys(evaluations)}"


def test_evaluate_after_batch_is_throttled(mongo_client, collections, make_config):
    config = make_config(**drift_settings(evaluate_interval_seconds=60, accuracy_floor=0.6))
    load_history(mongo_client, collections, config, Drift("accuracy", start=0.0, strength=0.5))
    first = evaluate_after_batch(mongo_client, collections, config, now=END)
    assert first is not None and {"accuracy:last_n"} <= {t.key for t in first.transitions}
    assert evaluate_after_batch(mongo_client, collections, config, now=END + dt.timedelta(seconds=30)) is None
    again = evaluate_after_batch(mongo_client, collections, config, now=END + dt.timedelta(seconds=61))
    assert again is not None and again.transitions == []
    assert collections.alerts.count_documents({"key": "accuracy:last_n"}) == 1
    latest = queries.latest_findings(collections)
    assert latest["evaluated_at"] == again.at.isoformat()
    assert any(f["key"] == "accuracy:last_n" and f["firing"] for f in latest["findings"])
    other = connect(config)
    try:
        disabled = make_config(**drift_settings(enabled=False))
        assert evaluate_after_batch(other, collections, disabled, now=END + 2 * DAY) is None
    finally:
        other.close()
