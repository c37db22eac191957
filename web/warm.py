"""What the web process loads before its first request: the latest days of both kinds of rollups.

A 90-day range read cold costs a few hundred milliseconds (decoding ~2,200 hour documents and summing
them), so at start the app loads the WARM_DAYS local days up to the newest review rollup, and the default
range, into both caches (web.day_totals), counts those days' pending reviews (web.pending), and computes
every loaded day's metrics once (web.reports keeps them by their counters; scikit-learn's slower first
call is paid there). With segments configured, the busiest WARM_SEGMENT_VALUES values of each field over
those days (at most what web.segment_totals keeps) are loaded next, one after another, both kinds, each
in a pause of QUIET_SECONDS in requests (web.quiet: a value costs a few hundred milliseconds of CPU at 1M
reviews, which would otherwise slow the requests being answered): a segment's first answer then costs what
an overall one does. The app waits for this at most
WARM_WAIT_SECONDS before serving; the rest goes on in the background, and a request that needs it
meanwhile waits for it, or reads MongoDB itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter

from aiohttp import web
from pymongo.errors import PyMongoError

from clara.rollups import Totals, local_day
from clara.segment_rollups import segments_seen
from web import keys, reports
from web.day_totals import Snapshot
from web.params import DateRange, default_range
from web.rollup_cache import RollupCache
from web.segment_totals import MAX_KEPT
from web.segments_api import SEGMENT_ROLES

log = logging.getLogger(__name__)
WARM_DAYS = 100      # the longest range a dashboard asks for often (90 days), with a margin
WARM_WAIT_SECONDS = 1.5
WARM_SEGMENT_VALUES = 10   # per field, busiest first
QUIET_SECONDS = 0.25       # the pause in requests each segment value's load waits for (web.quiet)
FIRST_CALL = Totals(reviews=1, cells=Counter({(0, 0): 1}))


async def warm(app: web.Application) -> None:
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    zone = config.model.zone
    try:
        days = set(default_range(config).days)
        newest = await collections.rollups.find_one({"_id": {"$type": "date"}}, {"_id": 1}, sort=[("_id", -1)])
        if newest is not None:
            last = local_day(newest["_id"], zone)
            days.update(last - dt.timedelta(days=n) for n in range(WARM_DAYS))
        began = time.perf_counter()
        await asyncio.gather(_rollups(app, sorted(days)), app[keys.PENDING].warm(collections, days, zone))
        log.info("loaded %d days of rollups at start in %.2f s", len(days), time.perf_counter() - began)
        began = time.perf_counter()
        if warmed := await _segments(app, sorted(days)):
            log.info("loaded %d segment values at start in %.2f s", warmed, time.perf_counter() - began)
    except PyMongoError as exc:
        log.info("rollups not loaded at start (%s: %s); the first requests read them", type(exc).__name__, exc)
    except Exception:  # noqa: BLE001 - a failed warm-up costs the first requests time, never the app
        log.exception("warming the rollup caches failed; the first requests read the rollups")


async def _rollups(app: web.Application, days: list[dt.date]) -> None:
    collections = app[keys.COLLECTIONS]
    reviews, _ = await asyncio.gather(app[keys.ROLLUP_CACHE].warm(collections, days),
                                      app[keys.PREDICTION_CACHE].warm(collections, days))
    # scikit-learn's first call in a process costs ~25 ms more than the next ones (lazy imports): paid
    # here, with one-cell Totals when no day has reviews yet.
    await _metrics(app, list(reviews.values()) or [FIRST_CALL])


async def _metrics(app: web.Application, totals: list[Totals]) -> None:
    """Compute these Totals' metrics once, in the executor, for web.reports to keep."""
    await asyncio.get_running_loop().run_in_executor(None, reports.metrics_each, totals, app[keys.CONFIG].n_classes)


async def _segments(app: web.Application, days: list[dt.date]) -> int:
    """Load the busiest values of every segment field over `days` into the segment totals, both kinds;
    returns how many values."""
    config = app[keys.CONFIG]
    fields = config.segments.fields
    if not fields:
        return 0
    bounds = DateRange(days[0], days[-1], config.model.zone).bounds
    seen = await asyncio.get_running_loop().run_in_executor(None, segments_seen, app[keys.DRIFT_COLLECTIONS], *bounds)
    per_field = min(WARM_SEGMENT_VALUES, MAX_KEPT // (len(SEGMENT_ROLES) * len(fields)))
    chosen = [(field, one.value) for field in fields for one in seen.get(field, [])[:per_field]]
    for field, value in chosen:
        reviews = await _segment_kind(app, app[keys.ROLLUP_CACHE], field, value, days)
        if reviews is not None and reviews.totals:
            await app[keys.QUIET].wait(QUIET_SECONDS)
            await _metrics(app, list(reviews.totals.values()))
        await _segment_kind(app, app[keys.PREDICTION_CACHE], field, value, days)
    return len(chosen)


async def _segment_kind(app: web.Application, cache: RollupCache, field: str, value: str,
                        days: list[dt.date]) -> Snapshot | None:
    """One segment value's day totals of the kind `cache` keeps overall, loaded in a pause in requests."""
    await app[keys.QUIET].wait(QUIET_SECONDS)
    totals = app[keys.SEGMENT_TOTALS].of(SEGMENT_ROLES[cache.role], field, value, cache.summed)
    return await totals.snapshot(app[keys.COLLECTIONS], days)
