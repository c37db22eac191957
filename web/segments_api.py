"""The `segment` parameter (`segment=model_version:v2`) and the per-segment reads behind it, and /api/segments.

A rollup endpoint given `segment=<field>:<value>` answers from the segment rollups (clara.segment_rollups)
instead of the overall ones: the same counters, so the same reports, for the predictions and reviews of that
one value. The field must be one of `segments.fields` and the value 1..MAX_VALUE_LENGTH characters (else
HTTP 400 naming `segment`); a value never seen is an empty answer (no reviews, no predictions), not an error,
since the value may simply not have arrived yet.

Segmented answers are kept as the overall ones are (web.api): by the change fence's generation and its counts
(web.changes) of the segment collections the answer is made of (`fence_roles`), so a segment rollup written
before the request arrives is in the answer, and a kept one costs one drain of the fence. Behind a changed
count, a segment's totals per day are kept as the overall ones are (web.segment_totals): only the hours of
its field that changed are read again, and the finished answers are kept by the version of the range's days
(`by_period_kept`). They are first read once per kind: one range of the field's segment rollups with a
projection of the one value (a 90-day range: about 2,200 small documents per kind; the index
clara_segment_field_hour reads only the field's). Hour ranges are read whole, kept by the collection's count.

Pending reviews of a segment come from its rollups: its predictions minus the bad ones minus its reviews
(web.volume.Volume.pending), where the overall figure counts the source collection (the two agree except
for documents a writer moved after the insert; see web.volume).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from clara.config import Config
from clara.db import Collections
from clara.predictions import PredictionTotals
from clara.rollups import Totals, local_day
from clara.segment_rollups import segments_seen
from clara.segments import MAX_VALUE_LENGTH, field_range, value_key
from web import keys
from web.errors import BadParameter
from web.hours import HourRange, Span, span_of
from web.params import RANGE_PARAMETERS, DateRange, query
from web.volume import Volume

PARAMETER = "segment"
# The segment collection of each overall role (web.rollup_cache.RollupCache.role).
SEGMENT_ROLES = {"rollups": "segment_rollups", "predictions": "segment_predictions"}
# The fence roles (web.changes) a segment's answer is made of, per role of the overall answer: a segment's
# pending reviews come from its rollups of both kinds where the overall count reads the source.
FENCE_ROLES = {"rollups": ("segment_rollups",), "predictions": ("segment_predictions",),
               "source": ("segment_predictions", "segment_rollups"), "state": ("state",)}
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One value of one segment field, as a request names it."""

    field: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value}

    def label(self) -> str:
        return f"{self.field}:{self.value}"


def segment_of(values: Mapping[str, str], config: Config) -> Segment | None:
    """The `segment` of already-checked query values (web.params.query), None when not given."""
    text = values.get(PARAMETER)
    if text is None:
        return None
    fields = config.segments.fields
    if not fields:
        raise BadParameter(PARAMETER, "no segment fields are configured (segments.fields), so nothing can be "
                                      "selected; leave the parameter out for every prediction")
    field, colon, value = text.partition(":")
    if not colon or not field or not value:
        raise BadParameter(PARAMETER, f"{text!r} is not field:value (for example {fields[0]}:v2)")
    if field not in fields:
        raise BadParameter(PARAMETER, f"{field!r} is not a segment field; configured: {', '.join(fields)}")
    if len(value) > MAX_VALUE_LENGTH:
        raise BadParameter(PARAMETER, f"the value is {len(value)} characters long; a segment value has at most "
                                      f"{MAX_VALUE_LENGTH} (longer ones count under 'other')")
    return Segment(field, value)


def requested(request: web.Request) -> Segment | None:
    """The request's `segment` (its other parameters are checked by the handler's own web.params.query)."""
    return segment_of(request.query, request.app[keys.CONFIG])


