"""Estimate endpoints: intervals, calibration, accuracy of the unreviewed predictions, label shift, review hints.

Same range parameters and errors as the other endpoints (web.params); the bodies are built by
web.estimates_reports in the executor, from the same per-day rollup caches. Where an estimate leans on a
labelled reference period, `reference=previous` (the default) takes the `reference_days` local days
before `from`, `reference=range` the range itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Mapping

from aiohttp import web

from clara.config_checks import MAX_REFERENCE_DAYS
from clara.predictions import PredictionTotals
from clara.rollups import Totals
from clara.settings import EstimateSettings
from estimates.label_shift import METHODS as LABEL_SHIFT_METHODS
from estimates.unreviewed import MIN_REVIEWS as MIN_BIN_REVIEWS
from web import estimates_reports as reports
from web import keys, segments_api
from web.api import totals_by_period
from web.errors import BadParameter
from web.hours import Span, series_span, span_of
from web.params import RANGE_PARAMETERS, DateRange, integer, query, range_of

# The shipped defaults (the OpenAPI document quotes them); a request's default is its config's [estimates].
MIN_DAY_REVIEWS = EstimateSettings().min_day_reviews      # a day (or range) with fewer reviews is `uncertain`
REFERENCE_DAYS = EstimateSettings().reference_days
REFERENCES = ("previous", "range")
WEIGHTINGS = ("confidence_bins", "none")
MAX_COUNT = 1_000_000


def choice(values: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """An optional parameter from `choices`; the first is the default."""
    value = values.get(name, choices[0])
    if value not in choices:
        raise BadParameter(name, f"{value!r} is not one of: {', '.join(choices)}")
    return value


def reference_range(values: Mapping[str, str], days: Span, default_days: int = REFERENCE_DAYS) -> Span:
    """The reference period; `reference_days` is checked even where `reference=range` makes it unused. The
    previous days of an HourRange are the whole local days before the one it starts on."""
    kind = choice(values, "reference", REFERENCES)
    length = integer(values, "reference_days", default_days, 1, MAX_REFERENCE_DAYS)
    if kind == "range":
        return days
    return DateRange(days.first - dt.timedelta(days=length), days.first - dt.timedelta(days=1), days.zone)


async def _run(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


def _parsed(request: web.Request, *names: str, series: bool = False) -> tuple[dict[str, str], Span]:
    """The query's values and its range: with `series`, `by` is allowed and applied (web.hours)."""
    values = query(request, (*RANGE_PARAMETERS, segments_api.PARAMETER, *names, *(("by",) if series else ())))
    parse = series_span if series else span_of
    return values, parse(values, request.app[keys.CONFIG])


async def _by_period(request: web.Request, days: Span, cache: web.AppKey = keys.ROLLUP_CACHE) -> dict:
    """The range's totals per local day, or per local hour of an HourRange, of one kind of rollup: of the
    request's `segment` when it names one (web.api.totals_by_period)."""
    return (await totals_by_period(request.app, days, cache, segments_api.requested(request)))[0]


async def _days(request: web.Request, days: Span) -> tuple[dict, dict]:
    """The range's totals per period of both kinds of rollups."""
    return await asyncio.gather(_by_period(request, days), _by_period(request, days, keys.PREDICTION_CACHE))


async def _reference(request: web.Request, days: Span, values: Mapping[str, str],
                     loaded: tuple[dict, dict]) -> tuple[reports.Reference, Totals]:
    ref_days = reference_range(values, days, request.app[keys.CONFIG].estimates.reference_days)
    reviews, predictions = loaded if ref_days == days else await _days(request, ref_days)
    totals = Totals.sum(reviews.values())
    return reports.Reference(ref_days, reports.Bins.of(totals, PredictionTotals.sum(predictions.values()))), totals


async def intervals(request: web.Request) -> web.Response:
    """Accuracy, precision and recall (Wilson) and F1 (bootstrap) over the range and per day (or hour)."""
    values, days = _parsed(request, "min_reviews", series=True)
    min_reviews = integer(values, "min_reviews", request.app[keys.CONFIG].estimates.min_day_reviews, 1, MAX_COUNT)
    by_day = await _by_period(request, days)
    return web.json_response(await _run(reports.intervals, by_day, days, request.app[keys.CONFIG], min_reviews))


async def calibration(request: web.Request) -> web.Response:
    """Reliability bins, ECE, MCE and direction over the range, per predicted class and per day (or hour)."""
    values, days = _parsed(request, "min_reviews", series=True)
    min_reviews = integer(values, "min_reviews", request.app[keys.CONFIG].estimates.min_day_reviews, 1, MAX_COUNT)
    by_day = await _by_period(request, days)
    return web.json_response(await _run(reports.calibration, by_day, days, request.app[keys.CONFIG], min_reviews))


async def unreviewed(request: web.Request) -> web.Response:
    """Accuracy of the unreviewed predictions, and of all traffic, per day and over the range."""
    values, days = _parsed(request, "method", "reference", "reference_days", "min_bin_reviews", series=True)
    method = choice(values, "method", reports.UNREVIEWED_METHODS)
    min_bin_reviews = integer(values, "min_bin_reviews", MIN_BIN_REVIEWS, 1, MAX_COUNT)
    reference_range(values, days, request.app[keys.CONFIG].estimates.reference_days)   # its parameters checked before anything is read
    loaded = await _days(request, days)
    reference, _ = await _reference(request, days, values, loaded)
    return web.json_response(await _run(reports.unreviewed_accuracy, *loaded, reference, days,
                                        request.app[keys.CONFIG], method, min_bin_reviews))


async def label_shift(request: web.Request) -> web.Response:
    """The true-class mix of all traffic in the range (BBSE or RLLS), from a reference's reviewed confusion."""
    values, days = _parsed(request, "method", "weighting", "reference", "reference_days")
    method = choice(values, "method", LABEL_SHIFT_METHODS)
    weighting = choice(values, "weighting", WEIGHTINGS)
    reference_range(values, days, request.app[keys.CONFIG].estimates.reference_days)
    reviews, predictions = loaded = await _days(request, days)
    reference, ref_reviews = await _reference(request, days, values, loaded)
    return web.json_response(await _run(reports.label_shift_mix, Totals.sum(reviews.values()),
                                        PredictionTotals.sum(predictions.values()), reference, ref_reviews, days,
                                        request.app[keys.CONFIG], method, weighting))


async def review_hints(request: web.Request) -> web.Response:
    """Where the next reviews shrink the uncertainty most, and how many a day a ±2-point interval needs
    (whole local days only: the answer is per day)."""
    days = range_of(query(request, (*RANGE_PARAMETERS, segments_api.PARAMETER)), request.app[keys.CONFIG])
    return web.json_response(await _run(reports.review_hints, *await _days(request, days), days,
                                        request.app[keys.CONFIG]))
