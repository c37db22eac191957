"""The OpenAPI description of the estimate endpoints (web.estimates_api), merged into web.openapi's document.

ENDPOINTS maps each path to (summary, response schema, its parameters besides `from`, `to` and `by`); SERIES
names the endpoints with a series per day that `by=hour` makes one per hour, DAYS_ONLY those that take
no hour-precise range.
"""

from __future__ import annotations

from estimates.label_shift import METHODS as LABEL_SHIFT_METHODS
from web.estimates_api import MAX_COUNT, MAX_REFERENCE_DAYS, MIN_DAY_REVIEWS, REFERENCE_DAYS, REFERENCES, WEIGHTINGS
from web.estimates_reports import UNREVIEWED_METHODS


def _object(**properties) -> dict:
    return {"type": "object", "required": list(properties), "properties": properties}


def _with(schema: dict, **properties) -> dict:
    return {**schema, "required": [*schema["required"], *properties],
            "properties": {**schema["properties"], **properties}}


def _optional(schema: dict, *names: str) -> dict:
    return {**schema, "required": [name for name in schema["required"] if name not in names]}


def _periods(row: dict, **more) -> dict:
    """Rows per local day (`days`, each with its `day`) or, with by=hour, per local hour (`hours`, `hour`)."""
    return {"days": {"type": "array", "items": _with(row, day=DAY, **more)},
            "hours": {"type": "array", "items": _with(row, hour=MOMENT, **more)}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


NUMBER = {"type": "number", "nullable": True}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
COUNT = {"type": "integer", "minimum": 0}
TEXT, MAYBE_TEXT = {"type": "string"}, {"type": "string", "nullable": True}
STRINGS = {"type": "array", "items": TEXT}
NUMBERS = {"type": "array", "items": NUMBER}
DAY = {"type": "string", "format": "date"}
MOMENT = {"type": "string", "format": "date-time"}
FLAG = {"type": "boolean"}
RANGE = _ref("Range")
INTERVAL = {**_object(low=NUMBER, high=NUMBER, level=FRACTION, method=TEXT), "nullable": True}
ESTIMATE = _ref("Estimate")
ESTIMATES = {"type": "array", "items": ESTIMATE}
FIGURES = _object(reviews=COUNT, uncertain=FLAG, accuracy=ESTIMATE, precision=ESTIMATES, recall=ESTIMATES,
                  f1=_object(macro=ESTIMATE, weighted=ESTIMATE))
BIN = _object(index=COUNT, low=FRACTION, high=FRACTION, count=COUNT, correct=COUNT, accuracy=NUMBER, confidence=NUMBER,
              gap=NUMBER, interval=INTERVAL)
RELIABILITY = _object(method=TEXT, assumption=TEXT, n=COUNT, ece=NUMBER, mce=NUMBER, signed_gap=NUMBER,
                      direction={"type": "string", "nullable": True,
                                 "enum": ["over-confident", "under-confident", "calibrated", None]},
                      reason=MAYBE_TEXT, complete=FLAG, bins={"type": "array", "items": BIN})
UNREVIEWED_ROW = _object(predictions=COUNT, reviewed=COUNT, unreviewed=COUNT, complete=FLAG, realized=ESTIMATE,
                         estimate=ESTIMATE, estimates=_object(**{name: ESTIMATE for name in UNREVIEWED_METHODS}),
                         combined=ESTIMATE)
REFERENCE = _object(range=RANGE, reviews=COUNT, complete=FLAG)
LABEL_SHIFT = _object(method=TEXT, assumption=TEXT, defined=FLAG, mix={**NUMBERS, "nullable": True},
                      intervals={"type": "array", "nullable": True, "items": INTERVAL},
                      weights={**NUMBERS, "nullable": True}, reference_mix=NUMBERS, predicted_mix=NUMBERS,
                      condition=NUMBER, smallest_singular_value=NUMBER, accuracy=ESTIMATE, n=COUNT, target=COUNT,
                      reason=MAYBE_TEXT, notes=STRINGS)
HINT = _object(kind={"type": "string", "enum": ["confidence_bin", "predicted_class"]}, index=COUNT, label=TEXT,
               reviewed=COUNT, traffic_share=NUMBER, width=NUMBER, score=NUMBER)
REVIEWS_NEEDED = _object(method=TEXT, assumption=TEXT, per_day={"type": "integer", "minimum": 0, "nullable": True},
                         current_per_day=COUNT, half_width=FRACTION, reason=MAYBE_TEXT)
HEAD = {"range": RANGE, "classes": STRINGS}

SCHEMAS = {
    "Estimate": _object(method=TEXT, assumption=TEXT, value=NUMBER, interval=INTERVAL, n=COUNT, reason=MAYBE_TEXT,
                        notes=STRINGS),
    "Intervals": _optional(_object(**HEAD, min_reviews=COUNT, total=FIGURES, **_periods(FIGURES)), "days", "hours"),
    "Calibration": _optional(_object(**HEAD, bins=COUNT, edges={"type": "array", "items": FRACTION}, min_reviews=COUNT,
                                     calibrated_within=FRACTION, total=RELIABILITY,
                                     by_class={"type": "array", "items": RELIABILITY},
                                     **_periods(RELIABILITY, uncertain=FLAG)), "days", "hours"),
    "Unreviewed": _optional(_object(**HEAD, method={"type": "string", "enum": list(UNREVIEWED_METHODS)},
                                    min_bin_reviews=COUNT,
                                    reference=_with(REFERENCE, accuracy=ESTIMATE, mean_confidence=NUMBER),
                                    total=UNREVIEWED_ROW, **_periods(UNREVIEWED_ROW)), "days", "hours"),
    "LabelShift": _object(**HEAD, method={"type": "string", "enum": list(LABEL_SHIFT_METHODS)},
                          weighting={"type": "string", "enum": list(WEIGHTINGS)}, draws=COUNT, reference=REFERENCE,
                          estimate=LABEL_SHIFT, unreviewed_mix={**NUMBERS, "nullable": True}),
    "ReviewHints": _object(**HEAD, half_width=FRACTION, bins={"type": "array", "items": HINT},
                           by_class={"type": "array", "items": HINT}, day={**DAY, "nullable": True},
                           reviews_needed=_object(wilson=REVIEWS_NEEDED, post_stratified=REVIEWS_NEEDED)),
}


def _parameter(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _integer(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


MIN_REVIEWS = _parameter("min_reviews", f"A day (or the range) with fewer reviews is `uncertain`, never hidden; "
                                        f"default estimates.min_day_reviews ({MIN_DAY_REVIEWS} unless configured)",
                         _integer(1, MAX_COUNT))
REFERENCE_PARAMETERS = [
    _parameter("reference", "The labelled reference period: `previous` (default) the `reference_days` local days "
                            "before `from` (before the local day an hour-precise `from` falls on), `range` the range "
                            "itself", {"type": "string", "enum": list(REFERENCES)}),
    _parameter("reference_days", f"Days of the `previous` reference; default estimates.reference_days "
                                 f"({REFERENCE_DAYS} unless configured)",
               _integer(1, MAX_REFERENCE_DAYS))]
UNREVIEWED_PARAMETERS = [
    _parameter("method", "The estimate of the unreviewed predictions' accuracy that `estimate` and `combined` use "
                         "(all are in `estimates`); default post_stratified",
               {"type": "string", "enum": list(UNREVIEWED_METHODS)}),
    *REFERENCE_PARAMETERS,
    _parameter("min_bin_reviews", "Adjacent confidence bins are merged until each has this many reviews; default 30",
               _integer(1, MAX_COUNT))]
LABEL_SHIFT_PARAMETERS = [
    _parameter("method", "bbse (default) or rlls (regularised, steadier with few reviews)",
               {"type": "string", "enum": list(LABEL_SHIFT_METHODS)}),
    _parameter("weighting", "confidence_bins (default): each reference review weighted by its confidence bin's traffic "
                            "/ reviews, undoing reviewers' preferences; none: the reviewed confusion as it is",
               {"type": "string", "enum": list(WEIGHTINGS)}),
    *REFERENCE_PARAMETERS]

SERIES = frozenset({"/api/intervals", "/api/calibration", "/api/unreviewed"})
DAYS_ONLY = frozenset({"/api/review-hints"})
ENDPOINTS = {
    "/api/intervals": ("Reviewed predictions: accuracy, per-class precision and recall with 95% Wilson intervals, "
                       "macro and weighted F1 with a seeded bootstrap interval, over the range and per day", "Intervals",
                       [MIN_REVIEWS]),
    "/api/calibration": ("Reviewed predictions: reliability bins (scikit-learn's uniform bins, non-empty ones, Wilson "
                         "intervals), ECE, MCE and over/under-confidence over the range, per predicted class and per "
                         "day; `complete` is false where hours predate the calibration counters (replay --rebuild)",
                         "Calibration", [MIN_REVIEWS]),
    "/api/unreviewed": ("Accuracy of the unreviewed predictions per day and over the range (post-stratified by "
                        "confidence, or AC, DoC, ATC against a reference period), beside the realized accuracy of the "
                        "reviewed ones and the combined accuracy of all traffic with a confidence", "Unreviewed",
                        UNREVIEWED_PARAMETERS),
    "/api/label-shift": ("The true-class mix of all predictions in the range (BBSE or RLLS from a reference's reviewed "
                         "confusion), with bootstrap intervals and the matrix's condition, or the reason it is "
                         "refused; the mix of the unreviewed part", "LabelShift", LABEL_SHIFT_PARAMETERS),
    "/api/review-hints": ("Where the next reviews shrink the uncertainty most (confidence bins and predicted classes "
                          "by interval width x traffic share), and the reviews a day a +/-2-point accuracy interval "
                          "needs at the last reviewed day's mix; whole local days only", "ReviewHints", []),
}
