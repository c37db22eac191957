"""Intervals for proportions (Wilson, Clopper-Pearson) and a seeded bootstrap for macro and weighted F1.

Proportions are scipy's: `binomtest(k, n).proportion_ci(level, method)`. Constructing a `binomtest`
also computes its p-value, which costs ~2.5 ms and is not needed here, so the Wilson path calls the
function `proportion_ci` itself delegates to (`_binom_wilson_conf_int`, ~4 µs); a test pins it to the
public call bit for bit, and the public call is the fallback should that name go. Clopper-Pearson
("exact") always goes through the public call (~8 ms: scipy finds its bounds by root search).

F1: the confusion cells (plus reviews rejected without a class) are drawn `draws` times from
multinomial(n, cells / n) with a fixed seed; each draw's F1 is scikit-learn's formula with
`labels=range(K)` and `zero_division=nan`, evaluated for all draws at once in numpy (a test checks it
equals `sklearn.metrics.f1_score` with the cells as sample weights, bit for bit); the interval is the
percentiles. The point estimate is the same formula on the observed cells (scikit-learn's call alone
costs ~10 ms; `sklearn_f1` is kept as the oracle). Cost is numpy's multinomial draws: ~1 ms for a day's
~1000 reviews, ~10 ms for 7000 (7 classes, 1000 draws); same counts and seed give the same interval, so
a caller can cache past days.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import f1_score

from estimates.results import LEVEL, Estimate, EstimateError, Interval, undefined

try:
    from scipy.stats._binomtest import _binom_wilson_conf_int
except ImportError:  # pragma: no cover - a scipy without it: the public call does the same
    _binom_wilson_conf_int = None

PROPORTION_METHODS = ("wilson", "exact")
F1_AVERAGES = ("macro", "weighted")
BINOMIAL = "the reviews are independent draws from the predictions they stand for (binomial)"
BOOTSTRAP_F1 = ("the reviews are independent draws from the predictions they stand for "
                "(multinomial over the confusion cells)")
REJECTED_NOTE = "reviews rejected without a class count against the predicted class's precision only"


def proportion_interval(k: int, n: int, *, level: float = LEVEL, method: str = "wilson") -> Interval | None:
    """scipy's interval for k successes in n trials; None when n is 0 (nothing to rest on)."""
    k, n = _counts(k, n)
    if method not in PROPORTION_METHODS:
        raise EstimateError(f"interval method {method!r}: expected one of {', '.join(PROPORTION_METHODS)}")
    if not 0.0 < level < 1.0:
        raise EstimateError(f"interval level {level!r}: expected a number strictly between 0 and 1")
    if n == 0:
        return None
    if method == "wilson" and _binom_wilson_conf_int is not None:
        low, high = _binom_wilson_conf_int(k, n, level, "two-sided", False)
    else:
        ci = binomtest(k, n).proportion_ci(level, method=method)
        low, high = ci.low, ci.high
    return Interval(float(low), float(high), level, method)


def proportion(k: int, n: int, *, level: float = LEVEL, method: str = "wilson") -> Estimate:
    """k / n with its interval; undefined (value None, a reason) when n is 0."""
    k, n = _counts(k, n)
    interval = proportion_interval(k, n, level=level, method=method)
    if interval is None:
        return undefined(method, BINOMIAL, 0, "no reviews")
    return Estimate(method, BINOMIAL, k / n, interval, n)


def proportions(k: Sequence[int], n: Sequence[int], *, level: float = LEVEL,
                method: str = "wilson") -> list[Estimate]:
    """`proportion` of each pair (the days of a range, the classes of a day)."""
    if len(k) != len(n):
        raise EstimateError(f"expected as many successes as trials, got {len(k)} and {len(n)}")
    return [proportion(int(a), int(b), level=level, method=method) for a, b in zip(k, n)]


