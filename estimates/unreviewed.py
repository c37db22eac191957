"""Accuracy of the predictions nobody has reviewed: post-stratified (ours), AC, DoC, ATC-MC, and all traffic.

Inputs are per confidence bin (`calibration.calibration_bin`): r_b reviewed, c_b correct, u_b
unreviewed, and where a method needs them, confidence sums. Only post-stratification uses the
target's own reviews; AC, DoC and ATC are label-free and lean on a reference period instead.

Post-stratified: Â = Σ (u_g / U) acc_g over strata g (adjacent bins merged until r_g ≥ m). Its
variance, for the accuracy of these U predictions (not a long-run rate), is
Σ (u_g / U)² p_g (1 − p_g) (1 / r_g + 1 / u_g): the reviews' sampling error plus the unreviewed
predictions' own binomial variation (`finite=False` drops the second term: ESTIMATES.md's formula for
the rate). In the variance only, p_g is (c_g + ½) / (r_g + 1), the mean under Jeffreys' prior, so that a
stratum whose reviews were all right still counts as uncertain (with p_g itself the interval covered
89-95% of days in bench/estimates_bench.py, with (c + 1) / (r + 2) 98%, with this 97.5%). The interval is
the normal one, clipped to [0, 1].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri

from estimates.calibration import bin_edges
from estimates.results import LEVEL, Estimate, EstimateError, Interval, undefined

MIN_REVIEWS = 30
POST_STRATIFIED = ("reviewed and unreviewed predictions in the same confidence bin are equally often right "
                   "(reviews are missing at random given the confidence)")
AVERAGE_CONFIDENCE = "the model is calibrated on the target: its mean confidence is its accuracy"
DOC = ("the model's calibration error is the same on the target as on the reference: accuracy moves "
       "by as much as mean confidence does")
ATC = ("the share of predictions whose confidence clears the reference threshold tracks accuracy: "
       "the threshold that separated right from wrong on the reference still does on the target")
ATC_WEIGHTED = ATC + "; reference reviews are weighted by u_b / r_b to stand for the reference's unreviewed traffic"
COMBINED = "realized accuracy where reviewed; for the rest, " + POST_STRATIFIED


@dataclasses.dataclass(frozen=True, slots=True)
class Stratum:
    first: int         # bins first..last, merged
    last: int
    reviewed: int
    correct: int
    unreviewed: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.reviewed


def strata(reviewed: Sequence[int], correct: Sequence[int], unreviewed: Sequence[int],
           min_reviews: int = MIN_REVIEWS) -> list[Stratum]:
    """Adjacent bins merged, lowest confidence first, until each group has ≥ min_reviews reviews.

    A short last group joins the one before it. Empty when fewer than min_reviews were reviewed in all.
    """
    r, c, u = _arrays(reviewed, correct, unreviewed)
    if min_reviews < 1:
        raise EstimateError("minimum reviews per bin: expected at least 1")
    groups: list[list[int]] = []
    start, acc = 0, [0, 0, 0]
    for b in range(len(r)):
        acc = [acc[0] + int(r[b]), acc[1] + int(c[b]), acc[2] + int(u[b])]
        if acc[0] >= min_reviews:
            groups.append([start, b, *acc])
            start, acc = b + 1, [0, 0, 0]
    if start < len(r) and groups:
        last = groups[-1]
        groups[-1] = [last[0], len(r) - 1, last[2] + acc[0], last[3] + acc[1], last[4] + acc[2]]
    return [Stratum(*group) for group in groups]


def post_stratified(reviewed: Sequence[int], correct: Sequence[int], unreviewed: Sequence[int], *,
                    min_reviews: int = MIN_REVIEWS, level: float = LEVEL, finite: bool = True) -> Estimate:
    """Accuracy of the unreviewed predictions, reweighting each bin's reviewed accuracy by its unreviewed count."""
    method = "post_stratified"
    groups = strata(reviewed, correct, unreviewed, min_reviews)
    n = int(np.sum(reviewed))
    total = int(np.sum(unreviewed))
    if not groups:
        return undefined(method, POST_STRATIFIED, n, f"too few reviews ({n} < {min_reviews})")
    if total == 0:
        return undefined(method, POST_STRATIFIED, n, "every prediction is reviewed: nothing to estimate")
    value = variance = 0.0
    for g in groups:
        share = g.unreviewed / total
        value += share * g.accuracy
        if g.unreviewed:
            smoothed = (g.correct + 0.5) / (g.reviewed + 1)
            variance += share ** 2 * smoothed * (1 - smoothed) * (1 / g.reviewed + (1 / g.unreviewed if finite else 0))
    half = float(ndtri(0.5 + level / 2)) * math.sqrt(variance)
    interval = Interval(max(0.0, value - half), min(1.0, value + half), level, "delta")
    notes = tuple(f"confidence bins {g.first}-{g.last} merged: {g.reviewed} reviews" for g in groups
                  if g.first != g.last)
    return Estimate(method, POST_STRATIFIED, value, interval, n, notes=notes)


