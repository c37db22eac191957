"""Each local day's checks for one segment value, for the Drift tab's charts of a segment.

The checks and their reference periods are drift.queries.daily_statistics', fed with the segment's own counters
(as drift/segment_windows.py does for the live windows): a day of the value against the value's own days before,
or its own counters of the fixed reference dates. So a segment's point of a day is the overall point of a
database holding only that value's documents. The counters come from the field's segment rollups of each kind
(clara/segment_rollups.py), one range per kind read through the index clara_segment_field_hour with a projection
of the one value (and with fixed reference dates one range more per kind); a value never seen has no points.
The value's own counters are used even when the live checks fold it into `other` (segments.max_values).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from typing import Any

from pymongo.collection import Collection

from clara.config import Config
from clara.db import Collections
from clara.predictions import PredictionTotals, predictions_by_day
from clara.rollups import Totals, day_bounds, totals_by_day
from clara.segments import field_range, value_key
from drift.queries import fixed_reference, reference_days, day_checks


def segment_daily_statistics(cols: Collections, config: Config, first: dt.date, last: dt.date, field: str,
                             value: str) -> dict[str, Any]:
    """drift.queries.daily_statistics for the predictions and reviews of `field` = `value` alone."""
    zone = config.model.zone
    start, end = day_bounds(first - dt.timedelta(days=reference_days(config)), last, zone)
    reviews = functools.partial(hours_of, cols.segment_rollups, field, value)
    predictions = functools.partial(hours_of, cols.segment_predictions, field, value)
    fixed = fixed_reference(config, lambda start, end: Totals.of(reviews(start, end)))
    fixed_predictions = fixed_reference(config, lambda start, end: PredictionTotals.of(predictions(start, end)))
    return day_checks(totals_by_day(reviews(start, end), zone), predictions_by_day(predictions(start, end), zone),
                      fixed, fixed_predictions, config, first, last)


def hours_of(collection: Collection, field: str, value: str, start: dt.datetime,
             end: dt.datetime) -> Iterator[Mapping[str, Any]]:
    """The value's counters of each period in [start, end) that has them, shaped as an overall rollup document
    (`_id` the period's start), for clara.rollups / clara.predictions to sum."""
    key = value_key(value)
    for doc in collection.find(field_range(field, start, end), {f"values.{key}": 1}):
        counters = (doc.get("values") or {}).get(key)
        if counters:
            yield {**counters, "_id": doc["_id"]["hour"]}