def f1_bootstrap(confusion, *, rejected=None, average: str = "macro", draws: int = 1000, seed: int = 0,
                 level: float = LEVEL) -> Estimate:
    """Macro or weighted F1 of reviewed predictions with a seeded percentile-bootstrap interval.

    `confusion[t][p]`: reviews of true class t predicted p; `rejected[p]`: reviews of predicted class
    p rejected without a class (legacy `false`). Same counts and seed, same interval.
    """
    if average not in F1_AVERAGES:
        raise EstimateError(f"F1 average {average!r}: expected one of {', '.join(F1_AVERAGES)}")
    if draws < 1:
        raise EstimateError("bootstrap draws: expected at least 1")
    cells = _cells(confusion, rejected)
    n = int(cells.sum())
    method = f"bootstrap_f1_{average}"
    if n == 0:
        return undefined(method, BOOTSTRAP_F1, 0, "no reviews")
    point = float(f1_scores(cells)[average])
    if np.isnan(point):
        return undefined(method, BOOTSTRAP_F1, n, "F1 is undefined for every class")
    rng = np.random.default_rng(seed)
    sample = rng.multinomial(n, cells.ravel() / n, size=draws).reshape((draws, *cells.shape))
    scores = f1_scores(sample)[average]
    scores = scores[~np.isnan(scores)]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(scores, [tail, 100 - tail])
    notes = (REJECTED_NOTE,) if cells[-1].any() else ()
    return Estimate(method, BOOTSTRAP_F1, point, Interval(float(low), float(high), level, "bootstrap"), n,
                    notes=notes)


def f1_scores(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Macro and weighted F1 of stacked cell counts, shape (..., K + 1, K): scikit-learn's formulas.

    The last row holds the rejected-without-class reviews (predicted p, true class unknown). Per class
    F1 = 2 tp / (support + predicted), NaN where both are 0; macro is the mean over the non-NaN classes,
    weighted the support-weighted mean over them (plain mean if their support is all 0), as
    scikit-learn's `_nanaverage` does.
    """
    cells = np.asarray(cells, dtype=np.float64)
    k = cells.shape[-1]
    tp = np.diagonal(cells[..., :k, :], axis1=-2, axis2=-1)
    support = cells[..., :k, :].sum(axis=-1)
    predicted = cells.sum(axis=-2)
    denominator = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
        defined = ~np.isnan(f1)
        count = defined.sum(axis=-1)
        macro = np.where(count > 0, np.where(defined, f1, 0).sum(axis=-1) / count, np.nan)
        weights = np.where(defined, support, 0)
        total = weights.sum(axis=-1)
        weighted = np.where(total > 0, (np.where(defined, f1, 0) * weights).sum(axis=-1) / total, macro)
    return {"macro": macro, "weighted": weighted}


def sklearn_f1(cells: np.ndarray, average: str) -> float:
    """scikit-learn's F1 of one (K + 1, K) cell array, each cell a (true, predicted) pair weighted by its count."""
    k = cells.shape[-1]
    true, pred = np.nonzero(cells)
    weight = cells[true, pred]
    if len(weight) == 0:
        return float("nan")
    true = np.where(true == k, -1, true)   # the rejected row: outside `labels`, like clara.metrics.REJECTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(f1_score(true, pred, labels=list(range(k)), average=average, sample_weight=weight,
                              zero_division=np.nan))


def _cells(confusion, rejected) -> np.ndarray:
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise EstimateError(f"confusion: expected a square K x K matrix of counts, got shape {matrix.shape}")
    k = matrix.shape[0]
    extra = np.zeros(k, dtype=np.int64) if rejected is None else np.asarray(rejected, dtype=np.int64)
    if extra.shape != (k,):
        raise EstimateError(f"rejected: expected one count per predicted class ({k}), got shape {extra.shape}")
    cells = np.vstack([matrix, extra])
    if (cells < 0).any():
        raise EstimateError("confusion: expected counts of zero or more")
    return cells


def _counts(k, n) -> tuple[int, int]:
    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= n:
        raise EstimateError(f"expected 0 <= successes <= trials, got {k} of {n}")
    return k, n