def average_confidence(count: Sequence[int], confidence_sum: Sequence[float] | None = None, *,
                       confidence_scale: float = 1.0) -> Estimate:
    """AC: the target's mean confidence. Without sums, the bins' midpoints stand in (said in the notes)."""
    counts = np.asarray(count, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return undefined("average_confidence", AVERAGE_CONFIDENCE, 0, "no target predictions")
    if confidence_sum is None:
        edges = np.array(bin_edges(len(counts)))
        value, notes = float(counts @ ((edges[:-1] + edges[1:]) / 2) / total), ("bin midpoints for confidences",)
    else:
        value, notes = float(np.sum(confidence_sum) / confidence_scale / total), ()
    return Estimate("average_confidence", AVERAGE_CONFIDENCE, value, None, 0, notes=notes)


def difference_of_confidences(reference_accuracy: float, reference_confidence: float, target_confidence: float,
                              *, n: int) -> Estimate:
    """DoC (Guillory et al. 2021): acc_ref − (meanconf_ref − meanconf_target); n: the reference's reviews."""
    value = reference_accuracy - (reference_confidence - target_confidence)
    return Estimate("doc", DOC, min(1.0, max(0.0, value)), None, n)


def reference_summary(reviewed: Sequence[int], correct: Sequence[int], confidence_sum: Sequence[float],
                      unreviewed: Sequence[int] | None = None, *, confidence_scale: float = 1.0,
                      min_reviews: int = MIN_REVIEWS) -> tuple[float, float] | None:
    """(accuracy, mean confidence) of a reference; with `unreviewed`, of its unreviewed traffic (u_b / r_b weights)."""
    r, c, _ = _arrays(reviewed, correct, reviewed)
    s = np.asarray(confidence_sum, dtype=np.float64) / confidence_scale
    weights = np.ones(len(r)) if unreviewed is None else _weights(r, c, unreviewed, min_reviews)
    if weights is None or (weights * r).sum() == 0:
        return None
    mass = (weights * r).sum()
    return float((weights * c).sum() / mass), float((weights * s).sum() / mass)


def atc(reference_reviewed: Sequence[int], reference_correct: Sequence[int], target_count: Sequence[int], *,
        reference_unreviewed: Sequence[int] | None = None, min_reviews: int = MIN_REVIEWS) -> Estimate:
    """ATC-MC (Garg et al. 2022) on binned confidences, interpolating linearly within a bin.

    The threshold t puts the reference's error rate below it; the estimate is the target's share at or
    above t. With `reference_unreviewed`, each reference bin's reviews count u_b / r_b (over merged
    strata), which undoes the reviewers' preference for some confidences.
    """
    r, c, t = _arrays(reference_reviewed, reference_correct, target_count)
    weighted = reference_unreviewed is not None
    method, assumption = ("atc_weighted", ATC_WEIGHTED) if weighted else ("atc", ATC)
    n = int(r.sum())
    weights = _weights(r, c, reference_unreviewed, min_reviews) if weighted else np.ones(len(r))
    if n == 0 or weights is None:
        return undefined(method, assumption, n, f"too few reference reviews ({n})")
    if t.sum() == 0:
        return undefined(method, assumption, n, "no target predictions")
    mass = weights * r
    error = 1.0 - (weights * c).sum() / mass.sum()
    threshold = threshold_at(mass, error)
    value = 1.0 - share_below(t, threshold)
    return Estimate(method, assumption, float(value), None, n, notes=(f"threshold {threshold:.4f}",))


def threshold_at(histogram: np.ndarray, share: float) -> float:
    """The lowest confidence below which `share` of a binned histogram lies (uniform within a bin)."""
    edges = np.array(bin_edges(len(histogram)))
    cdf = np.concatenate([[0.0], np.cumsum(histogram)]) / np.sum(histogram)
    b = max(0, int(np.searchsorted(cdf, share, side="left")) - 1)
    while b < len(histogram) - 1 and histogram[b] == 0:   # share 0: the first non-empty bin's lower edge
        b += 1
    inside = (share - cdf[b]) / (cdf[b + 1] - cdf[b])
    return float(edges[b] + min(1.0, max(0.0, inside)) * (edges[b + 1] - edges[b]))


def share_below(histogram: np.ndarray, threshold: float) -> float:
    """The share of a binned histogram below `threshold` (uniform within a bin)."""
    edges = np.array(bin_edges(len(histogram)))
    cdf = np.concatenate([[0.0], np.cumsum(histogram)]) / np.sum(histogram)
    return float(np.interp(threshold, edges, cdf))


def combined_accuracy(reviewed: int, correct: int, unreviewed: int, unreviewed_estimate: Estimate) -> Estimate:
    """All traffic: the reviewed part as counted, the rest as estimated; the interval is the estimate's, scaled."""
    method = f"combined_{unreviewed_estimate.method}"
    total = reviewed + unreviewed
    if total == 0:
        return undefined(method, COMBINED, 0, "no predictions")
    if unreviewed == 0:
        return Estimate(method, COMBINED, correct / reviewed, Interval(correct / reviewed, correct / reviewed,
                                                                       LEVEL, "exact"), reviewed)
    if not unreviewed_estimate.defined:
        return undefined(method, COMBINED, reviewed, f"unreviewed part: {unreviewed_estimate.reason}")
    value = (correct + unreviewed * unreviewed_estimate.value) / total
    interval = unreviewed_estimate.interval   # AC, DoC and ATC carry none: neither does their combination
    if interval is not None:
        interval = Interval((correct + unreviewed * interval.low) / total, (correct + unreviewed * interval.high) / total,
                            interval.level, interval.method)
    return Estimate(method, COMBINED, value, interval, reviewed, notes=unreviewed_estimate.notes)


def _weights(r: np.ndarray, c: np.ndarray, unreviewed, min_reviews: int) -> np.ndarray | None:
    """u_g / r_g for every bin of each stratum g; None when there are too few reviews to form one."""
    groups = strata(r, c, unreviewed, min_reviews)
    if not groups:
        return None
    weights = np.zeros(len(r))
    for g in groups:
        weights[g.first:g.last + 1] = g.unreviewed / g.reviewed
    return weights


def _arrays(reviewed, correct, unreviewed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, c, u = (np.asarray(x, dtype=np.int64) for x in (reviewed, correct, unreviewed))
    if r.ndim != 1 or len(r) == 0 or c.shape != r.shape or u.shape != r.shape:
        raise EstimateError(f"expected per-bin counts of one length, got {r.shape}, {c.shape}, {u.shape}")
    if (c < 0).any() or (c > r).any() or (u < 0).any():
        raise EstimateError("expected 0 <= correct <= reviewed and unreviewed >= 0 in every bin")
    return r, c, u
