"""Prediction counters grouped by MongoDB: what a recount adds, without sending each document to Python.

A recount read, decoded and parsed every document in Python; on a collection of a million predictions that
was most of a first start and of `replay --rebuild`. Here the server groups the documents instead, and
the record contract keeps one definition, clara.records.parse_document:

- `countable` is a conservative pre-filter: an aggregation expression that is true only for documents the
  parser accepts. A document it is unsure of (every broken one among them) is read and classified in
  Python, as before, so nothing the parser would reject is ever counted as valid;
- `pipeline` groups each accepted document, keyed by exactly what clara.predictions.classify files it under
  (period, predicted class, confidence bin, calibration bin; the segment fields' raw values with their
  BSON type, so two values the server holds equal always name the same segment), and `increments` turns
  a group into classify's $inc, summed.

tests/clara/test_prediction_counts.py checks both claims on generated documents against a real mongod.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from clara.records import COUNTED_FIELDS
from clara.rollups import CONFIDENCE_BINS

UTC = dt.timezone.utc
MICROS = 1_000_000
NUMBERS = ["int", "long", "double"]
ABSENT = ["missing", "null"]
OK = "__clara_countable"   # a field the pipeline sets on each document it reads, and never returns
# Dates a decoded document holds as datetimes (clara.db.client_options); beyond them, DatetimeMS, which the
# parser rejects. A day inside each end is left to the parser.
EARLIEST = dt.datetime(1, 1, 2, tzinfo=UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=UTC)


def countable(n_classes: int) -> dict:
    """True for a document that clara.records.parse_document turns into a Record (never for one it rejects)."""
    return {"$and": [
        {"$ne": ["$_id", None]},
        {"$eq": [{"$type": "$filename"}, "string"]}, {"$ne": ["$filename", ""]},
        _class_id("$output_prediction", n_classes),
        {"$or": [_absent("$output_confidence"),
                 {"$and": [_number("$output_confidence"), {"$gte": ["$output_confidence", 0]},
                           {"$lte": ["$output_confidence", 1]}]}]},   # NaN compares below 0
        _date("$timestamp"),
        {"$or": [_absent("$output_validated"), {"$eq": [{"$type": "$output_validated"}, "bool"]},
                 _class_id("$output_validated", n_classes)]},
        {"$or": [_absent("$timestamp_validated"), _date("$timestamp_validated")]},
        {"$or": [_absent("$trained"), {"$eq": [{"$type": "$trained"}, "bool"]}]},
        {"$or": [_absent("$logged"), {"$eq": [{"$type": "$logged"}, "bool"]}]},
    ]}


def pipeline(selector: Mapping, n_classes: int, period: dt.timedelta, segment_fields: Sequence[str] = ()) -> list:
    """One pass over the documents `selector` matches: a group per (period, predicted class, confidence bin,
    calibration bin, segment values) of the countable ones, with their count and confidence sum in micros,
    and each other document, projected to the fields that count, in a group of its own
    (`{"_id": {"document": <_id>}, "document": {...}}`)."""
    confident = has_confidence()
    micros = confidence_micros()
    key = {
        "hour": {"$dateTrunc": {"date": "$timestamp", "unit": "minute", "binSize": period // dt.timedelta(minutes=1)}},
        "predicted": "$output_prediction",
        # clara.rollups.confidence_bin: min(int(confidence * B), B - 1)
        "bin": {"$cond": [confident, {"$toInt": {"$min": [
            {"$floor": {"$multiply": ["$output_confidence", CONFIDENCE_BINS]}}, CONFIDENCE_BINS - 1]}}, None]},
        "cal": {"$cond": [confident, calibration_bin(micros), None]},
    }
    for i, field in enumerate(segment_fields):   # fields are top-level names without '.' or '$' (config checks)
        key[f"s{i}"] = {"value": f"${field}", "type": {"$type": f"${field}"}}
    # What counts, for a document left to the parser: it comes back this small, whatever else it holds.
    counted = {field: f"${field}" for field in ("_id", "logged", *COUNTED_FIELDS, *segment_fields)}
    return [{"$match": dict(selector)},
            {"$set": {OK: countable(n_classes)}},   # evaluated once per document
            {"$group": {"_id": {"$cond": [f"${OK}", key, {"document": "$_id"}]},
                        "n": {"$sum": 1}, "micros": {"$sum": {"$cond": [f"${OK}", {"$cond": [confident, micros, 0]}, 0]}},
                        "document": {"$first": {"$cond": [f"${OK}", "$$REMOVE", counted]}}}}]


def increments(group: Mapping[str, Any], segment_fields: Sequence[str] = ()) -> tuple[dt.datetime, dict[str, int],
                                                                                        dict[str, Any]]:
    """A group of countable documents (its "document" null): (period, the $inc clara.predictions.classify
    gives its documents, summed, the segment fields' raw values)."""
    key, n = group["_id"], group["n"]
    predicted = int(key["predicted"])
    inc = {"predictions": n, f"classes.{predicted}": n}
    if key.get("bin") is None:
        inc[f"no_confidence.{predicted}"] = n
    else:
        inc[f"confidence.{predicted}.{key['bin']}"] = n
        inc[f"calibration.{predicted}.{key['cal']}"] = n
        if group["micros"]:
            inc[f"calibration_micros.{predicted}.{key['cal']}"] = int(group["micros"])
    raw = {field: key[f"s{i}"].get("value") for i, field in enumerate(segment_fields)}
    return key["hour"].astimezone(UTC), inc, raw


def has_confidence() -> dict:
    """True for a document whose confidence is a number (countable ones: from 0 to 1)."""
    return _number("$output_confidence")


def confidence_micros() -> dict:
    """A numeric confidence in integer micros, rounded half to even as clara.rollups.Counted.of rounds it."""
    return {"$toLong": {"$round": [{"$multiply": ["$output_confidence", MICROS]}, 0]}}


def calibration_bin(micros: Any) -> dict:
    """clara.rollups.calibration_bin_micros of a micros expression: max(0, ceil(micros * B / 1e6) - 1), exact
    in doubles (see test)."""
    return {"$toInt": {"$max": [0, {"$subtract": [
        {"$ceil": {"$divide": [{"$multiply": [micros, CONFIDENCE_BINS]}, MICROS]}}, 1]}]}}


def _absent(path: str) -> dict:
    return {"$in": [{"$type": path}, ABSENT]}


def _number(path: str) -> dict:
    return {"$in": [{"$type": path}, NUMBERS]}


def _class_id(path: str, n_classes: int) -> dict:
    return {"$and": [{"$in": [{"$type": path}, ["int", "long"]]}, {"$gte": [path, 0]}, {"$lt": [path, n_classes]}]}


def _date(path: str) -> dict:
    return {"$and": [{"$eq": [{"$type": path}, "date"]}, {"$gte": [path, EARLIEST]}, {"$lte": [path, LATEST]}]}
