"""JSON API handlers: parse the parameters, read the rollups, build the body in an executor.

Range reports read per-day totals from the app's RollupCache (web.rollup_cache), which reads from
MongoDB only the hours that changed since it last looked. With the change fence following, the totals
come with a version of the range's data, and the finished JSON of summary, daily, classes, confusion and
training is kept by endpoint, range and version (web.response_cache): a request that finds its version
costs one drain of the fence, no listing and no scikit-learn. Pending counts are kept the same way
(web.pending).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import Hashable

from aiohttp import web

from clara.predictions import PredictionTotals
from web import keys, queries, reports
from web.params import RANGE_PARAMETERS, DateRange, date_range, default_range, query, range_of
from web.volume import granularity, volume_body


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
        "max_range_days": config.web.max_range_days, "averages": ["macro", "weighted"]})


def _by_day(request: web.Request, days):
    """The range's per-day Totals and their version, None when not known (a coroutine)."""
    return request.app[keys.ROLLUP_CACHE].by_day_versioned(request.app[keys.COLLECTIONS], days)


def _pending(request: web.Request, days: DateRange):
    return request.app[keys.PENDING].count(request.app[keys.COLLECTIONS], days)


async def _answer(request: web.Request, key: Hashable, version: Hashable | None, function, *args) -> web.Response:
    """`function(*args)` as JSON, built in the executor, or kept from a build for the same key and version."""
    build = functools.partial(_run, _json, function, *args)
    body = await (build() if version is None else request.app[keys.RESPONSES].get(key, version, build))
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _json(function, *args) -> bytes:
    return json.dumps(function(*args)).encode()


async def summary(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    days = date_range(request, config)
    (by_day, version), pending = await asyncio.gather(_by_day(request, days), _pending(request, days))
    return await _answer(request, ("summary", days), None if version is None else (version, pending),
                         reports.from_days, reports.summary, by_day, pending, days, config)


async def daily(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    days = date_range(request, config)
    by_day, version = await _by_day(request, days)
    return await _answer(request, ("daily", days), version, reports.daily, by_day, days, config)


def _range_report(function):
    """A handler that builds `function(totals, days, config)` over the range's rollups."""
    async def handler(request: web.Request) -> web.Response:
        config = request.app[keys.CONFIG]
        days = date_range(request, config)
        by_day, version = await _by_day(request, days)
        return await _answer(request, (function.__name__, days), version,
                             reports.from_days, function, by_day, days, config)
    handler.__name__ = handler.__qualname__ = function.__name__
    return handler


classes = _range_report(reports.classes)
confusion = _range_report(reports.confusion)


async def training(request: web.Request) -> web.Response:
    """Training-set class counts beside the range's predictions: all of them, and the reviewed ones."""
    config, collections = request.app[keys.CONFIG], request.app[keys.COLLECTIONS]
    days = date_range(request, config)
    (by_day, version), (predictions, predictions_version) = await asyncio.gather(
        _by_day(request, days), request.app[keys.PREDICTION_CACHE].by_day_versioned(collections, days))
    both = None if version is None or predictions_version is None else (version, predictions_version)
    return await _answer(request, ("training", days), both, _training, by_day, predictions, days, config)


def _training(by_day, predictions, days: DateRange, config) -> dict:
    return reports.from_days(reports.training, by_day, PredictionTotals.sum(predictions.values()), days, config)


async def volume(request: web.Request) -> web.Response:
    """All predictions per day (per hour for short ranges) split into reviewed / rejected / pending, the
    review coverage, and today so far, from the prediction and review rollups (web.volume).

    The body depends on the time only through the minute (period starts are whole minutes) and `as_of`,
    so it is kept by range, data versions, recount state and minute, and `as_of` is set on each answer."""
    config, collections = request.app[keys.CONFIG], request.app[keys.COLLECTIONS]
    values = query(request, (*RANGE_PARAMETERS, "by"))
    days = range_of(values, config)
    by = granularity(values, days)
    now = dt.datetime.now(dt.timezone.utc)
    local_today = now.astimezone(config.model.zone).date()
    today = DateRange(local_today, local_today, config.model.zone)
    predictions, reviews = request.app[keys.PREDICTION_CACHE], request.app[keys.ROLLUP_CACHE]
    if by == "hour":
        periods = (predictions.by_hour_versioned(collections, days), reviews.by_hour_versioned(collections, days))
    else:
        periods = (predictions.by_day_versioned(collections, days), reviews.by_day_versioned(collections, days))
    *held, recounting = await asyncio.gather(
        *periods, predictions.by_day_versioned(collections, today), reviews.by_day_versioned(collections, today),
        queries.prediction_recount(collections))
    (by_prediction, by_review, today_predictions, today_reviews), versions = zip(*held)
    build = functools.partial(_run, volume_body, days, by, by_prediction, by_review,
                              (today_predictions.get(today.first), today_reviews.get(today.first)), now, recounting)
    if None in versions:
        return web.json_response(await build())
    kept = await request.app[keys.RESPONSES].get(("volume", days, by),
                                            (versions, recounting, now.replace(second=0, microsecond=0)), build)
    return web.json_response(kept | {"today": kept["today"] | {"as_of": now.isoformat()}})


async def health(request: web.Request) -> web.Response:
    config, collections = request.app[keys.CONFIG], request.app[keys.COLLECTIONS]
    days = date_range(request, config)
    (by_day, _), pending, rejects, backlog, consumer = await asyncio.gather(
        _by_day(request, days), _pending(request, days),
        queries.rejects(collections), queries.outbox_backlog(collections),
        queries.consumer_state(collections, dt.datetime.now(dt.timezone.utc)))
    return web.json_response({
        "range": days.to_json(), "pending": pending,
        "latency": await _run(reports.from_days, reports.latency, by_day),
        "rejects": rejects, "outbox_backlog": backlog, "consumer": consumer,
        "live": request.app[keys.HUB].live})
