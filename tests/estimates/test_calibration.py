"""Calibration from binned counts against sklearn.calibration.calibration_curve on the raw predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from clara.rollups import CONFIDENCE_BINS, confidence_bin
from estimates.calibration import (MICROS, bin_edges, calibration_bin, calibration_bin_micros, reliability)
from estimates.intervals import proportion_interval
from estimates.results import EstimateError

EDGES = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)


def sklearn_bin(confidence):
    return np.searchsorted(EDGES[1:-1], confidence)   # what calibration_curve does


def edge_values():
    values = [0.0, 1.0, 1e-9, 1 - 1e-9]
    for k in range(1, CONFIDENCE_BINS):
        for edge in (k / CONFIDENCE_BINS, EDGES[k]):
            values += [edge, np.nextafter(edge, 0), np.nextafter(edge, 1)]
    return np.array(values)


def test_calibration_bin_matches_sklearn_on_and_beside_every_edge():
    values = edge_values()
    assert [calibration_bin(float(v)) for v in values] == sklearn_bin(values).tolist()


def test_an_inner_edge_goes_to_the_lower_bin_unlike_confidence_bin():
    assert calibration_bin(0.05) == 0 and confidence_bin(0.05) == 1
    assert calibration_bin(0.5) == 9 and confidence_bin(0.5) == 10
    assert calibration_bin(0.0) == confidence_bin(0.0) == 0
    assert calibration_bin(1.0) == confidence_bin(1.0) == CONFIDENCE_BINS - 1
    differ = [v for v in edge_values() if calibration_bin(float(v)) != confidence_bin(float(v))]
    assert len(differ) >= CONFIDENCE_BINS - 1   # at least every inner edge


def test_micros_bin_matches_sklearn_for_every_micro():
    micros = np.arange(MICROS + 1)
    ours = -(-micros * CONFIDENCE_BINS // MICROS) - 1
    ours = np.maximum(ours, 0)
    assert (ours == sklearn_bin(micros / MICROS)).all()
    sample = range(0, MICROS + 1, 997)
    assert [calibration_bin_micros(m) for m in sample] == [int(ours[m]) for m in sample]
    for edge in range(0, MICROS + 1, MICROS // CONFIDENCE_BINS):
        assert calibration_bin_micros(edge) == calibration_bin(edge / MICROS)


@pytest.mark.parametrize("bins", [5, 7, 10, 20])
def test_edges_are_sklearns_floats(bins):
    assert bin_edges(bins) == tuple(np.linspace(0.0, 1.0, bins + 1).tolist())


def test_out_of_range_confidence_is_refused():
    with pytest.raises(EstimateError):
        calibration_bin(1.5)
    with pytest.raises(EstimateError):
        calibration_bin_micros(-1)


def raw_predictions(rng, size, bins):
    confidence = np.round(rng.beta(5, 2, size), 6)
    inner = np.round(np.repeat(np.linspace(0, 1, bins + 1)[1:-1], 4), 6)   # k / bins exactly, as documents hold them
    confidence[: len(inner)] = inner
    correct = rng.random(size) < confidence ** 1.5
    return confidence, correct


def binned(confidence, correct, bins, micros=False):
    index = np.array([calibration_bin(float(c), bins) for c in confidence])
    r = np.bincount(index, minlength=bins)
    c = np.bincount(index, weights=correct, minlength=bins).astype(int)
    values = np.round(confidence * MICROS).astype(np.int64) if micros else confidence
    s = np.array([values[index == b].sum() for b in range(bins)])
    return r, c, s


@pytest.mark.parametrize("bins", [10, 20])
@pytest.mark.parametrize("micros", [False, True])
def test_reliability_equals_calibration_curve_on_raw_data(bins, micros):
    rng = np.random.default_rng(bins)
    confidence, correct = raw_predictions(rng, 3000, bins)
    r, c, s = binned(confidence, correct, bins, micros)
    result = reliability(r, c, s, confidence_scale=MICROS if micros else 1.0)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=bins, strategy="uniform")
    ours_true, ours_pred = result.curve()
    assert (ours_true == prob_true).all()
    np.testing.assert_allclose(ours_pred, prob_pred, rtol=1e-12, atol=0)
    gaps = np.abs(prob_true - prob_pred)
    counts = r[r > 0]
    assert result.ece == pytest.approx(float(counts @ gaps / counts.sum()), rel=1e-12)
    assert result.mce == pytest.approx(float(gaps.max()), rel=1e-12)
    assert result.n == 3000 and result.method == f"reliability_uniform_{bins}"


def test_edge_confidences_alone_match_calibration_curve():
    confidence = np.array([0.05, 0.05, 0.1, 0.15, 0.5, 0.5, 0.95, 1.0, 0.0])
    correct = np.array([0, 1, 1, 0, 1, 1, 0, 1, 0])
    r, c, s = binned(confidence, correct, CONFIDENCE_BINS)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=CONFIDENCE_BINS)
    ours_true, ours_pred = reliability(r, c, s).curve()
    assert ours_true.tolist() == prob_true.tolist() and ours_pred.tolist() == prob_pred.tolist()


def test_bins_carry_wilson_intervals_and_the_sign_of_the_gap():
    r = [0, 10, 20, 0]
    c = [0, 2, 10, 0]
    s = [0.0, 10 * 0.35, 20 * 0.65, 0.0]
    result = reliability(r, c, s)
    assert result.bins[0].count == 0 and result.bins[0].interval is None and result.bins[0].gap is None
    assert result.bins[1].interval == proportion_interval(2, 10)
    assert result.bins[1].gap == pytest.approx(0.2 - 0.35)
    assert result.direction == "over-confident" and result.signed_gap < 0
    assert reliability([10], [9], [5.0]).direction == "under-confident"
    assert reliability([10], [5], [5.0], tolerance=0.01).direction == "calibrated"


def test_no_reviews_has_no_ece():
    result = reliability([0, 0], [0, 0], [0, 0])
    assert result.ece is None and result.reason == "no reviews"


def test_inconsistent_counts_are_refused():
    with pytest.raises(EstimateError):
        reliability([1, 2], [2, 0], [0.5, 1.0])
    with pytest.raises(EstimateError):
        reliability([1, 2], [1], [0.5, 1.0])
