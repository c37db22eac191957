"""Segment rollups: the review and prediction counters per rollup period and segment value, and their reading.

Storage. Two collections of their own (`mongodb.segment_rollups_collection`,
`mongodb.segment_predictions_collection`), one document per (period, field), each value's counters under
`values` (the value as a field name, percent-escaped: clara.segments.value_key):

    {_id: {hour: <period start>, field: "<segment field>"},
     values: {"<value>": <exactly the counters of a clara/rollups.py (reviews) or clara/predictions.py
                          (predictions) document>},
     updated_at: <date>}

Why beside the overall rollups rather than inside them (`segments.<field>.<value>.` in the hour document):

- the overall rollups stay exactly what they are, byte for byte, with or without segments, so every figure
  the dashboard shows today, and its speed, is untouched; "overall = sum of a field's segments" is an
  invariant the tests check rather than a second copy the readers must pick between;
- without segments the consumer does not write, read or index anything more;
- a period's overall document would otherwise grow with every segment (a field of 20 values makes it 20
  times larger) and every overall read would drag the segments along.

Why one document per period and field rather than per value: a batch spans few periods but, per period,
every value of every field, and its cost grows with the documents it upserts: a batch of 500 reviews over
three hours with 13 values in two fields upserted 39 segment documents beside the 3 overall ones; per field,
6. What remains is the increments themselves: each review's and prediction's counters are applied once
more per field. bench/segments_bench.py (two fields, 13 values, batches of 500 interleaved with an
unsegmented twin on one mongod) measured commit_batch at about 0.8x the unsegmented rate for reviews and
about 0.5x for predictions (whose unsegmented batch is only one small upsert per hour); an earlier,
non-interleaved run with one document per value gave 0.54x for reviews. A field has at most
segments.max_values + 2 values, so a document stays far below MongoDB's 16 MiB.

Reading: a range of periods is one range of the _id index (clara.segments.hour_range); one field's, one
range of the index clara_segment_field_hour ({_id.field, _id.hour}: clara.segments.field_range), which the
_id index, ordered by period first, would serve by fetching every field's documents; a projection of
`values.<value>` narrows it to one segment. The counters are the overall ones, so
Totals.of / PredictionTotals.of and everything built on them (metrics, intervals, estimates) apply to a
segment unchanged.

Exactness: a segment rollup is $inc'ed from the same increments as its overall rollup (RollupDelta /
PredictionDelta), in the same transaction or, while the consumer is behind, from a pending document written
in that transaction and folded in later, exactly once (clara/segment_pending.py); a review's counted entry
names the segment it was added to, so a correction takes back from there. A rebuild replaces both together,
folding what was pending first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection

from clara.db import Collections
from clara.predictions import PredictionTotals, add_paths
from clara.rollups import Totals, day_bounds, local_day
from clara.segments import field_range, hour_range, key_value, segment_id, value_key

HOUR = dt.timedelta(hours=1)
# write_segment_rollups replaces a document instead of $inc'ing it from REWRITE_COUNTERS increments, when
# they name at least 1/REWRITE_SHARE of its counters (each about COUNTER_BYTES of BSON).
REWRITE_COUNTERS = 500
REWRITE_SHARE = 6
COUNTER_BYTES = 12
T = TypeVar("T")


def write_segment_rollups(session: ClientSession | None, collection: Collection,
                          updates: Sequence[tuple[tuple[dt.datetime, str, str], Mapping[str, int]]],
                          now: dt.datetime) -> None:
    """$inc segment rollups (review or prediction ones) from ((hour, field, value), $inc) pairs: one upsert per
    period and field, in the caller's transaction.

    MongoDB applies a $inc counter by counter, about 7 us each, while reading and replacing a document costs
    about 1 us per counter it holds (four documents of 5,200 counters, every one incremented: 210 ms as $inc,
    54 ms read and replaced). So a document whose increments name REWRITE_COUNTERS counters or more (a fold of
    put-off increments: a second of bulk traffic gives 900 to 4,000) is read, and replaced with the sums when
    they name at least 1/REWRITE_SHARE of the counters it holds. Only in a transaction, whose snapshot makes
    the read and the replace one: a writer that changes the document meanwhile makes one of the two retry
    (a write conflict) instead of being overwritten."""
    increments = segment_increments(updates)
    rewritten: dict[tuple[dt.datetime, str], dict[str, Any]] = {}   # (period, field) -> the document to store
    large = [key for key, inc in increments.items() if len(inc) >= REWRITE_COUNTERS]
    if large and session is not None and session.in_transaction:
        raw = collection.with_options(codec_options=collection.codec_options.with_options(
            document_class=RawBSONDocument))
        # Keyed by the _id's BSON, the same whether the client decodes dates aware or naive.
        stored = {bson.encode(doc["_id"]): doc for doc in raw.find(
            {"_id": {"$in": [segment_id(*key) for key in large]}}, session=session)}
        for key in large:
            doc = stored.get(bson.encode(segment_id(*key)))
            if doc is None or len(doc.raw) <= REWRITE_SHARE * COUNTER_BYTES * len(increments[key]):
                rewritten[key] = {"_id": segment_id(*key)} if doc is None else \
                    bson.decode(doc.raw, collection.codec_options)
                add_paths(rewritten[key], increments[key])
    writes: list[UpdateOne | ReplaceOne] = [
        ReplaceOne({"_id": segment_id(*key)}, rewritten[key] | {"updated_at": now}, upsert=True) if key in rewritten
        else UpdateOne({"_id": segment_id(*key)}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
        for key, inc in increments.items()]
    if writes:
        collection.bulk_write(writes, ordered=False, session=session)


def segment_increments(updates: Iterable[tuple[tuple[dt.datetime, str, str], Mapping[str, int]]]
                       ) -> dict[tuple[dt.datetime, str], dict[str, int]]:
    """((hour, field, value), $inc) pairs as one $inc per segment rollup document (period and field), its
    values' counters under `values.<value>.`."""
    by_document: dict[tuple[dt.datetime, str], dict[str, int]] = {}
    for (hour, field, value), inc in updates:
        prefix = f"values.{value_key(value)}."
        by_document.setdefault((hour, field), {}).update({prefix + name: n for name, n in inc.items()})
    return by_document


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
                    {"$project": {"values": {"$objectToArray": "$values"}}}, {"$unwind": "$values"},
                    {"$group": {"_id": {"field": "$_id.field", "key": "$values.k"},
                                "n": {"$sum": f"$values.v.{counter}"}}}]
        for doc in collection.aggregate(pipeline):
            found[(doc["_id"]["field"], key_value(doc["_id"]["key"]))][counter] += doc["n"]
    result: dict[str, list[SegmentSeen]] = defaultdict(list)
    for (field, value), n in found.items():
        if n["predictions"] or n["reviews"]:
            result[field].append(SegmentSeen(field, value, n["predictions"], n["reviews"]))
    for values in result.values():
        values.sort(key=lambda seen: (-seen.predictions, -seen.reviews, seen.value))
    return dict(result)