async def documents(collections: Collections, role: str, segment: Segment,
                    span: Span) -> dict[dt.datetime, Mapping[str, Any]]:
    """The segment's counters of every rollup period of the range that has them, by the period's UTC start."""
    collection = getattr(collections, SEGMENT_ROLES[role])
    key = value_key(segment.value)
    found = await collection.find(field_range(segment.field, *span.bounds), {f"values.{key}": 1}).to_list(None)
    return {doc["_id"]["hour"]: doc["values"][key] for doc in found if key in (doc.get("values") or {})}


def summed_by_period(span: Span, docs: Mapping[dt.datetime, Mapping[str, Any]],
                     summing: Callable[[Iterable[Mapping[str, Any]]], T]) -> dict[Any, T]:
    """Period counters summed per local day of a DateRange, or per local hour of an HourRange (absent when none)."""
    grouped: dict[Any, list] = defaultdict(list)
    for period, counters in sorted(docs.items()):
        grouped[span.hour_of(period) if isinstance(span, HourRange) else local_day(period, span.zone)].append(counters)
    return {period: summing(group) for period, group in grouped.items()}


async def by_period(collections: Collections, role: str, segment: Segment, span: Span,
                    summing: Callable[[Iterable[Mapping[str, Any]]], T]) -> dict[Any, T]:
    """The segment's totals per local day (or hour of an HourRange) of one kind of rollup, summed in the executor:
    the shape web.hours.by_period gives for every prediction."""
    docs = await documents(collections, role, segment, span)
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(summed_by_period, span, docs, summing))


def fence_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """The fence roles a segment's answer is made of, for the `roles` of the same answer overall."""
    return tuple(dict.fromkeys(role for overall in roles for role in FENCE_ROLES[overall]))


async def by_period_kept(app: web.Application, role: str, segment: Segment, span: Span,
                         summing: Callable[[Iterable[Mapping[str, Any]]], T]) -> tuple[dict[Any, T], Hashable | None]:
    """`by_period` and its version, under which what is built from it is kept (None: read afresh, while the
    fence is not following). A range of days: the segment's day totals (web.segment_totals), re-read and
    re-summed only for the hours its field's segment rollups changed in, versioned by those days. An hour
    range: read whole, kept for every build of the same segment and range (summary's totals and pending count,
    daily, classes, ... read one kind once) by the fence's count of the role's segment collection."""
    fence = app[keys.PENDING].fence
    collections = app[keys.COLLECTIONS]
    if isinstance(span, DateRange):
        kept = app[keys.SEGMENT_TOTALS].of(SEGMENT_ROLES[role], segment.field, segment.value, summing)
        snapshot = await kept.snapshot(collections, span.days)
        if snapshot is not None:
            return snapshot.by_day(span.days), ("segment days", snapshot.version(span.days))
        return await by_period(collections, role, segment, span, summing), None
    build = functools.partial(by_period, collections, role, segment, span, summing)
    generation = await fence.sync()
    if generation is None:
        return await build(), None
    version = (generation, SEGMENT_ROLES[role], fence.changes[SEGMENT_ROLES[role]])
    return await app[keys.RESPONSES].get(("segment periods", role, span, segment), version, build), version


async def pending(app: web.Application, segment: Segment, span: Span) -> int:
    """The segment's predictions of the range not reviewed yet, from its rollups (see the module docstring)."""
    (predictions, _), (reviews, _) = await asyncio.gather(
        by_period_kept(app, "predictions", segment, span, PredictionTotals.of),
        by_period_kept(app, "rollups", segment, span, Totals.of))
    return Volume.of(PredictionTotals.sum(predictions.values()), Totals.sum(reviews.values())).pending


async def segments(request: web.Request) -> web.Response:
    """Every configured segment field with the values seen in the range and their counts, busiest first."""
    config = request.app[keys.CONFIG]
    span = span_of(query(request, RANGE_PARAMETERS), config)
    seen = await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(segments_seen, request.app[keys.DRIFT_COLLECTIONS], *span.bounds))
    return web.json_response({
        "range": span.to_json(), "max_values": config.segments.max_values,
        "fields": [{"field": field, "values": [{"value": one.value, "predictions": one.predictions,
                                                "reviews": one.reviews} for one in seen.get(field, [])]}
                   for field in config.segments.fields]})


