"""The record contract with the model's service: one typed parser from a source document to a Record.

`parse_document` never raises: a document either becomes a Record or a Rejection naming the field
and what was wrong with it, so a bad document can be set aside without stopping anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from typing import Any

from bson.datetime_ms import DatetimeMS

UTC = dt.timezone.utc
# The fields a document's count depends on: a change to any of them can move a count (`logged` is CLARA's).
COUNTED_FIELDS = ("filename", "output_prediction", "output_confidence", "timestamp", "output_validated",
                  "timestamp_validated", "trained")


class Review(enum.Enum):
    """Where a prediction stands with its reviewers."""

    PENDING = "pending"      # output_validated absent or null
    CONFIRMED = "confirmed"  # the true class is known (an int label, or the legacy `true`)
    REJECTED = "rejected"    # legacy `false`: the prediction is wrong, the true class unknown


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    id: Any
    filename: str
    predicted: int
    confidence: float | None
    timestamp: dt.datetime            # aware, UTC
    review: Review
    truth: int | None                 # the confirmed class; None when pending or rejected
    reviewed_at: dt.datetime | None   # aware, UTC
    trained: bool | None
    logged: bool

    @property
    def reviewed(self) -> bool:
        return self.review is not Review.PENDING

    @property
    def latency_seconds(self) -> float | None:
        """Seconds from prediction to review, when both times are known and in order."""
        if self.reviewed_at is None or self.reviewed_at < self.timestamp:
            return None
        return (self.reviewed_at - self.timestamp).total_seconds()


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    id: Any
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def parse_document(doc: Any, n_classes: int) -> Record | Rejection:
    """Turn a source document into a Record, or a Rejection naming the field and the problem."""
    if not isinstance(doc, Mapping):
        return Rejection(None, "document", f"expected a document, got {type(doc).__name__}")
    doc_id = doc.get("_id")
    try:
        return _parse(doc, doc_id, n_classes)
    except _Bad as bad:
        return Rejection(doc_id, bad.field, bad.reason)


class _Bad(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(field, reason)
        self.field, self.reason = field, reason


def _parse(doc: Mapping, doc_id: Any, n_classes: int) -> Record:
    if doc_id is None:
        raise _Bad("_id", "missing")
    filename = _required(doc, "filename")
    if not isinstance(filename, str) or not filename:
        raise _Bad("filename", f"expected a non-empty string, got {_show(filename)}")
    predicted = _class_id("output_prediction", _required(doc, "output_prediction"), n_classes)
    confidence = doc.get("output_confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise _Bad("output_confidence", f"expected a number from 0 to 1, got {_show(confidence)}")
        confidence = float(confidence)
        if math.isnan(confidence) or not 0.0 <= confidence <= 1.0:
            raise _Bad("output_confidence", f"expected a number from 0 to 1, got {_show(confidence)}")
    timestamp = _datetime("timestamp", _required(doc, "timestamp"))
    validated = doc.get("output_validated")
    if validated is None:
        review, truth = Review.PENDING, None
    elif validated is True:
        review, truth = Review.CONFIRMED, predicted
    elif validated is False:
        review, truth = Review.REJECTED, None
    else:
        review, truth = Review.CONFIRMED, _class_id("output_validated", validated, n_classes)
    reviewed_at = doc.get("timestamp_validated")
    reviewed_at = None if reviewed_at is None else _datetime("timestamp_validated", reviewed_at)
    trained = doc.get("trained")
    if trained is not None and not isinstance(trained, bool):
        raise _Bad("trained", f"expected true or false, got {_show(trained)}")
    logged = doc.get("logged", False)
    if logged is None:
        logged = False
    if not isinstance(logged, bool):
        raise _Bad("logged", f"expected true or false, got {_show(logged)}")
    return Record(doc_id, filename, predicted, confidence, timestamp, review, truth, reviewed_at, trained, logged)


def _required(doc: Mapping, field: str) -> Any:
    if field not in doc or doc[field] is None:
        raise _Bad(field, "missing")
    return doc[field]


def _class_id(field: str, value: Any, n_classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(field, f"expected a class index (an integer), got {_show(value)}")
    if not 0 <= value < n_classes:
        raise _Bad(field, f"unknown class id {value}; expected 0 to {n_classes - 1}")
    return int(value)


def _datetime(field: str, value: Any) -> dt.datetime:
    if isinstance(value, DatetimeMS):
        raise _Bad(field, f"date out of range (years 1 to 9999): {int(value)} ms since 1970; "
                          "was a time in seconds stored as milliseconds?")
    if not isinstance(value, dt.datetime):
        raise _Bad(field, f"expected a date, got {_show(value)}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
