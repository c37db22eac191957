"""JSON API handlers: parse the parameters, read the rollups, build the body in an executor.

Range reports read per-day totals from the app's RollupCache (web.rollup_cache), which reads from
MongoDB only the hours that changed since it last looked. With the change fence following, the totals
come with a version of the range's data, and the finished JSON of summary, daily, classes, confusion and
training is kept by endpoint, range and version (web.response_cache): a request that finds its version
costs one drain of the fence, no listing and no scikit-learn. Pending counts are kept the same way
(web.pending).

In front of that, each whole answer is kept by its endpoint, range (and segment) under the fence's
generation and its change counts (web.changes) of the collections the answer is made of (a segment's: the
segment collections; its totals per day are kept as the overall ones, web.segment_totals): a request that finds them
unchanged after its own drain gets the bytes kept, without reading a cache of rollups (a dashboard
reload after an update: one build per endpoint, the other viewers' requests share it). Any change to
those collections, wherever in time, builds the answer again through the versioned path above.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from aiohttp import web

from clara.predictions import PredictionTotals
from clara.rollups import Totals
from web import hours, keys, queries, reports, segments_api
from web.hours import HourRange, Span, series_span, span_of
from web.params import RANGE_PARAMETERS, DateRange, default_range, query
from web.segments_api import Segment
from web.volume import HOURLY_UP_TO_DAYS, volume_body

T = TypeVar("T")


async def _run(function, *args):
    """Run a pure report function (scikit-learn inside) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


async def meta(request: web.Request) -> web.Response:
    """What the page needs before anything else: classes, colours, zone, default and longest range."""
    query(request, allowed=())
    config = request.app[keys.CONFIG]
    return web.json_response({
        "classes": list(config.model.classes), "colors": list(config.model.colors),
        "timezone": config.model.timezone, "default_range": default_range(config).to_json(),
        "max_range_days": config.web.max_range_days, "averages": ["macro", "weighted"],
        "segments": list(config.segments.fields)})


async def totals_by_period(app: web.Application, span: Span, cache: web.AppKey = keys.ROLLUP_CACHE,
                           segment: Segment | None = None):
    """The range's Totals per local day (per local hour for an HourRange, read from MongoDB: no version) and
    their version, None when not known. `cache`: the review rollups' cache, or the prediction rollups'; with a
    `segment`, that segment's rollups of the same kind (web.segments_api.by_period_kept)."""
    if segment is not None:
        cache = app[cache]
        return await segments_api.by_period_kept(app, cache.role, segment, span, cache.summed)
    return await hours.by_period(app[cache], app[keys.COLLECTIONS], span)


def _pending(app: web.Application, span: Span, segment: Segment | None = None):
    if segment is not None:
        return segments_api.pending(app, segment, span)
    if isinstance(span, HourRange):
        return queries.pending_reviews(app[keys.COLLECTIONS], span)
    return app[keys.PENDING].count(app[keys.COLLECTIONS], span)


async def _answer(app: web.Application, key: Hashable, version: Hashable | None, function, *args) -> bytes:
    """`function(*args)` as JSON, built in the executor, or kept from a build for the same key and version."""
    build = functools.partial(_run, _json, function, *args)
    return await (build() if version is None else app[keys.RESPONSES].get(key, version, build))


def _json(function, *args) -> bytes:
    return json.dumps(function(*args)).encode()


def _response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def kept_answer(app: web.Application, key: tuple, roles: tuple[str, ...], build: Callable[[], Awaitable[T]],
                *also: Hashable, refreshing: bool = False) -> T | None:
    """`build()`, or what it gave for the same key while the fence's generation and its change counts of
    `roles` (and `also`) are the same as after this call's own drain (read before the build starts).
    `refreshing` (a live update's rebuild, web.response_cache): None, no build, when nothing can be kept."""
    fence = app[keys.PENDING].fence
    generation = await fence.sync()
    if generation is None:
        return None if refreshing else await build()
    changes = fence.changes
    stamp = (generation, *[changes[role] for role in roles], *also)
    return await app[keys.RESPONSES].get(("answer", *key), stamp, build)


async def _range_answer(request: web.Request, name: str, roles: tuple[str, ...], build,
                        series: bool = False) -> web.Response:
    """`build(app, span)` for the request's range (with `series`, and its `by`), kept while the collections
    `roles` stay the same (`kept_answer`), and remembered so that a live update rebuilds it before the dashboards
    ask (web.hub). With a `segment`, `build(app, span, segment)`, kept the same way while the segment
    collections it is made of stay the same (web.segments_api.fence_roles)."""
    app = request.app
    values = query(request, (*RANGE_PARAMETERS, segments_api.PARAMETER, *(("by",) if series else ())))
    days = (series_span if series else span_of)(values, app[keys.CONFIG])
    segment = segments_api.segment_of(values, app[keys.CONFIG])
    if segment is None:
        key, built = (name, days), functools.partial(build, app, days)
    else:
        key, built = (name, days, segment), functools.partial(build, app, days, segment)
        roles = segments_api.fence_roles(roles)
    answer = functools.partial(kept_answer, app, key, roles, built)
    app[keys.RESPONSES].remember(key, functools.partial(answer, refreshing=True))
    return _response(await answer())


