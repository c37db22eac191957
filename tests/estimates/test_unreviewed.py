"""Post-stratified accuracy, AC, DoC, ATC and the combined accuracy, on hand cases and seeded raw data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from estimates.unreviewed import (atc, average_confidence, combined_accuracy, difference_of_confidences,
                                  post_stratified, reference_summary, share_below, strata, threshold_at)

BINS = 20


def selected_day(rng, size=20000, power=1.0):
    """Raw predictions whose reviewers prefer low confidence: (bin, correct, confidence, reviewed) arrays."""
    confidence = rng.beta(6, 2, size)
    correct = rng.random(size) < confidence
    reviewed = rng.random(size) < np.minimum(1, 0.6 * (1 - confidence) ** power / np.mean((1 - confidence) ** power))
    index = np.minimum((confidence * BINS).astype(int), BINS - 1)
    return index, correct, confidence, reviewed


def counts(index, mask):
    return np.bincount(index[mask], minlength=BINS)


def test_strata_merge_thin_bins_and_a_short_tail():
    groups = strata([5, 40, 10, 10, 15, 3], [5, 30, 8, 9, 14, 3], [1, 2, 3, 4, 5, 6], min_reviews=30)
    assert [(g.first, g.last, g.reviewed, g.unreviewed) for g in groups] == [(0, 1, 45, 3), (2, 5, 38, 18)]
    assert strata([5, 5], [1, 1], [3, 3], min_reviews=30) == []


def test_post_stratified_is_the_reweighted_bin_accuracy_with_its_variance():
    r, c, u = [50, 100, 200], [20, 80, 190], [10, 100, 400]
    estimate = post_stratified(r, c, u, min_reviews=30)
    shares = np.array(u) / sum(u)
    accuracy = np.array(c) / np.array(r)
    assert estimate.value == pytest.approx(float(shares @ accuracy), rel=1e-15)
    smoothed = (np.array(c) + 0.5) / (np.array(r) + 1)
    variance = np.sum(shares ** 2 * smoothed * (1 - smoothed) * (1 / np.array(r) + 1 / np.array(u)))
    assert estimate.interval.high - estimate.value == pytest.approx(1.959963984540054 * math.sqrt(variance))
    assert estimate.method == "post_stratified" and "missing at random" in estimate.assumption
    assert estimate.notes == () and estimate.n == 350
    rate = post_stratified(r, c, u, min_reviews=30, finite=False)
    assert rate.value == estimate.value and rate.interval.width < estimate.interval.width


def test_merges_are_reported_and_too_few_reviews_refused():
    estimate = post_stratified([3, 40, 0, 2], [1, 30, 0, 2], [5, 5, 5, 5], min_reviews=30)
    assert estimate.notes == ("confidence bins 0-3 merged: 45 reviews",)
    refused = post_stratified([3, 4], [1, 2], [10, 10], min_reviews=30)
    assert refused.value is None and refused.reason == "too few reviews (7 < 30)"
    assert post_stratified([40], [30], [0]).reason.startswith("every prediction is reviewed")


def test_post_stratified_corrects_reviewers_who_prefer_low_confidence():
    rng = np.random.default_rng(3)
    hits, errors, naive_errors = 0, [], []
    for _ in range(40):
        index, correct, _, reviewed = selected_day(rng, size=5000)
        truth = correct[~reviewed].mean()
        estimate = post_stratified(counts(index, reviewed), counts(index, reviewed & correct), counts(index, ~reviewed))
        hits += estimate.interval.contains(truth)
        errors.append(abs(estimate.value - truth))
        naive_errors.append(abs(correct[reviewed].mean() - truth))
    assert np.mean(errors) < np.mean(naive_errors) / 4
    assert hits >= 34    # a 95% interval: at least 34 of 40 days (binomial 1st percentile)


def test_interval_contains_the_estimate_and_shrinks_with_reviews():
    rng = np.random.default_rng(5)
    for _ in range(100):
        r = rng.integers(0, 80, BINS)
        c = rng.binomial(r, rng.random(BINS))
        u = rng.integers(0, 500, BINS)
        small = post_stratified(r, c, u)
        if not small.defined:
            continue
        large = post_stratified(r * 4, c * 4, u * 4)
        assert small.interval.contains(small.value)
        assert large.interval.width <= small.interval.width


def test_average_confidence_is_the_mean_confidence_of_the_target():
    rng = np.random.default_rng(1)
    index, _, confidence, _ = selected_day(rng, 2000)
    sums = np.bincount(index, weights=confidence, minlength=BINS)
    estimate = average_confidence(np.bincount(index, minlength=BINS), sums)
    assert estimate.value == pytest.approx(confidence.mean(), rel=1e-12)
    assert estimate.method == "average_confidence" and "calibrated" in estimate.assumption
    rough = average_confidence(np.bincount(index, minlength=BINS))
    assert abs(rough.value - confidence.mean()) < 0.01 and rough.notes == ("bin midpoints for confidences",)
    micros = average_confidence([2], [1_500_000], confidence_scale=1e6)
    assert micros.value == 0.75
    assert average_confidence([0, 0]).reason == "no target predictions"


def test_doc_moves_accuracy_by_the_change_in_confidence():
    estimate = difference_of_confidences(0.9, 0.85, 0.80, n=100)
    assert estimate.value == pytest.approx(0.85) and estimate.method == "doc" and estimate.n == 100
    assert difference_of_confidences(0.1, 0.9, 0.2, n=1).value == 0.0


def test_reference_summary_plain_and_weighted():
    assert reference_summary([10, 10], [2, 9], [3.0, 9.0]) == (0.55, 0.6)
    weighted = reference_summary([30, 30], [6, 27], [9.0, 27.0], [0, 90])
    assert weighted == pytest.approx((0.9, 0.9))


def test_threshold_and_share_interpolate_within_bins():
    histogram = np.zeros(BINS)
    histogram[10] = histogram[15] = 50
    assert threshold_at(histogram, 0.25) == pytest.approx(0.525)
    assert threshold_at(histogram, 0.5) == pytest.approx(0.55)
    assert share_below(histogram, 0.525) == pytest.approx(0.25)
    assert share_below(histogram, 0.77) == pytest.approx(0.5 + 0.5 * 0.4)


def raw_atc(reference_confidence, reference_correct, target_confidence):
    error = 1 - reference_correct.mean()
    threshold = np.quantile(reference_confidence, error)
    return float((target_confidence >= threshold).mean())


def test_binned_atc_is_close_to_atc_on_raw_confidences():
    rng = np.random.default_rng(7)
    reference = rng.beta(6, 2, 20000)
    ref_correct = rng.random(20000) < reference
    target = rng.beta(5, 2, 20000)
    bins = 1000
    index = np.minimum((reference * bins).astype(int), bins - 1)
    target_index = np.minimum((target * bins).astype(int), bins - 1)
    estimate = atc(np.bincount(index, minlength=bins), np.bincount(index, weights=ref_correct, minlength=bins),
                   np.bincount(target_index, minlength=bins), min_reviews=1)
    assert estimate.value == pytest.approx(raw_atc(reference, ref_correct, target), abs=2e-3)
    assert estimate.method == "atc" and estimate.notes[0].startswith("threshold")


def test_atc_on_its_own_reference_gives_the_reference_accuracy():
    r = np.array([0] * 10 + [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    c = (r * np.linspace(0.3, 0.99, BINS)).astype(int)
    assert atc(r, c, r).value == pytest.approx(c.sum() / r.sum())


def test_weighted_atc_on_the_same_day_is_the_post_stratified_estimate():
    rng = np.random.default_rng(11)
    index, correct, _, reviewed = selected_day(rng, 20000)
    r, c, u = counts(index, reviewed), counts(index, reviewed & correct), counts(index, ~reviewed)
    weighted = atc(r, c, u, reference_unreviewed=u)
    assert weighted.method == "atc_weighted"
    assert weighted.value == pytest.approx(post_stratified(r, c, u).value, abs=1e-9)
    assert atc([0] * BINS, [0] * BINS, u).reason.startswith("too few")


def test_combined_accuracy_adds_the_realized_part():
    unreviewed = post_stratified([100, 100], [50, 90], [300, 300])
    combined = combined_accuracy(200, 140, 600, unreviewed)
    assert combined.value == pytest.approx((140 + 600 * unreviewed.value) / 800)
    assert combined.interval.low == pytest.approx((140 + 600 * unreviewed.interval.low) / 800)
    assert combined.interval.width < unreviewed.interval.width
    assert combined.method == "combined_post_stratified" and combined.interval.contains(combined.value)
    everything = combined_accuracy(10, 7, 0, post_stratified([10], [7], [0]))
    assert everything.value == 0.7 and everything.interval.width == 0
    assert combined_accuracy(10, 7, 50, post_stratified([10], [7], [50])).reason.startswith("unreviewed part")
    by_confidence = combined_accuracy(200, 140, 600, average_confidence([0, 600], [0, 600 * 900_000],
                                                                         confidence_scale=1_000_000))
    assert by_confidence.interval is None and by_confidence.value == pytest.approx((140 + 600 * 0.9) / 800)
