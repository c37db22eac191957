"""The estimates package's results as JSON: every estimate keeps its `method` and `assumption`.

A number JSON cannot carry (NaN, an infinite condition number) becomes null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from estimates.calibration import Reliability
from estimates.label_shift import LabelShift
from estimates.results import Estimate, Interval
from estimates.review_hints import Hint, ReviewsNeeded


def number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def numbers(values: Sequence | None) -> list[float | None] | None:
    return None if values is None else [number(v) for v in values]


def interval(value: Interval | None) -> dict | None:
    if value is None:
        return None
    return {"low": number(value.low), "high": number(value.high), "level": value.level, "method": value.method}


def estimate(value: Estimate) -> dict:
    return {"method": value.method, "assumption": value.assumption, "value": number(value.value),
            "interval": interval(value.interval), "n": value.n, "reason": value.reason, "notes": list(value.notes)}


def reliability(value: Reliability) -> dict:
    """ECE, MCE and direction, and the non-empty bins (edges (low, high]; the first bin also holds 0)."""
    return {"method": value.method, "assumption": value.assumption, "n": value.n, "ece": number(value.ece),
            "mce": number(value.mce), "signed_gap": number(value.signed_gap), "direction": value.direction,
            "reason": value.reason,
            "bins": [{"index": b.index, "low": b.low, "high": b.high, "count": b.count, "correct": b.correct,
                      "accuracy": number(b.accuracy), "confidence": number(b.confidence), "gap": number(b.gap),
                      "interval": interval(b.interval)} for b in value.bins if b.count]}


def label_shift(value: LabelShift) -> dict:
    return {"method": value.method, "assumption": value.assumption, "defined": value.defined, "mix": numbers(value.mix),
            "intervals": None if value.intervals is None else [interval(i) for i in value.intervals],
            "weights": numbers(value.weights), "reference_mix": numbers(value.reference_mix),
            "predicted_mix": numbers(value.predicted_mix), "condition": number(value.condition),
            "smallest_singular_value": number(value.smallest_singular_value), "accuracy": estimate(value.accuracy),
            "n": value.n, "target": value.target, "reason": value.reason, "notes": list(value.notes)}


def hint(value: Hint, label: str) -> dict:
    return {"kind": value.kind, "index": value.index, "label": label, "reviewed": value.reviewed,
            "traffic_share": number(value.traffic_share), "width": number(value.width), "score": number(value.score)}


def reviews_needed(value: ReviewsNeeded) -> dict:
    return {"method": value.method, "assumption": value.assumption, "per_day": value.per_day,
            "current_per_day": value.current_per_day, "half_width": value.half_width, "reason": value.reason}
