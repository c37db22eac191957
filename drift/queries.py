"""JSON-ready reads for the web layer: open and past alerts, the latest findings, drift statistics per day.

Every function returns plain dicts and lists (datetimes as ISO 8601 strings) and reads only the alerts
collection, the state document {_id: "drift"} and the hourly rollups of both kinds.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

from pymongo import DESCENDING

from clara.config import Config
from clara.db import Collections
from clara.predictions import PredictionTotals, predictions_by_day
from clara.rollups import Totals, day_bounds, totals_by_day
from drift import checks
from drift.evaluate import DRIFT_STATE_ID
from drift.windows import (FIELDS, PREDICTION_FIELDS, Window, predictions_between,
                           totals_between, valid_predictions)

UTC = dt.timezone.utc
SUMMARY = {"transitions": 0, "deliveries": 0, "delivery_lease": 0}


def open_alerts(cols: Collections) -> list[dict[str, Any]]:
    """Open alerts, newest first, without their transition and delivery logs."""
    return [_json(doc) for doc in cols.alerts.find({"status": "open"}, SUMMARY).sort("opened_at", DESCENDING)]


def past_alerts(cols: Collections, start: dt.datetime | None = None, end: dt.datetime | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Resolved alerts opened in [start, end), newest first, at most `limit`."""
    selector: dict[str, Any] = {"status": "resolved"}
    opened = {key: value for key, value in (("$gte", start), ("$lt", end)) if value is not None}
    if opened:
        selector["opened_at"] = opened
    cursor = cols.alerts.find(selector, SUMMARY).sort("opened_at", DESCENDING).limit(limit)
    return [_json(doc) for doc in cursor]


def alert_detail(cols: Collections, alert_id: str) -> dict[str, Any] | None:
    """One alert with its transitions and the state of every webhook delivery."""
    doc = cols.alerts.find_one({"_id": alert_id}, {"delivery_lease": 0})
    return None if doc is None else _json(doc)


def latest_findings(cols: Collections) -> dict[str, Any]:
    """The last evaluation: when it ran and every detector's statistic, threshold, verdict and sentence, and how
    many per-segment findings did not fit the state document (drift.evaluate.kept_findings)."""
    state = cols.state.find_one({"_id": DRIFT_STATE_ID}) or {}
    return {"evaluated_at": _json(state.get("evaluated_at")), "findings": _json(state.get("findings", [])),
            "segment_findings_left_out": state.get("segment_findings_left_out", 0)}


def daily_statistics(cols: Collections, config: Config, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Each local day's checks (day window against its reference period), for charts over time.

    {"days": [...], "series": {key: [{"day", "value", "p_value", "firing", "reference_value", "alerting",
    "population"}, ...]}}: the checks on all predictions have a point per day with predictions (from the
    prediction rollups), those on reviewed predictions one per day with reviews; a day without has no point.
    `days` are the days with reviews. Detector keys are those of the findings.
    """
    zone = config.model.zone
    start, end = day_bounds(first - dt.timedelta(days=reference_days(config)), last, zone)
    by_day = totals_by_day(cols.rollups.find({"_id": {"$gte": start, "$lt": end}}, FIELDS), zone)
    predicted = predictions_by_day(cols.predictions.find({"_id": {"$gte": start, "$lt": end}}, PREDICTION_FIELDS),
                                   zone)
    fixed = fixed_reference(config, functools.partial(totals_between, cols.rollups))
    fixed_predictions = fixed_reference(config, functools.partial(predictions_between, cols.predictions))
    return day_checks(by_day, predicted, fixed, fixed_predictions, config, first, last)


def day_checks(by_day: Mapping[dt.date, Totals], predicted: Mapping[dt.date, PredictionTotals],
               fixed: Window | None, fixed_predictions: Window | None, config: Config, first: dt.date,
               last: dt.date) -> dict[str, Any]:
    """daily_statistics' checks, from the totals per local day of both kinds (from the reference period's first
    day on) and the fixed reference windows (None for a rolling reference): the same for every prediction and
    for one segment's (drift.segment_days)."""
    zone = config.model.zone
    days, series = [], {}
    day = first
    while day <= last:
        day_start, day_end = day_bounds(day, day, zone)
        found = []   # all predictions first, then the reviewed ones (the order of the charts)
        counted = predicted.get(day)
        if counted is not None and valid_predictions(counted):
            window = Window("day", day.isoformat(), day_start, day_end, counted)
            reference = fixed_predictions or _rolling(predicted, day, config, day_start, PredictionTotals.sum)
            found += checks.prediction_checks(window, reference, config)
        totals = by_day.get(day)
        if totals is not None and totals.reviews:
            window = Window("day", day.isoformat(), day_start, day_end, totals)
            reference = fixed or _rolling(by_day, day, config, day_start, Totals.sum)
            days.append(day.isoformat())
            found += checks.window_checks(window, reference, config)
        for finding in found:
            series.setdefault(finding.key, []).append({
                "day": day.isoformat(), "value": finding.statistic.get("value"),
                "p_value": finding.statistic.get("p_value"), "firing": finding.firing,
                "reference_value": finding.statistic.get("reference_value"), "alerting": finding.alerting,
                "population": finding.population})
        day += dt.timedelta(days=1)
    return {"days": days, "series": series}


def reference_days(config: Config) -> int:
    """How many days before the range a rolling reference needs (none for fixed dates)."""
    return 0 if config.drift.reference_start else config.drift.baseline_days


def fixed_reference(config: Config, summed: Callable[[dt.datetime, dt.datetime], Any]) -> Window | None:
    """The fixed reference period's window, its totals summed by `summed(start, end)`; None for a rolling one."""
    drift = config.drift
    if not drift.reference_start:
        return None
    first, last = dt.date.fromisoformat(drift.reference_start), dt.date.fromisoformat(drift.reference_end)
    start, end = day_bounds(first, last, config.model.zone)
    return Window("reference", f"{first.isoformat()}..{last.isoformat()}", start, end, summed(start, end))


def _rolling(by_day: Mapping[dt.date, Any], day: dt.date, config: Config, day_start: dt.datetime,
             add_up: Callable) -> Window:
    """The baseline_days local days before `day`, summed (the day window's rolling reference)."""
    days = config.drift.baseline_days
    parts = [by_day[before] for back in range(1, days + 1) if (before := day - dt.timedelta(days=back)) in by_day]
    start = day_bounds(day - dt.timedelta(days=days), day, config.model.zone)[0]
    return Window("reference", f"the {days} days before", start, day_start, add_up(parts))



def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
    if isinstance(value, Mapping):
        return {("id" if key == "_id" else key): _json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    return value
