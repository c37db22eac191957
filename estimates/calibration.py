"""Top-label calibration from binned counts: reliability bins with Wilson intervals, ECE, MCE.

Bins are scikit-learn's `calibration_curve(..., strategy="uniform")` bins: edges
`np.linspace(0, 1, B + 1)`, a confidence assigned by `np.searchsorted(edges[1:-1], confidence)`, so a
confidence equal to an inner edge falls into the LOWER bin (0.05 is in bin 0, (0, 0.05]).
`clara.rollups.confidence_bin` (`int(confidence * B)`) puts it into the upper bin, and so disagrees
with scikit-learn on every inner edge (and on floats just below one that `* B` rounds up): the
calibration rollups must assign bins with `calibration_bin` (estimates.bins; from the document's float, exact
for any float) or `calibration_bin_micros` (exact integer arithmetic, the same bins for every
confidence with at most six decimals).

Per bin the rollups hold r_b (reviewed), c_b (correct) and s_b (sum of the reviewed confidences; in
micros, integers, so that $inc is exact and order-free). Then acc_b = c_b / r_b, conf_b = s_b / r_b,
ECE = Σ (r_b / n) |acc_b − conf_b|, MCE = max |acc_b − conf_b| over non-empty bins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from clara.rollups import CONFIDENCE_BINS
from estimates.bins import MICROS, bin_edges, calibration_bin, calibration_bin_micros  # noqa: F401 - re-exported
from estimates.intervals import proportion_interval
from estimates.results import LEVEL, EstimateError, Interval

ASSUMPTION = ("the reviewed predictions in each confidence bin are as often right as that bin's unreviewed "
              "ones (reviewers choose by confidence, not by whether the prediction looks right)")


@dataclasses.dataclass(frozen=True, slots=True)
class ReliabilityBin:
    index: int
    low: float                     # the bin's edges: (low, high], the first bin also holds 0
    high: float
    count: int                     # r_b
    correct: int                   # c_b
    accuracy: float | None         # c_b / r_b; None for an empty bin
    confidence: float | None       # s_b / r_b
    interval: Interval | None      # of the accuracy

    @property
    def gap(self) -> float | None:
        """accuracy − confidence: negative where the model is over-confident, positive where under-confident."""
        return None if self.count == 0 else self.accuracy - self.confidence


@dataclasses.dataclass(frozen=True, slots=True)
class Reliability:
    method: str
    assumption: str
    bins: tuple[ReliabilityBin, ...]   # every bin, empty ones included
    n: int
    ece: float | None                  # None when nothing was reviewed
    mce: float | None
    signed_gap: float | None           # Σ (r_b / n)(acc_b − conf_b): < 0 over-confident, > 0 under-confident
    direction: str | None              # "over-confident", "under-confident" or "calibrated"
    reason: str | None = None

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(prob_true, prob_pred) over the non-empty bins: what sklearn's calibration_curve returns."""
        full = [b for b in self.bins if b.count]
        return (np.array([b.accuracy for b in full], dtype=float), np.array([b.confidence for b in full], dtype=float))


def reliability(reviewed: Sequence[int], correct: Sequence[int], confidence_sum: Sequence[float], *,
                confidence_scale: float = 1.0, level: float = LEVEL, interval_method: str = "wilson",
                tolerance: float = 0.0) -> Reliability:
    """Reliability diagram, ECE and MCE from per-bin counts; `confidence_scale=1e6` when sums are in micros.

    `tolerance`: a |signed gap| at or below it is called "calibrated".
    """
    r, c, s = _bins(reviewed, correct, confidence_sum)
    s = s / confidence_scale
    edges = bin_edges(len(r))
    method = f"reliability_uniform_{len(r)}"
    bins = []
    for b in range(len(r)):
        count = int(r[b])
        if count == 0:
            bins.append(ReliabilityBin(b, edges[b], edges[b + 1], 0, 0, None, None, None))
            continue
        bins.append(ReliabilityBin(b, edges[b], edges[b + 1], count, int(c[b]), float(c[b] / count),
                                   float(s[b] / count), proportion_interval(int(c[b]), count, level=level,
                                                                            method=interval_method)))
    n = int(r.sum())
    if n == 0:
        return Reliability(method, ASSUMPTION, tuple(bins), 0, None, None, None, None, "no reviews")
    gaps = np.array([b.gap for b in bins if b.count])
    weights = np.array([b.count for b in bins if b.count]) / n
    signed = float(weights @ gaps)
    direction = ("calibrated" if abs(signed) <= tolerance else
                 "over-confident" if signed < 0 else "under-confident")
    return Reliability(method, ASSUMPTION, tuple(bins), n, float(weights @ np.abs(gaps)),
                       float(np.abs(gaps).max()), signed, direction)


def _bins(reviewed, correct, confidence_sum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.asarray(reviewed, dtype=np.int64)
    c = np.asarray(correct, dtype=np.int64)
    s = np.asarray(confidence_sum, dtype=np.float64)
    if r.ndim != 1 or len(r) == 0 or c.shape != r.shape or s.shape != r.shape:
        raise EstimateError(f"expected reviewed, correct and confidence sums per bin of one length, got "
                            f"{r.shape}, {c.shape}, {s.shape}")
    if (c < 0).any() or (c > r).any():
        raise EstimateError("expected 0 <= correct <= reviewed in every bin")
    if (s < 0).any():
        raise EstimateError("expected confidence sums of zero or more")
    return r, c, s
