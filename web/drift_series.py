"""Drift statistics per day as chart series: one value per day of the range (null on days without reviews)
and the line each detector alerts at, from the configured thresholds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from clara.config import Config

# detector -> (statistic name, how the threshold reads)
STATISTICS = {
    "prediction_drift": ("js_distance", "alert at JS distance ≥ {:g} (and p < {:g})"),
    "label_drift": ("js_distance", "alert at JS distance ≥ {:g} (and p < {:g})"),
    "confidence_drift": ("js_distance", "alert at JS distance ≥ {:g} (and p < {:g})"),
    "accuracy": ("accuracy", "alert below the reference minus {:g} (and p < {:g})"),
    "recall": ("recall", "alert below the reference minus {:g} (and p < {:g})"),
}


def _alert_line(detector: str, point: dict[str, Any] | None, config: Config) -> float | None:
    """Where the statistic of one day alerts (the significance test aside); None on a gap or when unknown."""
    drift = config.drift
    if detector in ("prediction_drift", "label_drift"):
        return drift.class_mix_min_distance
    if detector == "confidence_drift":
        return drift.confidence_min_distance
    if point is None:
        return None
    floor = drift.accuracy_floor if detector == "accuracy" else 0.0
    reference = point.get("reference_value")
    if reference is None:
        return floor or None
    return max(reference - _limit(detector, config), floor)


def _limit(detector: str, config: Config) -> float:
    drift = config.drift
    return {"prediction_drift": drift.class_mix_min_distance, "label_drift": drift.class_mix_min_distance,
            "confidence_drift": drift.confidence_min_distance, "accuracy": drift.accuracy_min_drop,
            "recall": drift.recall_min_drop}[detector]


def chart_series(daily: dict[str, Any], days: Sequence[dt.date], config: Config) -> list[dict[str, Any]]:
    """drift.queries.daily_statistics spread over every day of the range, one series per check."""
    series = []
    for key, points in daily["series"].items():
        detector, _, subject = key.partition(":")
        if detector not in STATISTICS:
            continue
        by_day = {point["day"]: point for point in points}
        row = [by_day.get(day.isoformat()) for day in days]
        name, reads = STATISTICS[detector]
        threshold = [_alert_line(detector, point, config) for point in row]
        series.append({
            "key": key, "detector": detector, "subject": subject, "statistic": name,
            "values": [None if point is None else point["value"] for point in row],
            "p_values": [None if point is None else point["p_value"] for point in row],
            "firing": [None if point is None else point["firing"] for point in row],
            "threshold": threshold, "threshold_label": reads.format(_limit(detector, config), config.drift.alpha)})
    return series