async def summary(request: web.Request) -> web.Response:
    return await _range_answer(request, "summary", ("rollups", "source"), _summary)


async def _summary(app: web.Application, days: Span, segment: Segment | None = None) -> bytes:
    (by_day, version), pending = await asyncio.gather(totals_by_period(app, days, segment=segment),
                                                      _pending(app, days, segment))
    totals = await _range_totals(app, (days, segment), by_day, version)
    return await _answer(app, ("summary", days, segment), None if version is None else (version, pending),
                         reports.summary, totals, pending, days, app[keys.CONFIG])


async def _range_totals(app: web.Application, days: Hashable, by_day, version: Hashable | None) -> Totals:
    """The range's days added up, once per version for every report that needs them (summary, classes, ...);
    `days`: the range and its segment (None: every prediction)."""
    build = functools.partial(_run, Totals.sum, by_day.values())
    return await (build() if version is None else app[keys.RESPONSES].get(("totals", days), version, build))


async def daily(request: web.Request) -> web.Response:
    return await _range_answer(request, "daily", ("rollups",), _daily, series=True)


async def _daily(app: web.Application, days: Span, segment: Segment | None = None) -> bytes:
    by_day, version = await totals_by_period(app, days, segment=segment)
    return await _answer(app, ("daily", days, segment), version, reports.daily, by_day, days, app[keys.CONFIG])


def _range_report(function):
    """A handler that builds `function(totals, days, config)` over the range's rollups."""
    async def build(app: web.Application, days: Span, segment: Segment | None = None) -> bytes:
        by_day, version = await totals_by_period(app, days, segment=segment)
        totals = await _range_totals(app, (days, segment), by_day, version)
        return await _answer(app, (function.__name__, days, segment), version, function, totals, days,
                             app[keys.CONFIG])

    async def handler(request: web.Request) -> web.Response:
        return await _range_answer(request, function.__name__, ("rollups",), build)
    handler.__name__ = handler.__qualname__ = function.__name__
    return handler


classes = _range_report(reports.classes)
confusion = _range_report(reports.confusion)


async def training(request: web.Request) -> web.Response:
    """Training-set class counts beside the range's predictions: all of them, and the reviewed ones."""
    return await _range_answer(request, "training", ("rollups", "predictions"), _training_answer)


async def _training_answer(app: web.Application, days: Span, segment: Segment | None = None) -> bytes:
    config = app[keys.CONFIG]
    (by_day, version), (predictions, predictions_version) = await asyncio.gather(
        totals_by_period(app, days, segment=segment), totals_by_period(app, days, keys.PREDICTION_CACHE, segment))
    both = None if version is None or predictions_version is None else (version, predictions_version)
    totals = await _range_totals(app, (days, segment), by_day, version)
    return await _answer(app, ("training", days, segment), both, _training, totals, predictions, days, config)


def _training(totals: Totals, predictions, days: Span, config) -> dict:
    return reports.training(totals, PredictionTotals.sum(predictions.values()), days, config)


async def volume(request: web.Request) -> web.Response:
    """All predictions per day (per hour for short ranges) split into reviewed / rejected / pending, the
    review coverage, and today so far, from the prediction and review rollups (web.volume).

    The body depends on the time only through the minute (period starts are whole minutes) and `as_of`,
    so it is kept by range, data versions, recount state and minute, as JSON cut where `as_of` goes, and
    each answer's own `as_of` is put in between."""
    app = request.app
    values = query(request, (*RANGE_PARAMETERS, "by", segments_api.PARAMETER))
    span = series_span(values, app[keys.CONFIG], HOURLY_UP_TO_DAYS)
    segment = segments_api.segment_of(values, app[keys.CONFIG])
    now = dt.datetime.now(dt.timezone.utc)
    if segment is not None:
        return web.json_response(await _segment_volume(app, span, segment, now))
    app[keys.RESPONSES].remember(("volume", span), functools.partial(_volume_kept, app, span, refreshing=True))
    before, after = await _volume_kept(app, span, now)
    return _response(b"".join((before, json.dumps(now.isoformat()).encode(), after)))


AS_OF = "\u0000as_of\u0000"   # where a kept volume body is cut; no other value of it is a string like this


