"""JSON API handlers: parse the parameters, read the rollups, build the body in an executor.

Range reports read per-day totals from the app's RollupCache (web.rollup_cache), which reads from
MongoDB only the hours that changed since it last looked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools

from aiohttp import web

from web import keys, queries, reports
from web.params import date_range, default_range, query


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
    """The range's per-day Totals (a coroutine)."""
    return request.app[keys.ROLLUP_CACHE].by_day(request.app[keys.COLLECTIONS], days)


async def summary(request: web.Request) -> web.Response:
    config, collections = request.app[keys.CONFIG], request.app[keys.COLLECTIONS]
    days = date_range(request, config)
    by_day, pending = await asyncio.gather(_by_day(request, days), queries.pending_reviews(collections, days))
    return web.json_response(await _run(reports.from_days, reports.summary, by_day, pending, days, config))


async def daily(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    days = date_range(request, config)
    return web.json_response(await _run(reports.daily, await _by_day(request, days), days, config))


def _range_report(function):
    """A handler that builds `function(totals, days, config)` over the range's rollups."""
    async def handler(request: web.Request) -> web.Response:
        config = request.app[keys.CONFIG]
        days = date_range(request, config)
        return web.json_response(await _run(reports.from_days, function, await _by_day(request, days), days, config))
    handler.__name__ = handler.__qualname__ = function.__name__
    return handler


classes = _range_report(reports.classes)
confusion = _range_report(reports.confusion)
training = _range_report(reports.training)


async def health(request: web.Request) -> web.Response:
    config, collections = request.app[keys.CONFIG], request.app[keys.COLLECTIONS]
    days = date_range(request, config)
    by_day, pending, rejects, backlog, consumer = await asyncio.gather(
        _by_day(request, days), queries.pending_reviews(collections, days),
        queries.rejects(collections), queries.outbox_backlog(collections),
        queries.consumer_state(collections, dt.datetime.now(dt.timezone.utc)))
    return web.json_response({
        "range": days.to_json(), "pending": pending,
        "latency": await _run(reports.from_days, reports.latency, by_day),
        "rejects": rejects, "outbox_backlog": backlog, "consumer": consumer,
        "live": request.app[keys.HUB].live})
