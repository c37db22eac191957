"""Each detector's statistic against scipy (and plain numpy) on the same data."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, chisquare, ks_2samp

from clara.rollups import Totals, confidence_bin
from drift import detectors


def test_class_mix_matches_scipy_chi_square_of_homogeneity_and_js_distance():
    window, reference = [50, 120, 0, 30, 0, 80, 20], [1200, 3400, 2100, 2900, 0, 2600, 1500]
    test = detectors.compare_distributions(window, reference)
    kept = np.array([[50, 120, 0, 30, 80, 20], [1200, 3400, 2100, 2900, 2600, 1500]])
    expected = chi2_contingency(kept, correction=False)
    assert test.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert test.dof == expected.dof == 5
    p, q = kept[0] / kept[0].sum(), kept[1] / kept[1].sum()
    assert test.js_distance == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    # By hand: sqrt of the mean KL divergence to the midpoint, in bits.
    m = (p + q) / 2
    kl = lambda a, b: sum(x * math.log2(x / y) for x, y in zip(a, b) if x)  # noqa: E731
    assert test.js_distance == pytest.approx(math.sqrt((kl(p, m) + kl(q, m)) / 2), rel=1e-9)
    assert test.window_n == 300 and test.reference_n == 13700


def test_identical_mixes_show_no_drift_and_degenerate_inputs_give_p_one():
    same = detectors.compare_distributions([10, 20, 30], [100, 200, 300])
    assert same.chi2 == pytest.approx(0.0, abs=1e-12) and same.p_value == pytest.approx(1.0)
    assert same.js_distance == pytest.approx(0.0, abs=1e-7) and same.psi == pytest.approx(0.0, abs=1e-12)
    assert detectors.compare_distributions([0, 0, 0], [1, 2, 3]).p_value == 1.0
    assert detectors.compare_distributions([5, 0, 0], [7, 0, 0]).p_value == 1.0


def test_psi_is_the_symmetric_kl_sum():
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.25, 0.25, 0.5])
    assert detectors.psi(p, q) == pytest.approx(float(np.sum((p - q) * np.log(p / q))))


def test_two_proportion_z_squared_is_the_uncorrected_chi_square_of_the_2x2_table():
    test = detectors.proportion_drop(1380, 2000, 9600, 10000)
    table = np.array([[1380, 620], [9600, 400]])
    expected = chi2_contingency(table, correction=False)
    assert test.z ** 2 == pytest.approx(expected.statistic, rel=1e-9)
    assert test.z > 0 and test.p_value == pytest.approx(expected.pvalue / 2, rel=1e-6, abs=1e-300)
    assert test.window == pytest.approx(0.69) and test.reference == pytest.approx(0.96)
    assert test.drop == pytest.approx(0.27)
    better = detectors.proportion_drop(960, 1000, 900, 1000)
    assert better.z < 0 and better.p_value > 0.5
    assert detectors.proportion_drop(10, 10, 50, 50).p_value == 1.0


def test_binned_confidence_test_matches_scipy_on_the_same_bins():
    rng = np.random.default_rng(3)
    before, after = rng.beta(17, 3, 4000), rng.beta(8, 5, 1500)
    hist = lambda values: Counter(confidence_bin(v) for v in values)  # noqa: E731
    window, reference = Totals(), Totals()
    window.confidence_hist.update(hist(after))
    reference.confidence_hist.update(hist(before))
    w, r = detectors.confidence_counts(window), detectors.confidence_counts(reference)
    test = detectors.compare_distributions(w, r)
    table = np.array([w, r])
    table = table[:, table.sum(axis=0) > 0]
    assert test.chi2 == pytest.approx(chi2_contingency(table, correction=False).statistic, rel=1e-12)
    # The binned KS statistic is the largest CDF gap at bin edges: a lower bound of scipy's exact D, and close.
    exact = ks_2samp(after, before).statistic
    assert detectors.binned_ks(w, r) <= exact + 1e-12
    assert detectors.binned_ks(w, r) == pytest.approx(exact, abs=0.05)


def test_counts_from_totals():
    totals = Totals()
    totals.add_doc({"reviews": 10, "cells": {"0_0": 4, "1_0": 2, "1_1": 1, "2_1": 1}, "rejected": {"2": 2},
                    "confidence_count": 2, "confidence_micros": 1_500_000})
    assert detectors.predicted_counts(totals, 3) == [6, 2, 2]
    assert detectors.true_counts(totals, 3) == [4, 3, 1]
    assert detectors.accuracy_counts(totals) == (5, 10)
    assert detectors.recall_counts(totals, 1) == (1, 3)
    assert detectors.mean_confidence(totals) == 0.75


def test_goodness_of_fit_and_homogeneity_agree_when_the_reference_is_huge():
    # Against a training set of millions the homogeneity test tends to scipy's one-sample chi-square.
    window = [90, 210, 150, 50]
    proportions = np.array([0.2, 0.4, 0.3, 0.1])
    test = detectors.compare_distributions(window, list(proportions * 10**9))
    assert test.chi2 == pytest.approx(chisquare(window, proportions * sum(window)).statistic, rel=1e-5)


@pytest.mark.parametrize("observed, expected", [(0, 40.0), (7, 30.0), (55, 50.0), (300, 100.0), (3, 2.5)])
def test_volume_test_is_the_exact_poisson_tail_each_way(observed, expected):
    test = detectors.volume_test(observed, expected)
    pmf = [math.exp(k * math.log(expected) - expected - math.lgamma(k + 1)) for k in range(observed + 1)]
    assert test.p_low == pytest.approx(sum(pmf), rel=1e-9, abs=1e-300)              # P(X <= observed)
    assert test.p_high == pytest.approx(1 - sum(pmf[:-1]), rel=1e-9, abs=1e-12)     # P(X >= observed)
    assert test.ratio == observed / expected and test.method == "exact Poisson test"


def test_volume_test_without_anything_usual_and_the_usual_count_is_a_median():
    assert detectors.volume_test(0, 0.0).p_high == 1.0 and detectors.volume_test(5, 0.0).p_high == 0.0
    assert detectors.volume_test(5, 0.0).ratio is None
    assert detectors.usual_count([100, 3, 98, 104]) == 99.0 and detectors.usual_count([]) is None


def test_binned_mean_is_within_half_a_bin_of_the_exact_mean():
    values = np.random.default_rng(3).beta(8, 2, size=5000)
    counts = Counter(confidence_bin(v) for v in values)
    binned = detectors.binned_mean([counts.get(b, 0) for b in range(20)])
    assert abs(binned - values.mean()) <= 0.025
    assert binned == pytest.approx(float(np.mean([(confidence_bin(v) + 0.5) / 20 for v in values])), rel=1e-12)
    assert detectors.binned_mean([0] * 20) is None


def test_binned_accuracy_test_sums_scipys_2x2_chi_squares_over_the_bins_compared():
    from scipy.stats import chi2 as chi2_dist

    window_n, window_k = [5, 40, 100, 300, 50], [2, 20, 70, 280, 50]
    reference_n, reference_k = [50, 400, 1000, 3000, 500], [30, 200, 800, 2850, 500]
    test = detectors.binned_accuracy_test(window_n, window_k, reference_n, reference_k, min_reviews=30)
    # bin 0: too few reviews in the window; bin 4: every review right on both sides (no information)
    assert test.bins == (1, 2, 3) and test.dof == 3
    tables = [np.array([[k_w, n_w - k_w], [k_r, n_r - k_r]]) for n_w, k_w, n_r, k_r in
              zip(window_n[1:4], window_k[1:4], reference_n[1:4], reference_k[1:4])]
    expected = sum(chi2_contingency(t, correction=False).statistic for t in tables)
    assert test.chi2 == pytest.approx(expected, rel=1e-12)
    assert test.p_value == pytest.approx(chi2_dist.sf(expected, 3), rel=1e-9)
    same = detectors.binned_accuracy_test([100, 200], [50, 180], [1000, 2000], [500, 1800], min_reviews=30)
    assert same.chi2 == pytest.approx(0.0, abs=1e-12) and same.p_value == pytest.approx(1.0)
    assert detectors.binned_accuracy_test([10], [5], [10], [1], min_reviews=30).p_value == 1.0


def test_holm_adjusted_p_values_match_the_step_down_definition_and_bh_is_scipys():
    from scipy.stats import false_discovery_control

    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.0001, 0.04]
    adjusted = detectors.holm(p)
    # Holm rejects H_i at level a exactly when its adjusted p is below a: check against the procedure itself.
    for alpha in (0.001, 0.01, 0.02, 0.05, 0.1, 0.3):
        order = sorted(range(len(p)), key=p.__getitem__)
        rejected = set()
        for rank, i in enumerate(order):
            if p[i] >= alpha / (len(p) - rank):
                break
            rejected.add(i)
        assert {i for i, a in enumerate(adjusted) if a < alpha} == rejected
    assert all(a >= b for a, b in zip(adjusted, p)) and max(adjusted) <= 1.0
    assert detectors.holm([]) == [] and detectors.holm([0.3]) == [0.3]
    bh = false_discovery_control(p, method="bh")
    assert all(b <= h + 1e-15 for b, h in zip(bh, adjusted))   # BH is never stricter than Holm