def _counters(collection: Collection, field: str, start: dt.datetime | None, end: dt.datetime | None,
              value: str | None = None) -> Iterator[tuple[dt.datetime, str, Mapping[str, Any]]]:
    """(period, value, counters) of `field`'s segment rollups in [start, end), of every value or of one."""
    projection = {"values": 1} if value is None else {f"values.{value_key(value)}": 1}
    for doc in collection.find(field_range(field, start, end), projection):
        for key, counters in (doc.get("values") or {}).items():
            yield doc["_id"]["hour"], key_value(key), counters


def _by_value(found: Iterable[tuple[dt.datetime, str, Mapping[str, Any]]], of: Callable[[list], T]) -> dict[str, T]:
    grouped: dict[str, list] = defaultdict(list)
    for _, value, counters in found:
        grouped[value].append(counters)
    return {value: of(docs) for value, docs in grouped.items()}


def segment_totals(cols: Collections, field: str, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> dict[str, Totals]:
    """Review Totals per value of `field` over the periods in [start, end)."""
    return _by_value(_counters(cols.segment_rollups, field, start, end), Totals.of)


def segment_prediction_totals(cols: Collections, field: str, start: dt.datetime | None = None,
                              end: dt.datetime | None = None) -> dict[str, PredictionTotals]:
    """PredictionTotals per value of `field` over the periods in [start, end)."""
    return _by_value(_counters(cols.segment_predictions, field, start, end), PredictionTotals.of)


def segment_days(cols: Collections, field: str, value: str, first: dt.date, last: dt.date,
                 zone: ZoneInfo) -> tuple[dict[dt.date, Totals], dict[dt.date, PredictionTotals]]:
    """One segment's review and prediction Totals per local day first..last (days without any are absent),
    the per-day shape the dashboard's charts read."""
    start, end = day_bounds(first, last, zone)
    def days(collection: Collection) -> dict[dt.date, list]:
        found: dict[dt.date, list] = defaultdict(list)
        for hour, _, counters in _counters(collection, field, start, end, value):
            found[local_day(hour, zone)].append(counters)
        return found

    return ({day: Totals.of(docs) for day, docs in days(cols.segment_rollups).items()},
            {day: PredictionTotals.of(docs) for day, docs in days(cols.segment_predictions).items()})


