"""Where the next reviews shrink the uncertainty most, and how many a day a ±2-point interval takes.

A hint ranks a confidence bin (or a predicted class) by the width of its accuracy's (precision's)
Wilson interval times its share of the traffic: a wide interval over much traffic is where a review
moves the headline numbers most. An unreviewed bin with traffic has width 1 (nothing is known).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from estimates.intervals import proportion_interval
from estimates.results import LEVEL, EstimateError
from estimates.unreviewed import MIN_REVIEWS, post_stratified

HALF_WIDTH = 0.02
SIMPLE = "reviews are drawn at random from the day's traffic (Wilson interval)"
STRATIFIED = ("reviewers keep today's mix of confidence bins and the bins' accuracies stay as now "
              "(post-stratified interval, which shrinks as 1 / sqrt(reviews))")


@dataclasses.dataclass(frozen=True, slots=True)
class Hint:
    kind: str             # "confidence_bin" or "predicted_class"
    index: int
    reviewed: int
    traffic_share: float
    width: float          # of the Wilson interval; 1.0 when nothing in it is reviewed
    score: float          # width × traffic share


@dataclasses.dataclass(frozen=True, slots=True)
class ReviewsNeeded:
    method: str
    assumption: str
    per_day: int | None   # None: not reachable (or nothing to go on), see reason
    current_per_day: int
    half_width: float
    reason: str | None = None


def bin_hints(reviewed: Sequence[int], correct: Sequence[int], traffic: Sequence[int], *,
              level: float = LEVEL) -> tuple[Hint, ...]:
    """Confidence bins, most useful to review first (r_b, c_b reviewed and correct; traffic: all predictions)."""
    return _hints("confidence_bin", reviewed, correct, traffic, level)


def class_hints(reviewed: Sequence[int], correct: Sequence[int], traffic: Sequence[int], *,
                level: float = LEVEL) -> tuple[Hint, ...]:
    """Predicted classes, by the width of their precision's interval × their share of all predictions."""
    return _hints("predicted_class", reviewed, correct, traffic, level)


def reviews_needed(accuracy: float, reviews_per_day: int = 0, *, half_width: float = HALF_WIDTH,
                   level: float = LEVEL) -> ReviewsNeeded:
    """The fewest random reviews a day whose Wilson interval at `accuracy` is no wider than ± half_width."""
    if not 0.0 <= accuracy <= 1.0 or not 0.0 < half_width < 0.5:
        raise EstimateError("expected an accuracy from 0 to 1 and a half-width strictly between 0 and 0.5")

    def wide(n: int) -> bool:
        interval = proportion_interval(round(accuracy * n), n, level=level)
        return (interval.high - interval.low) / 2 > half_width

    low, high = 1, 2
    while wide(high):
        low, high = high, high * 2
    while low < high:                       # the first n that is narrow enough
        middle = (low + high) // 2
        low, high = (middle + 1, high) if wide(middle) else (low, middle)
    return ReviewsNeeded("wilson", SIMPLE, high, reviews_per_day, half_width)


def reviews_needed_stratified(reviewed: Sequence[int], correct: Sequence[int], unreviewed: Sequence[int], *,
                              half_width: float = HALF_WIDTH, level: float = LEVEL,
                              min_reviews: int = MIN_REVIEWS) -> ReviewsNeeded:
    """Reviews a day for a ± half_width post-stratified estimate of the unreviewed accuracy, at today's review mix.

    Uses the rate variance (no finite-population term), which falls as 1 / reviews; the counts are one day's.
    """
    n = int(np.sum(reviewed))
    estimate = post_stratified(reviewed, correct, unreviewed, min_reviews=min_reviews, level=level, finite=False)
    if not estimate.defined:
        return ReviewsNeeded("post_stratified", STRATIFIED, None, n, half_width, estimate.reason)
    current = (estimate.interval.high - estimate.interval.low) / 2
    if current == 0:
        return ReviewsNeeded("post_stratified", STRATIFIED, n, n, half_width)
    return ReviewsNeeded("post_stratified", STRATIFIED, max(1, math.ceil(n * (current / half_width) ** 2)), n,
                         half_width, None if current >= half_width else "already within the half-width")


def _hints(kind, reviewed, correct, traffic, level) -> tuple[Hint, ...]:
    r, c, t = (np.asarray(x, dtype=np.int64) for x in (reviewed, correct, traffic))
    if r.ndim != 1 or c.shape != r.shape or t.shape != r.shape:
        raise EstimateError(f"expected reviewed, correct and traffic counts of one length, got "
                            f"{r.shape}, {c.shape}, {t.shape}")
    total = t.sum()
    hints = []
    for i in range(len(r)):
        share = float(t[i] / total) if total else 0.0
        interval = proportion_interval(int(c[i]), int(r[i]), level=level)
        width = 1.0 if interval is None else interval.width
        hints.append(Hint(kind, i, int(r[i]), share, width, width * share))
    return tuple(sorted(hints, key=lambda h: (-h.score, h.index)))
