"""Pure statistics from counts and histograms: no MongoDB, no configuration.

Every test compares a window (a sample of reviews) with a reference (another sample, or the training
set's class counts, which is a sample too), so class mixes and confidence histograms are compared with
scipy's chi-square test of homogeneity on the 2 x k table of counts; the effect size is the
Jensen-Shannon distance (base 2, from 0 for identical to 1 for disjoint distributions), and the
population stability index is reported beside it. Proportions (accuracy, recall) are compared with a
one-sided pooled two-proportion z-test: its z squared is the uncorrected chi-square of the 2 x 2 table.
An hour's number of predictions is compared with its usual number by an exact Poisson test each way.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2 as chi2_dist
from scipy.stats import chi2_contingency, norm, poisson

from clara.predictions import PredictionTotals
from clara.rollups import CONFIDENCE_BINS, Totals

PSI_FLOOR = 1e-4  # proportions below this are raised to it in the PSI, which is infinite for empty bins


@dataclasses.dataclass(frozen=True)
class DistributionTest:
    """Window against reference: chi-square of homogeneity, p-value, JS distance, PSI."""

    chi2: float
    dof: int
    p_value: float
    js_distance: float
    psi: float
    window_n: int
    reference_n: int


@dataclasses.dataclass(frozen=True)
class ProportionTest:
    """One-sided test that the window's proportion is below the reference's."""

    window: float
    reference: float
    drop: float          # reference - window
    z: float
    p_value: float       # P(Z >= z) under equal proportions
    window_n: int
    reference_n: int


@dataclasses.dataclass(frozen=True)
class VolumeTest:
    """An observed count of predictions against the usual count: an exact Poisson test each way."""

    observed: int
    expected: float
    ratio: float | None      # observed / expected; None when nothing is expected
    p_low: float             # P(X <= observed), X ~ Poisson(expected): how unlikely so few are
    p_high: float            # P(X >= observed): how unlikely so many are
    method: str = "exact Poisson test"
    assumptions: str = ("predictions arrive independently at the usual rate; real traffic varies more than "
                        "that, so p is small for modest changes and the ratio thresholds decide")


def compare_distributions(window: Sequence[int], reference: Sequence[float]) -> DistributionTest:
    """Chi-square test of homogeneity of two count vectors, plus JS distance and PSI of their proportions.

    Categories empty in both are dropped (they carry no information and break the expected counts).
    With fewer than two categories left, or an empty side, the samples cannot differ: p = 1.
    """
    observed = np.asarray(window, dtype=float)
    expected = np.asarray(reference, dtype=float)
    keep = (observed + expected) > 0
    observed, expected = observed[keep], expected[keep]
    n_w, n_r = int(round(observed.sum())), int(round(expected.sum()))
    if keep.sum() < 2 or n_w == 0 or n_r == 0:
        return DistributionTest(0.0, 0, 1.0, 0.0, 0.0, n_w, n_r)
    result = chi2_contingency(np.vstack([observed, expected]), correction=False)
    p, q = observed / observed.sum(), expected / expected.sum()
    return DistributionTest(float(result.statistic), int(result.dof), float(result.pvalue),
                            float(jensenshannon(p, q, base=2)), psi(p, q), n_w, n_r)


def psi(window: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index: sum of (w - r) ln(w / r) over categories, proportions floored."""
    w = np.maximum(window, PSI_FLOOR)
    r = np.maximum(reference, PSI_FLOOR)
    return float(np.sum((w - r) * np.log(w / r)))


def proportion_drop(window_hits: int, window_n: int, reference_hits: int, reference_n: int) -> ProportionTest:
    """Pooled two-proportion z-test, one-sided (H1: the window's proportion is lower)."""
    p_w, p_r = window_hits / window_n, reference_hits / reference_n
    pooled = (window_hits + reference_hits) / (window_n + reference_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / window_n + 1 / reference_n))
    if se == 0:  # every review right (or every one wrong) on both sides: no difference to test
        return ProportionTest(p_w, p_r, 0.0, 0.0, 1.0, window_n, reference_n)
    z = (p_r - p_w) / se
    return ProportionTest(p_w, p_r, p_r - p_w, z, float(norm.sf(z)), window_n, reference_n)


def predicted_counts(totals: Totals, n_classes: int) -> list[int]:
    """Reviews per predicted class (rejected-without-class reviews included: their prediction is known)."""
    counts = [totals.rejected.get(c, 0) for c in range(n_classes)]
    for (_, pred), n in totals.cells.items():
        if 0 <= pred < n_classes:
            counts[pred] += n
    return counts


def true_counts(totals: Totals, n_classes: int) -> list[int]:
    """Reviews per true class (rejected-without-class reviews have none and are left out)."""
    counts = [0] * n_classes
    for (truth, _), n in totals.cells.items():
        if 0 <= truth < n_classes:
            counts[truth] += n
    return counts


