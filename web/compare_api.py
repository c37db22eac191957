"""/api/compare: two values of a segment field side by side over the same range (typically two model versions).

`field`, `a` and `b` name the two segments (`field=model_version&a=v1&b=v2`); the range parameters are the
other endpoints'. Both sides are read from the segment rollups (web.segments_api) and put through the same
estimators, over the periods where both have reviews (`common`: the same days, so that a version deployed
mid-range is not compared with the other's whole history): accuracy and per-class recall of the reviewed
predictions with Wilson intervals and a test of the difference (estimates.compare: z-test or Fisher,
Benjamini-Hochberg over the classes), reliability (calibration) of the reviewed predictions and the
predicted-class mix of all predictions; beside them, accuracy per day (or hour) of both over the whole range.
Each difference says in words which side is higher and whether it is significant.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping

from aiohttp import web

from clara.config import Config
from clara.predictions import PredictionTotals
from clara.rollups import Totals
from clara.segments import MAX_VALUE_LENGTH
from estimates.compare import Difference, compare_each, two_proportions, verdict
from estimates.intervals import proportion
from web import estimates_json as js
from web import keys
from web.api import totals_by_period
from web.errors import BadParameter
from web.estimates_reports import reliability_of
from web.hours import Span, series_span
from web.params import RANGE_PARAMETERS, query
from web.segments_api import Segment

SIDES = ("a", "b")


def sides_of(values: Mapping[str, str], config: Config) -> tuple[Segment, Segment]:
    """The two segments `field`, `a` and `b` name; each missing or bad one is a 400 naming it."""
    fields = config.segments.fields
    if not fields:
        raise BadParameter("field", "no segment fields are configured (segments.fields): nothing to compare")
    field = values.get("field")
    if field is None:
        raise BadParameter("field", f"missing: the segment field to compare by, one of {', '.join(fields)}")
    if field not in fields:
        raise BadParameter("field", f"{field!r} is not a segment field; configured: {', '.join(fields)}")
    for name in SIDES:
        value = values.get(name)
        if not value:
            raise BadParameter(name, f"missing: a value of {field} (as /api/segments lists them)")
        if len(value) > MAX_VALUE_LENGTH:
            raise BadParameter(name, f"{len(value)} characters; a segment value has at most {MAX_VALUE_LENGTH}")
    return Segment(field, values["a"]), Segment(field, values["b"])


def difference(found: Difference, name_a: str, name_b: str, what: str) -> dict:
    return {"method": found.method, "assumption": found.assumption, "a": js.estimate(found.a),
            "b": js.estimate(found.b), "difference": js.number(found.difference),
            "statistic": js.number(found.statistic),
            "p_value": js.number(found.p_value), "adjusted_p_value": js.number(found.adjusted_p_value),
            "alpha": found.alpha, "significant": found.significant, "reason": found.reason,
            "verdict": verdict(found, name_a, name_b, what)}


def _correct(totals: Totals, k: int) -> tuple[int, int]:
    cells = totals.cells
    return sum(cells.get((c, c), 0) for c in range(k)), totals.reviews


def _recalls(totals: Totals, k: int) -> list[tuple[int, int]]:
    """(correct, reviews with that true class) per class: recall's counts (rejected reviews have no class)."""
    return [(totals.cells.get((t, t), 0), sum(totals.cells.get((t, p), 0) for p in range(k))) for t in range(k)]


def _reviews(found: Mapping, period) -> int:
    totals = found.get(period)
    return totals.reviews if totals is not None else 0


def compare(reviews: tuple[Mapping, Mapping], predictions: tuple[Mapping, Mapping], sides: tuple[Segment, Segment],
            span: Span, config: Config) -> dict:
    """The body, from each side's per-period review and prediction totals. Every figure but the series per period
    is over the periods where both sides have reviews (`common`): a version deployed on Thursday is compared
    with the other on Thursday's traffic onwards, not with the other's whole history."""
    k, names = config.n_classes, config.model.classes
    a, b = (side.value for side in sides)
    common = [period for period in span.periods if all(_reviews(found, period) for found in reviews)]
    totals = [Totals.sum(found[period] for period in common) for found in reviews]
    traffic = [PredictionTotals.sum(found[period] for period in common if period in found) for found in predictions]
    accuracy = two_proportions(*_correct(totals[0], k), *_correct(totals[1], k))
    recall = compare_each(_recalls(totals[0], k), _recalls(totals[1], k))

    def per_period(found: Mapping) -> list[dict]:
        return [js.estimate(proportion(*_correct(found.get(period) or Totals(), k))) for period in span.periods]

    return {"range": span.to_json(), "by": span.unit, "field": sides[0].field, "a": a, "b": b,
            "classes": list(names), "colors": list(config.model.colors),
            "accuracy": difference(accuracy, a, b, "accuracy"),
            "recall": [difference(found, a, b, f"recall of {name}") for found, name in zip(recall, names)],
            "calibration": {side: reliability_of(one, within=config.estimates.calibrated_within)
                            for side, one in zip(SIDES, totals)},
            "mix": {side: {"predictions": one.predictions, "bad": one.bad,
                           "by_class": [one.classes.get(c, 0) for c in range(k)]}
                    for side, one in zip(SIDES, traffic)},
            "common": [span.label(period) for period in common],
            "periods": [span.label(period) for period in span.periods],
            "accuracy_by_period": {side: per_period(found) for side, found in zip(SIDES, reviews)}}


async def compare_handler(request: web.Request) -> web.Response:
    """Two segments of one field side by side (the module docstring)."""
    config = request.app[keys.CONFIG]
    values = query(request, (*RANGE_PARAMETERS, "by", "field", *SIDES))
    span = series_span(values, config)
    sides = sides_of(values, config)
    kept = await asyncio.gather(*(   # each side's totals, shared with its segment's other endpoints
        totals_by_period(request.app, span, cache, side)
        for cache in (keys.ROLLUP_CACHE, keys.PREDICTION_CACHE) for side in sides))
    reviews_a, reviews_b, predictions_a, predictions_b = (totals for totals, _ in kept)
    body = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
        compare, (reviews_a, reviews_b), (predictions_a, predictions_b), sides, span, config))
    return web.json_response(body)
