"""scikit-learn's calibration bins, assigned exactly: what the consumer files each review's confidence under.

Kept apart from estimates.calibration (which needs scipy for its intervals) so that counting a review
imports nothing heavy. See estimates.calibration for why these bins and not `int(confidence * B)`.
"""

from __future__ import annotations

import bisect
from functools import lru_cache

import numpy as np

from clara.rollups import CONFIDENCE_BINS
from estimates.results import EstimateError

MICROS = 1_000_000


@lru_cache(maxsize=None)
def bin_edges(bins: int = CONFIDENCE_BINS) -> tuple[float, ...]:
    """scikit-learn's uniform edges, the same floats: `np.linspace(0, 1, bins + 1)`."""
    if bins < 1:
        raise EstimateError("confidence bins: expected at least 1")
    return tuple(float(edge) for edge in np.linspace(0.0, 1.0, bins + 1))


def calibration_bin(confidence: float, bins: int = CONFIDENCE_BINS) -> int:
    """The bin scikit-learn's calibration_curve puts `confidence` in (0..1; an inner edge goes to the lower bin)."""
    if not 0.0 <= confidence <= 1.0:
        raise EstimateError(f"confidence {confidence!r}: expected a number from 0 to 1")
    return bisect.bisect_left(bin_edges(bins), confidence, 1, bins) - 1


def calibration_bin_micros(micros: int, bins: int = CONFIDENCE_BINS) -> int:
    """`calibration_bin(micros / 1e6)` in integers: bin b holds (b / B, (b + 1) / B], bin 0 also holds 0."""
    if not 0 <= micros <= MICROS:
        raise EstimateError(f"confidence {micros!r} micros: expected 0 to {MICROS}")
    return max(0, -(-micros * bins // MICROS) - 1)