def confidence_counts(totals: Totals) -> list[int]:
    return [totals.confidence_hist.get(b, 0) for b in range(CONFIDENCE_BINS)]


def mean_confidence(totals: Totals) -> float | None:
    return totals.confidence_micros / 1_000_000 / totals.confidence_count if totals.confidence_count else None


def binned_ks(window: Sequence[int], reference: Sequence[int]) -> float:
    """Largest gap between the two empirical CDFs at the bin edges: the KS statistic of the binned data."""
    w, r = np.cumsum(window, dtype=float), np.cumsum(reference, dtype=float)
    if not w[-1] or not r[-1]:
        return 0.0
    return float(np.max(np.abs(w / w[-1] - r / r[-1])))


def accuracy_counts(totals: Totals) -> tuple[int, int]:
    """(right, reviewed): a review rejected without a class is wrong, as in clara.metrics."""
    right = sum(n for (t, p), n in totals.cells.items() if t == p)
    return right, sum(totals.cells.values()) + sum(totals.rejected.values())


def recall_counts(totals: Totals, cls: int) -> tuple[int, int]:
    """(found, support) of one class: reviews whose true class is `cls`, and those predicted as it."""
    support = sum(n for (t, _), n in totals.cells.items() if t == cls)
    return totals.cells.get((cls, cls), 0), support


def prediction_class_counts(totals: PredictionTotals, n_classes: int) -> list[int]:
    """All predictions per predicted class (bad documents have no class and are left out)."""
    return [totals.classes.get(c, 0) for c in range(n_classes)]


def prediction_confidence_counts(totals: PredictionTotals) -> list[int]:
    """All predictions per confidence bin, every predicted class together (those without a confidence left out)."""
    hist = totals.confidence_hist()
    return [hist.get(b, 0) for b in range(CONFIDENCE_BINS)]


def binned_mean(counts: Sequence[int]) -> float | None:
    """The mean of a binned histogram of values in 0..1, each value taken at its bin's centre (within half a
    bin width, 0.025, of the exact mean)."""
    n = sum(counts)
    return sum((b + 0.5) / len(counts) * c for b, c in enumerate(counts)) / n if n else None


def usual_count(counts: Sequence[int]) -> float | None:
    """The usual number of an hour: the median of the same hour in earlier weeks (an outage or a spike in one of
    them moves it little); None without any."""
    return float(statistics.median(counts)) if counts else None


def volume_test(observed: int, expected: float) -> VolumeTest:
    """Exact Poisson tail probabilities of `observed` predictions when `expected` were usual (scipy.stats.poisson)."""
    if expected <= 0:
        return VolumeTest(observed, expected, None, 1.0, 0.0 if observed > 0 else 1.0)
    return VolumeTest(observed, expected, observed / expected, float(poisson.cdf(observed, expected)),
                      float(poisson.sf(observed - 1, expected)))


@dataclasses.dataclass(frozen=True)
class BinnedAccuracyTest:
    """Per confidence bin, the window's accuracy against the reference's: Pearson chi-squares summed over bins."""

    chi2: float
    dof: int                 # bins compared (each with enough reviews on both sides and not all right or all wrong)
    p_value: float
    bins: tuple[int, ...]    # which bins were compared
    method: str = "two-proportion chi-square per confidence bin, summed (chi-square with one degree per bin)"
    assumptions: str = ("reviews are independent draws within each bin (binomial), the bins' tests independent; "
                        "it compares the reliability curve P(right | confidence bin), as reviewed")


def binned_accuracy_test(window_reviewed: Sequence[int], window_correct: Sequence[int],
                         reference_reviewed: Sequence[int], reference_correct: Sequence[int],
                         min_reviews: int) -> BinnedAccuracyTest:
    """H0: in every bin the window is as often right as the reference. Each bin with at least `min_reviews` on both
    sides adds z² of the pooled two-proportion test (the uncorrected chi-square of its 2 x 2 table); a bin right
    (or wrong) every time on both sides carries no information and is left out. No bin left: p = 1."""
    chi2, used = 0.0, []
    for b, (n_w, k_w, n_r, k_r) in enumerate(zip(window_reviewed, window_correct, reference_reviewed,
                                                   reference_correct)):
        if n_w < min_reviews or n_r < min_reviews:
            continue
        pooled = (k_w + k_r) / (n_w + n_r)
        if pooled in (0.0, 1.0):
            continue
        chi2 += (k_w / n_w - k_r / n_r) ** 2 / (pooled * (1 - pooled) * (1 / n_w + 1 / n_r))
        used.append(b)
    p = float(chi2_dist.sf(chi2, len(used))) if used else 1.0
    return BinnedAccuracyTest(float(chi2), len(used), p, tuple(used))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the i-th smallest times (m - i + 1), made monotone, at most 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
