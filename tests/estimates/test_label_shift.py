"""BBSE and RLLS against a direct numpy solve, exact recovery from expected counts, refusals and bin weighting."""

from __future__ import annotations

import numpy as np
import pytest

from estimates.label_shift import label_shift, unreviewed_mix
from estimates.results import EstimateError

ACCURACY = np.array([0.9, 0.8, 0.85, 0.7])
P_Y = np.array([0.4, 0.3, 0.2, 0.1])
Q_Y = np.array([0.1, 0.2, 0.3, 0.4])


def conditional(accuracy=ACCURACY):
    """P(ŷ = i | y = j): right with the class's accuracy, otherwise uniformly another class."""
    k = len(accuracy)
    matrix = np.tile((1 - accuracy) / (k - 1), (k, 1))
    np.fill_diagonal(matrix, accuracy)
    return matrix


def expected_counts(n=8000, m=40000):
    confusion = np.round((conditional() * P_Y).T * n).astype(int)   # rows true, columns predicted
    target = np.round(conditional() @ Q_Y * m).astype(int)
    return confusion, target


def test_bbse_is_the_direct_solve_of_c_w_mu():
    rng = np.random.default_rng(2)
    for _ in range(20):
        k = int(rng.integers(2, 6))
        confusion = rng.integers(5, 60, size=(k, k)) + np.diag(rng.integers(200, 400, size=k))
        target = rng.integers(100, 1000, size=k)
        result = label_shift(confusion, target, draws=20)
        if not result.defined:
            continue
        c = confusion.T / confusion.sum()
        w = np.clip(np.linalg.solve(c, target / target.sum()), 0, None)
        q = w * c.sum(axis=0)
        np.testing.assert_allclose(result.mix, q / q.sum(), rtol=1e-12)
        np.testing.assert_allclose(result.weights, w, rtol=1e-12)
        assert result.condition == pytest.approx(np.linalg.cond(c))


def test_exact_counts_recover_the_shifted_mix_and_the_implied_accuracy():
    confusion, target = expected_counts()
    for method in ("bbse", "rlls"):
        result = label_shift(confusion, target, method=method, draws=100)
        np.testing.assert_allclose(result.mix, Q_Y, atol=2e-3)
        assert result.accuracy.value == pytest.approx(float(Q_Y @ ACCURACY), abs=2e-3)
        assert result.accuracy.interval.contains(result.accuracy.value)
        assert all(interval.contains(q) for interval, q in zip(result.intervals, result.mix))
        assert result.method == method and "p(x | y)" in result.assumption
        np.testing.assert_allclose(result.reference_mix, P_Y, atol=1e-3)


def test_bootstrap_is_seeded_and_shrinks_with_reviews():
    confusion, target = expected_counts(n=2000, m=10000)
    first, again = label_shift(confusion, target, seed=3), label_shift(confusion, target, seed=3)
    assert first.intervals == again.intervals
    more = label_shift(confusion * 9, target * 9, seed=3)
    assert all(b.width < a.width for a, b in zip(first.intervals, more.intervals))


def test_rlls_without_regularisation_is_bbse_and_keeps_theta_above_minus_one():
    rng = np.random.default_rng(4)
    confusion = np.round((conditional() * P_Y).T * 3000 + rng.integers(0, 20, (4, 4))).astype(int)
    target = np.round(conditional() @ Q_Y * 9000).astype(int)
    bbse = label_shift(confusion, target, draws=10)
    rlls = label_shift(confusion, target, method="rlls", alpha=0.0, draws=10)
    np.testing.assert_allclose(rlls.mix, bbse.mix, atol=1e-5)
    strong = label_shift(confusion, target, method="rlls", alpha=50.0, draws=10)
    assert min(strong.weights) >= 0
    assert np.abs(np.array(strong.weights) - 1).sum() < np.abs(np.array(bbse.weights) - 1).sum()


def test_negative_weights_are_clipped_and_said():
    confusion, _ = expected_counts()
    target = np.array([0, 0, 0, 1000])   # more of class 3 than any true mix can predict
    result = label_shift(confusion, target, draws=10)
    assert min(result.weights) == 0 and sum(result.mix) == pytest.approx(1.0)
    assert any("clipped" in note for note in result.notes)


def test_refusals_say_why():
    confusion, target = expected_counts(n=100)
    assert label_shift(confusion, target).reason == f"too few reference reviews ({confusion.sum()} < 200)"
    confusion, target = expected_counts()
    confusion[3] = 0
    refused = label_shift(confusion, target)
    assert refused.mix is None and refused.reason.startswith("too few reference reviews of true class 3")
    assert refused.accuracy.value is None and refused.predicted_mix == tuple(target / target.sum())
    twins = np.array([[500, 500, 0], [500, 501, 0], [0, 0, 900]])   # classes 0 and 1 indistinguishable
    ill = label_shift(twins, [300, 300, 300])
    assert ill.mix is None and "ill-conditioned" in ill.reason and ill.condition > 1000
    assert label_shift(*expected_counts()[:1], [0, 0, 0, 0]).reason == "no target predictions"
    with pytest.raises(EstimateError):
        label_shift(confusion, target, method="em")
    with pytest.raises(EstimateError):
        label_shift(confusion, [1, 2])


def test_bin_weights_undo_reviewers_who_prefer_some_bins():
    """Two confidence bins, reviewed at different rates: weighting by traffic / reviews gives back the joint."""
    low = np.array([[40, 30], [20, 10]])      # reviews in the low bin (rows true, columns predicted)
    high = np.array([[90, 2], [3, 45]])
    traffic = np.array([200, 1400])            # low bin: 100 reviewed of 200; high: 140 of 1400
    joint = (low * 2 + high * 10).T
    joint = joint / joint.sum()
    target = np.array([700, 900])
    weighted = label_shift(np.stack([low, high]), target, bin_traffic=traffic, min_reviews=10,
                           min_bin_reviews=10, draws=50)
    w = np.clip(np.linalg.solve(joint, target / target.sum()), 0, None)
    q = w * joint.sum(axis=0)
    np.testing.assert_allclose(weighted.mix, q / q.sum(), rtol=1e-12)
    plain = label_shift(low + high, target, min_reviews=10, draws=50)
    assert not np.allclose(plain.mix, weighted.mix)
    assert any("weighted" in note for note in weighted.notes)


def test_unreviewed_mix_removes_the_reviewed_counts():
    assert unreviewed_mix((0.5, 0.5), 100, [30, 10]) == pytest.approx((1 / 3, 2 / 3))
    assert unreviewed_mix(None, 100, [1, 1]) is None
    assert unreviewed_mix((0.5, 0.5), 10, [5, 5]) is None
