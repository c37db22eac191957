"""Windows built from the hourly rollups: the last N, a local day, a reference period; of two populations.

Both kinds of rollups are keyed by the UTC hour of *prediction*, so a window is a set of whole prediction
hours, summed from one kind:

- reviewed predictions (the review rollups, `Totals`): known late, for the sample reviewers chose;
- all predictions (the prediction rollups, `PredictionTotals`): every prediction, counted at insert.

- last N: hours walked backwards from the hour of `now` until at least N reviews (or N valid predictions)
  are covered. It holds N or more (at most N plus the earliest hour's, minus one), and its order is
  prediction time: a late review of an old prediction lands in that old hour, not "now". The statistics
  report the exact number the window holds.
- a day: the local calendar day (configured time zone) containing `now`, up to now.
- the reference period: the `baseline_days` days just before the window starts (rolling), or fixed
  local dates from configuration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from pymongo.collection import Collection

from clara.config import Config
from clara.predictions import PredictionTotals
from clara.rollups import Totals, day_bounds, hour_of, local_day

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
# Only what the checks read: the latency counters stay on the server.
FIELDS = {"reviews": 1, "cells": 1, "rejected": 1, "confidence_hist": 1, "confidence_count": 1,
          "confidence_micros": 1, "calibration_cells": 1, "calibration_rejected": 1, "calibration_micros": 1}
PREDICTION_FIELDS = {"predictions": 1, "bad": 1, "classes": 1, "confidence": 1, "no_confidence": 1,
                     "calibration": 1}
REVIEWED, ALL = "reviewed predictions", "all predictions"


@dataclasses.dataclass(frozen=True)
class Window:
    """Reviews (Totals) or predictions (PredictionTotals) of the prediction hours [start, end), summed."""

    kind: str          # "last_n", "day" or "reference"
    label: str         # for sentences: "the last 2,013 reviews", "2025-03-02", "2025-02-16..2025-03-01"
    start: dt.datetime
    end: dt.datetime
    totals: Totals | PredictionTotals

    @property
    def population(self) -> str:
        return ALL if isinstance(self.totals, PredictionTotals) else REVIEWED

    @property
    def reviews(self) -> int:
        return self.totals.reviews if isinstance(self.totals, Totals) else 0

    @property
    def count(self) -> int:
        """What the window holds: reviews, or valid predictions (bad documents have no class)."""
        return valid_predictions(self.totals) if isinstance(self.totals, PredictionTotals) else self.totals.reviews

    def describe(self) -> dict[str, Any]:
        unit = "predictions" if isinstance(self.totals, PredictionTotals) else "reviews"
        return {"kind": self.kind, "label": self.label, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "population": self.population, unit: self.count}


def valid_predictions(totals: PredictionTotals) -> int:
    return totals.predictions - totals.bad


def totals_between(rollups: Collection, start: dt.datetime, end: dt.datetime) -> Totals:
    return Totals.of(rollups.find({"_id": {"$gte": start, "$lt": end}}, FIELDS))


def predictions_between(predictions: Collection, start: dt.datetime, end: dt.datetime) -> PredictionTotals:
    return PredictionTotals.of(predictions.find({"_id": {"$gte": start, "$lt": end}}, PREDICTION_FIELDS))


def last_n_window(rollups: Collection, n: int, now: dt.datetime) -> Window:
    """The fewest whole prediction hours, back from now's hour, holding at least n reviews (or all there are)."""
    end = hour_of(now) + HOUR
    totals, start = Totals(), end
    with rollups.find({"_id": {"$lt": end}, "reviews": {"$gt": 0}}, FIELDS).sort("_id", -1).batch_size(100) as cursor:
        for doc in cursor:
            totals.add_doc(doc)
            start = _utc(doc["_id"])
            if totals.reviews >= n:
                break
    return Window("last_n", f"the last {totals.reviews:,} reviews", start, end, totals)


def today_so_far(config: Config, now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Today in the configured time zone, and [start, end) of it up to the end of now's UTC hour."""
    day = local_day(now, config.model.zone)
    start, end = day_bounds(day, day, config.model.zone)
    return day, start, min(end, hour_of(now) + HOUR)


def day_window(rollups: Collection, config: Config, now: dt.datetime) -> Window:
    """Today's reviews, in the configured time zone, up to now's hour."""
    day, start, end = today_so_far(config, now)
    return Window("day", day.isoformat(), start, end, totals_between(rollups, start, end))


def last_n_predictions(predictions: Collection, n: int, now: dt.datetime) -> Window:
    """The fewest whole prediction hours, back from now's hour, holding at least n valid predictions."""
    end = hour_of(now) + HOUR
    totals, start = PredictionTotals(), end
    with predictions.find({"_id": {"$lt": end}, "predictions": {"$gt": 0}}, PREDICTION_FIELDS).sort(
            "_id", -1).batch_size(100) as cursor:
        for doc in cursor:
            totals.add_doc(doc)
            start = _utc(doc["_id"])
            if valid_predictions(totals) >= n:
                break
    return Window("last_n", f"the last {valid_predictions(totals):,} predictions", start, end, totals)


def prediction_day_window(predictions: Collection, config: Config, now: dt.datetime) -> Window:
    """Today's predictions, in the configured time zone, up to now's hour."""
    day, start, end = today_so_far(config, now)
    return Window("day", day.isoformat(), start, end, predictions_between(predictions, start, end))


def reference_bounds(config: Config, window_start: dt.datetime) -> tuple[dt.datetime, dt.datetime, str]:
    """[start, end) and a label of the reference period for a window starting at window_start."""
    drift, zone = config.drift, config.model.zone
    if drift.reference_start:
        first, last = dt.date.fromisoformat(drift.reference_start), dt.date.fromisoformat(drift.reference_end)
        start, end = day_bounds(first, last, zone)
        return start, end, f"{first.isoformat()}..{last.isoformat()}"
    # Calendar arithmetic in the local zone: a day window's reference is whole local days, across DST changes.
    start = (window_start.astimezone(zone) - dt.timedelta(days=drift.baseline_days)).astimezone(UTC)
    return start, window_start, f"the {drift.baseline_days} days before"


def reference_window(rollups: Collection, config: Config, window: Window) -> Window:
    """The window's reference period, of the same population: `rollups` is the collection of that kind."""
    start, end, label = reference_bounds(config, window.start)
    summed = predictions_between if window.population == ALL else totals_between
    return Window("reference", label, start, end, summed(rollups, start, end))


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
