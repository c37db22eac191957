"""The last-N checks once more per segment value: a camera whose prediction mix drifts alerts on its own.

With `segments.fields` configured and `drift.segments` on, every value of every field seen in the segment
rollups gets the overall checks of its own last-N windows (drift.window_predictions of its predictions,
drift.window_reviews of its reviews) against the same segment's reference period: predicted-class mix and
confidence on all its predictions, true-class mix, accuracy and recall on its reviewed ones (drift/checks.py,
unchanged). The day windows stay overall only, so an evaluation reads each field's segment rollups twice per
kind (the last-N walk, the reference periods), whatever the number of values.

A segment's finding is the overall finding with `segment` = "field=value", its subject suffixed with
"@field=value" (so each segment's condition is an alert of its own, one open at most) and its message
starting with "segment field = value: ". How many alerts one evaluation may open, and how a burst of them
is delivered as one message, is drift/alerts.py's (alerts.max_per_evaluation, grouping).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from pymongo.collection import Collection

from clara.config import Config
from clara.db import Collections
from clara.predictions import PredictionTotals
from clara.rollups import Totals, hour_of
from clara.segments import hour_range, key_value, value_key
from drift import checks
from drift.checks import Finding
from drift.windows import HOUR, Window, reference_bounds, valid_predictions

UTC = dt.timezone.utc


def segment_findings(cols: Collections, config: Config, now: dt.datetime) -> list[Finding]:
    """Every segment value's last-N findings of both populations (none without segments or drift.segments)."""
    drift = config.drift
    if not (config.segments.fields and drift.segments):
        return []
    found: list[Finding] = []
    on_predictions = drift.prediction_drift or drift.confidence_drift
    for field in config.segments.fields:
        if on_predictions:
            for value, (window, reference) in windows_of(cols.segment_predictions, field, drift.window_predictions,
                                                         now, config, PredictionTotals).items():
                found += [tagged(f, field, value) for f in checks.prediction_checks(window, reference, config)]
        for value, (window, reference) in windows_of(cols.segment_rollups, field, drift.window_reviews, now,
                                                     config, Totals).items():
            found += [tagged(f, field, value) for f in checks.window_checks(window, reference, config)]
    return found


def tagged(finding: Finding, field: str, value: str) -> Finding:
    return dataclasses.replace(finding, subject=f"{finding.subject}@{field}={value}", segment=f"{field}={value}",
                               message=f"segment {field} = {value}: {finding.message}")


def windows_of(collection: Collection, field: str, n: int, now: dt.datetime, config: Config,
               kind: type) -> dict[str, tuple[Window, Window]]:
    """Each value's last-N window (the fewest whole periods back from now's hour holding n, or all there are)
    and its reference window, from the field's segment rollups of one kind (Totals or PredictionTotals)."""
    end = hour_of(now) + HOUR
    held: dict[str, Any] = defaultdict(kind)
    starts: dict[str, dt.datetime] = {}
    done: set[str] = set()
    with collection.find(hour_range(None, end) | {"_id.field": field}).sort("_id", -1).batch_size(100) as cursor:
        for doc in cursor:
            for key, counters in (doc.get("values") or {}).items():
                value = key_value(key)
                if value in done:
                    continue
                held[value].add_doc(counters)
                starts[value] = _utc(doc["_id"]["hour"])
                if _count(held[value]) >= n:
                    done.add(value)
    windows = {value: _window(totals, starts[value], end) for value, totals in held.items() if _count(totals)}
    return {value: (window, reference_window(collection, field, value, window, config, kind))
            for value, window in windows.items()}


def reference_window(collection: Collection, field: str, value: str, window: Window, config: Config,
                     kind: type) -> Window:
    start, end, label = reference_bounds(config, window.start)
    totals = kind.of(_counters(collection, field, value, start, end))
    return Window("reference", label, start, end, totals)


def _counters(collection: Collection, field: str, value: str, start: dt.datetime,
              end: dt.datetime) -> list[Mapping[str, Any]]:
    key = value_key(value)
    return [doc["values"][key] for doc in collection.find(hour_range(start, end) | {"_id.field": field},
                                                          {f"values.{key}": 1}) if key in (doc.get("values") or {})]


def _count(totals: Totals | PredictionTotals) -> int:
    return valid_predictions(totals) if isinstance(totals, PredictionTotals) else totals.reviews


def _window(totals: Totals | PredictionTotals, start: dt.datetime, end: dt.datetime) -> Window:
    unit = "predictions" if isinstance(totals, PredictionTotals) else "reviews"
    return Window("last_n", f"the last {_count(totals):,} {unit}", start, end, totals)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
