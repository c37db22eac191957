"""Intervals against scipy's binomtest and F1 against scikit-learn, plus their properties on seeded random counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from estimates.intervals import f1_bootstrap, f1_scores, proportion, proportion_interval, proportions, sklearn_f1
from estimates.results import EstimateError


@pytest.mark.parametrize("method", ["wilson", "exact"])
@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 7), (3, 10), (10, 10), (499, 1000), (1, 100000)])
def test_proportion_interval_is_scipys_binomtest(k, n, method):
    expected = binomtest(k, n).proportion_ci(0.95, method=method)
    interval = proportion_interval(k, n, method=method)
    assert (interval.low, interval.high) == (expected.low, expected.high)
    assert interval.method == method and interval.level == 0.95


def test_wilson_fast_path_is_bit_identical_on_a_grid():
    for n in range(1, 40):
        for k in range(n + 1):
            expected = binomtest(k, n).proportion_ci(0.9, method="wilson")
            interval = proportion_interval(k, n, level=0.9)
            assert (interval.low, interval.high) == (expected.low, expected.high)


def test_no_reviews_is_undefined_not_zero():
    estimate = proportion(0, 0)
    assert estimate.value is None and estimate.interval is None and estimate.reason == "no reviews"
    assert not estimate.defined and proportion_interval(0, 0) is None


@pytest.mark.parametrize("k,n", [(-1, 3), (4, 3), (0, -1)])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(EstimateError):
        proportion(k, n)


def test_unknown_method_is_refused():
    with pytest.raises(EstimateError, match="expected one of wilson, exact"):
        proportion(1, 2, method="wald")


def test_intervals_contain_the_estimate_and_shrink_with_n():
    rng = np.random.default_rng(13)
    for i in range(200):
        n = int(rng.integers(1, 2000))
        k = int(rng.binomial(n, rng.random()))
        for method in ("wilson", "exact") if i % 10 == 0 else ("wilson",):
            small, large = proportion(k, n, method=method), proportion(4 * k, 4 * n, method=method)
            assert small.interval.contains(small.value)
            assert large.interval.width < small.interval.width


def test_proportions_of_many():
    estimates = proportions([1, 0, 5], [2, 0, 5])
    assert [e.value for e in estimates] == [0.5, None, 1.0]


def _cells(rng, k):
    confusion = rng.integers(0, 6, size=(k, k)) * (rng.random((k, k)) < 0.6)
    rejected = rng.integers(0, 3, size=k) * (rng.random(k) < 0.3)
    return np.vstack([confusion, rejected])


def test_vectorised_f1_is_sklearns_on_every_draw():
    rng = np.random.default_rng(1)
    for _ in range(80):
        k = int(rng.integers(1, 6))
        cells = _cells(rng, k)
        if not cells.sum():
            continue
        true, pred = np.nonzero(cells)
        weight = cells[true, pred]
        true = np.where(true == k, -1, true)
        for average in ("macro", "weighted"):
            expected = f1_score(true, pred, labels=list(range(k)), average=average, sample_weight=weight,
                                zero_division=np.nan)
            got = f1_scores(cells)[average]
            assert (np.isnan(expected) and np.isnan(got)) or got == expected


def test_f1_bootstrap_is_seeded_and_contains_the_point():
    confusion = [[80, 5, 3], [7, 60, 4], [2, 9, 30]]
    first = f1_bootstrap(confusion, seed=7)
    again = f1_bootstrap(confusion, seed=7)
    assert first == again
    assert first.value == sklearn_f1(np.vstack([confusion, [0, 0, 0]]), "macro")
    assert first.interval.contains(first.value) and first.interval.method == "bootstrap"
    assert f1_bootstrap(confusion, seed=8).interval != first.interval
    weighted = f1_bootstrap(confusion, average="weighted", rejected=[1, 0, 2])
    assert weighted.method == "bootstrap_f1_weighted" and weighted.notes


def test_f1_bootstrap_shrinks_with_more_reviews_and_is_undefined_without():
    confusion = np.array([[40, 5], [6, 30]])
    assert f1_bootstrap(confusion * 16).interval.width < f1_bootstrap(confusion).interval.width
    assert f1_bootstrap([[0, 0], [0, 0]]).reason == "no reviews"
    with pytest.raises(EstimateError):
        f1_bootstrap([[1, 2, 3]])
