"""The version comparison's test equals scipy's on the same counts: Pearson's chi-square without correction
for the z-test (z^2 = chi^2, same p), Fisher's exact test for small tables, Benjamini-Hochberg for a family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, chi2_contingency, false_discovery_control, fisher_exact

from estimates.compare import FISHER, Z_TEST, compare_each, two_proportions, verdict
from estimates.results import EstimateError

LARGE = [(820, 1000, 861, 1000), (45, 60, 52, 61), (300, 500, 290, 480), (5000, 7000, 5040, 7000), (12, 40, 25, 40)]


@pytest.mark.parametrize("k_a, n_a, k_b, n_b", LARGE)
def test_the_z_test_equals_pearsons_chi_square_without_correction(k_a, n_a, k_b, n_b):
    found = two_proportions(k_a, n_a, k_b, n_b)
    chi2, p, _, expected = chi2_contingency([[k_a, n_a - k_a], [k_b, n_b - k_b]], correction=False)
    assert expected.min() >= 5 and found.method == Z_TEST
    assert found.statistic ** 2 == pytest.approx(chi2, rel=1e-12)
    assert found.p_value == pytest.approx(p, rel=1e-9)
    assert math.copysign(1, found.statistic) == math.copysign(1, k_b / n_b - k_a / n_a)
    assert found.difference == k_b / n_b - k_a / n_a
    for side, (k, n) in ((found.a, (k_a, n_a)), (found.b, (k_b, n_b))):
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (side.value, side.interval.low, side.interval.high) == pytest.approx((k / n, ci.low, ci.high))


@pytest.mark.parametrize("k_a, n_a, k_b, n_b", [(3, 4, 1, 6), (9, 10, 5, 12), (1, 30, 6, 25), (0, 3, 3, 3)])
def test_small_tables_use_fishers_exact_test(k_a, n_a, k_b, n_b):
    found = two_proportions(k_a, n_a, k_b, n_b)
    odds, p = fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])
    assert found.method == FISHER and "exact" in found.assumption
    assert found.p_value == p
    assert found.statistic == (odds if math.isfinite(odds) else None)


def test_significance_and_the_verdict_in_words():
    better = two_proportions(820, 1000, 861, 1000)
    assert better.significant is True
    assert verdict(better, "v1", "v2") == (f"accuracy: v2 is higher than v1 (86.1% vs 82.0%, 4.1 points); the "
                                           f"difference is significant at 0.05 ({Z_TEST}, p = {better.p_value:.3g})")
    close = two_proportions(300, 500, 280, 480)
    assert close.significant is False and "v1 is higher than v2" in verdict(close, "v1", "v2")
    assert "not significant" in verdict(close, "v1", "v2")
    level = two_proportions(7650, 10000, 7652, 10000)
    assert verdict(level, "v1", "v2").startswith("accuracy: v2 and v1 are level (76.5% and 76.5%, +0.02 points); "
                                                 "the difference is not significant")


def test_undefined_comparisons_say_why():
    assert two_proportions(0, 0, 5, 10).reason == "no reviews on one side"
    same = two_proportions(10, 10, 7, 7)
    assert same.p_value is None and same.significant is None and same.difference == 0
    assert "not testable" in verdict(same, "a", "b")
    assert verdict(two_proportions(0, 0, 0, 0), "a", "b") == "accuracy: no comparison (no reviews on either side)"
    with pytest.raises(EstimateError):
        two_proportions(5, 4, 1, 2)


def test_a_family_of_classes_is_adjusted_by_benjamini_hochberg():
    a = [(80, 100), (40, 50), (0, 0), (70, 100), (10, 12)]
    b = [(95, 100), (41, 50), (3, 9), (71, 100), (4, 12)]
    found = compare_each(a, b)
    tested = [one for one in found if one.p_value is not None]
    assert len(tested) == 4 and found[2].p_value is None and found[2].adjusted_p_value is None
    expected = false_discovery_control([one.p_value for one in tested], method="bh")
    assert np.allclose([one.adjusted_p_value for one in tested], expected, rtol=0, atol=0)
    assert [one.significant for one in found] == [p < 0.05 if p is not None else None
                                                  for p in [one.adjusted_p_value for one in found]]
    assert "adjusted p" in verdict(found[0], "v1", "v2", "recall of blue")