async def _volume_kept(app: web.Application, span: Span, now: dt.datetime | None = None, refreshing: bool = False):
    now = now or dt.datetime.now(dt.timezone.utc)
    return await kept_answer(app, ("volume", span), ("rollups", "predictions", "state"),
                       functools.partial(_volume_parts, app, span, now), now.replace(second=0, microsecond=0),
                       refreshing=refreshing)


async def _segment_volume(app: web.Application, span: Span, segment: Segment, now: dt.datetime) -> dict:
    """The /api/volume body of one segment, read afresh (web.segments_api)."""
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    local_today = now.astimezone(config.model.zone).date()
    today = DateRange(local_today, local_today, config.model.zone)
    if isinstance(span, HourRange):   # volume_body groups an HourRange's period documents itself
        held = [segments_api.documents(collections, role, segment, span) for role in ("predictions", "rollups")]
    else:
        held = [totals_by_period(app, span, cache, segment) for cache in (keys.PREDICTION_CACHE, keys.ROLLUP_CACHE)]
    *periods, (today_predictions, _), (today_reviews, _), recounting = await asyncio.gather(
        *held, *(totals_by_period(app, today, cache, segment) for cache in (keys.PREDICTION_CACHE, keys.ROLLUP_CACHE)),
        queries.prediction_recount(collections))
    if not isinstance(span, HourRange):
        periods = [found for found, _ in periods]
    return await _run(volume_body, span, *periods, (today_predictions.get(local_today), today_reviews.get(local_today)),
                      now, recounting)


async def _unversioned(documents: Awaitable[dict]) -> tuple[dict, None]:
    return await documents, None


def _periods_held(app: web.Application, span: Span) -> tuple[Awaitable, Awaitable]:
    """What the prediction and the review rollups hold for the range: per local day, or for an HourRange each
    period's document (from the caches when the hours make whole days, else straight from MongoDB)."""
    collections, caches = app[keys.COLLECTIONS], (app[keys.PREDICTION_CACHE], app[keys.ROLLUP_CACHE])
    if not isinstance(span, HourRange):
        return tuple(cache.by_day_versioned(collections, span) for cache in caches)
    days = span.whole_days()
    if days is not None:
        return tuple(cache.by_hour_versioned(collections, days) for cache in caches)
    return tuple(_unversioned(hours.documents(getattr(collections, cache.role), span)) for cache in caches)


async def _volume_parts(app: web.Application, span: Span, now: dt.datetime) -> tuple[bytes, bytes]:
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    local_today = now.astimezone(config.model.zone).date()
    today = DateRange(local_today, local_today, config.model.zone)
    predictions, reviews = app[keys.PREDICTION_CACHE], app[keys.ROLLUP_CACHE]
    *held, recounting = await asyncio.gather(
        *_periods_held(app, span), predictions.by_day_versioned(collections, today),
        reviews.by_day_versioned(collections, today), queries.prediction_recount(collections))
    (by_prediction, by_review, today_predictions, today_reviews), versions = zip(*held)
    build = functools.partial(_run, volume_body, span, by_prediction, by_review,
                              (today_predictions.get(today.first), today_reviews.get(today.first)), now, recounting)
    if None in versions:
        kept = await build()
    else:
        kept = await app[keys.RESPONSES].get(("volume", span),
                                        (versions, recounting, now.replace(second=0, microsecond=0)), build)
    body = json.dumps(kept | {"today": kept["today"] | {"as_of": AS_OF}}).encode()
    before, cut, after = body.partition(json.dumps(AS_OF).encode())
    if not cut:
        raise ValueError("the volume body has no today.as_of")
    return before, after


async def health(request: web.Request) -> web.Response:
    """Data health. With a `segment`, pending reviews and review latency are that segment's (its rollups); what
    the consumer set aside, the outbox and the consumer's state are the whole system's whatever the segment (a
    document set aside is counted in no segment, and the outbox and the consumer serve every segment at once).
    `segments_pending` says how much the segment figures trail the overall ones, while the consumer is behind."""
    app = request.app
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    values = query(request, (*RANGE_PARAMETERS, segments_api.PARAMETER))
    days = span_of(values, config)
    segment = segments_api.segment_of(values, config)
    (by_day, _), pending, rejects, backlog, consumer, put_off = await asyncio.gather(
        totals_by_period(app, days, segment=segment), _pending(app, days, segment),
        queries.rejects(collections), queries.outbox_backlog(collections),
        queries.consumer_state(collections, dt.datetime.now(dt.timezone.utc)), queries.segments_pending(collections))
    return web.json_response({
        "range": days.to_json(), "segment": None if segment is None else segment.to_json(), "pending": pending,
        "latency": await _run(reports.from_days, reports.latency, by_day),
        "rejects": rejects, "outbox_backlog": backlog, "consumer": consumer, "segments_pending": put_off,
        "live": app[keys.HUB].live})
