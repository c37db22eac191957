"""Segment rollups: the review and prediction counters per rollup period and segment value, and their reading.

Storage. Two collections of their own (`mongodb.segment_rollups_collection`,
`mongodb.segment_predictions_collection`), one document per (period, field, value):

    {_id: {hour: <period start>, field: "<segment field>", value: "<canonical value>"},
     <exactly the counters of a clara/rollups.py (reviews) or clara/predictions.py (predictions) document>,
     updated_at: <date>}

Why beside the overall rollups rather than inside them (`segments.<field>.<value>.` in the hour document):

- the overall rollups stay exactly what they are, byte for byte, with or without segments, so every figure
  the dashboard shows today, and its speed, is untouched; "overall = sum of a field's segments" is an
  invariant the tests check rather than a second copy the readers must pick between;
- without segments the consumer does not write, read or index anything more;
- a period's overall document would otherwise grow with every segment (a field of 20 values makes it 20
  times larger) and every overall read would drag the segments along; here a per-segment query reads only
  its own documents, by the _id index: `_id` is an embedded document whose first key is the period, so a
  range of periods is one index range (clara.segments.hour_range), and `_id.field`/`_id.value` narrow it;
- segment values are stored as values, never as field names, so no value needs escaping (dots, dollars);
- the counters are the same, so Totals.of / PredictionTotals.of and everything built on them (metrics,
  intervals, estimates) apply to a segment unchanged.

Exactness: a segment rollup is $inc'ed in the same transaction as its overall rollup, from the same
increments (RollupDelta / PredictionDelta), and a review's counted entry names the segment it was added to,
so a correction takes back from there. A rebuild replaces both together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pymongo import UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection

from clara.db import Collections
from clara.predictions import PredictionTotals
from clara.rollups import Totals, day_bounds, local_day
from clara.segments import hour_range, segment_id

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
T = TypeVar("T")


def write_segment_rollups(session: ClientSession | None, collection: Collection,
                          updates: Sequence[tuple[tuple[dt.datetime, str, str], Mapping[str, int]]],
                          now: dt.datetime) -> None:
    """$inc segment rollups (review or prediction ones), in the caller's transaction."""
    writes = [UpdateOne({"_id": segment_id(*key)}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
              for key, inc in updates]
    if writes:
        collection.bulk_write(writes, ordered=False, session=session)


def hours_filter(hours: Iterable[dt.datetime]) -> dict[str, Any]:
    """The segment rollups of every period in these UTC hours (one _id range per hour)."""
    ranges = [hour_range(hour, hour + HOUR) for hour in sorted(hours)]
    return ranges[0] if len(ranges) == 1 else {"$or": ranges}


# -- reading ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SegmentSeen:
    """A value of a segment field with what it holds in a range."""

    field: str
    value: str
    predictions: int
    reviews: int


def segments_seen(cols: Collections, start: dt.datetime | None = None,
                  end: dt.datetime | None = None) -> dict[str, list[SegmentSeen]]:
    """Every segment value with predictions or reviews in [start, end) (either open), per field, busiest
    first: what a segment selector offers."""
    found: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"predictions": 0, "reviews": 0})
    for collection, counter in ((cols.segment_predictions, "predictions"), (cols.segment_rollups, "reviews")):
        pipeline = [{"$match": hour_range(start, end)},
                    {"$group": {"_id": {"field": "$_id.field", "value": "$_id.value"}, "n": {"$sum": f"${counter}"}}}]
        for doc in collection.aggregate(pipeline):
            found[(doc["_id"]["field"], doc["_id"]["value"])][counter] += doc["n"]
    result: dict[str, list[SegmentSeen]] = defaultdict(list)
    for (field, value), n in found.items():
        if n["predictions"] or n["reviews"]:
            result[field].append(SegmentSeen(field, value, n["predictions"], n["reviews"]))
    for values in result.values():
        values.sort(key=lambda seen: (-seen.predictions, -seen.reviews, seen.value))
    return dict(result)


def _docs(collection: Collection, field: str, start: dt.datetime | None, end: dt.datetime | None,
          value: str | None) -> Iterable[Mapping[str, Any]]:
    query = hour_range(start, end) | {"_id.field": field}
    if value is not None:
        query["_id.value"] = value
    return collection.find(query, {"updated_at": 0})


def _by_value(docs: Iterable[Mapping[str, Any]], of: Callable[[list], T]) -> dict[str, T]:
    grouped: dict[str, list] = defaultdict(list)
    for doc in docs:
        grouped[doc["_id"]["value"]].append(doc)
    return {value: of(found) for value, found in grouped.items()}


def segment_totals(cols: Collections, field: str, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> dict[str, Totals]:
    """Review Totals per value of `field` over the periods in [start, end)."""
    return _by_value(_docs(cols.segment_rollups, field, start, end, None), Totals.of)


def segment_prediction_totals(cols: Collections, field: str, start: dt.datetime | None = None,
                              end: dt.datetime | None = None) -> dict[str, PredictionTotals]:
    """PredictionTotals per value of `field` over the periods in [start, end)."""
    return _by_value(_docs(cols.segment_predictions, field, start, end, None), PredictionTotals.of)


def segment_days(cols: Collections, field: str, value: str, first: dt.date, last: dt.date,
                 zone: ZoneInfo) -> tuple[dict[dt.date, Totals], dict[dt.date, PredictionTotals]]:
    """One segment's review and prediction Totals per local day first..last (days without any are absent),
    the per-day shape the dashboard's charts read."""
    start, end = day_bounds(first, last, zone)
    reviews: dict[dt.date, list] = defaultdict(list)
    for doc in _docs(cols.segment_rollups, field, start, end, value):
        reviews[local_day(_aware(doc["_id"]["hour"]), zone)].append(doc)
    predictions: dict[dt.date, list] = defaultdict(list)
    for doc in _docs(cols.segment_predictions, field, start, end, value):
        predictions[local_day(_aware(doc["_id"]["hour"]), zone)].append(doc)
    return ({day: Totals.of(docs) for day, docs in reviews.items()},
            {day: PredictionTotals.of(docs) for day, docs in predictions.items()})


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
