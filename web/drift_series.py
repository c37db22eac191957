"""Drift statistics per day as chart series: one value per day of the range (null on days without data), the
line each detector alerts at, from the configured thresholds, and a title in words naming the population."""

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


# detector -> what it measures, in words, for titles
MEASURES = {"prediction_drift": "Predicted-class mix", "label_drift": "True-class mix",
            "confidence_drift": "Confidence", "accuracy": "Accuracy", "recall": "Recall of {}"}
STATISTIC_WORDS = {"js_distance": "Jensen-Shannon distance", "accuracy": "accuracy", "recall": "recall"}


def _title(detector: str, subject: str, statistic: str, population: str, alerting: bool, config: Config) -> str:
    """"Predicted-class mix per day against the 14 days before (Jensen-Shannon distance), all predictions"."""
    kind, _, rest = subject.partition(":")
    measure = MEASURES[detector].format(rest) if detector == "recall" else MEASURES[detector]
    drift = config.drift
    if rest == "training" and detector != "recall":
        against = "the training set"
    elif drift.reference_start:
        against = f"{drift.reference_start}..{drift.reference_end}"
    else:
        against = f"the {drift.baseline_days} days before"
    shown = "" if alerting else " (shown beside, not alerted on)"
    return f"{measure} per day against {against} ({STATISTIC_WORDS[statistic]}), {population}{shown}"


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
        alerting = all(point.get("alerting", True) for point in points)
        population = next((point["population"] for point in points if point.get("population")), "")
        label = reads.format(_limit(detector, config), config.drift.alpha)
        series.append({
            "key": key, "detector": detector, "subject": subject, "statistic": name,
            "title": _title(detector, subject, name, population, alerting, config), "population": population,
            "alerting": alerting,
            "values": [None if point is None else point["value"] for point in row],
            "p_values": [None if point is None else point["p_value"] for point in row],
            "firing": [None if point is None else point["firing"] for point in row],
            "threshold": threshold,
            "threshold_label": label if alerting else f"{label.replace('alert at', 'drift at')}; not alerted on"})
    series.sort(key=lambda one: one["population"] != "all predictions")   # all predictions first, then reviewed
    return series
