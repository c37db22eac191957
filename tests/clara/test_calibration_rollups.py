"""The calibration counters of the review and prediction rollups: scikit-learn's bins, exact under corrections."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from clara.predictions import PredictionDelta, PredictionTotals, classify, nest
from clara.rollups import CONFIDENCE_BINS, Counted, RollupDelta, Totals, calibration_bin_micros, confidence_bin
from estimates.calibration import calibration_bin

UTC = dt.timezone.utc
HOUR = dt.datetime(2024, 5, 1, 10, tzinfo=UTC)
PERIOD = dt.timedelta(hours=1)
EDGES = [b / CONFIDENCE_BINS for b in range(CONFIDENCE_BINS + 1)]   # 0, 0.05, ..., 1: every edge


def counted(predicted: int, truth: int | None, confidence: float | None) -> Counted:
    return Counted(HOUR, predicted, truth, None if confidence is None else round(confidence * 1_000_000), 1000)


def stored(delta: RollupDelta) -> dict:
    """The hour's document as $inc would leave it (dotted paths nested)."""
    [(hour, inc)] = delta.updates()
    return nest(inc) | {"_id": hour}


def test_an_inner_edge_is_in_the_lower_calibration_bin_and_keeps_its_confidence_hist_bin():
    inc = counted(2, 2, 0.05).increments()
    assert inc["calibration_cells.0_2_2"] == 1 and inc["calibration_micros.0_2"] == 50_000
    assert inc["confidence_hist.1"] == 1                      # the old histogram is unchanged
    assert confidence_bin(0.05) == 1


@pytest.mark.parametrize("confidence", EDGES + [0.123456, 0.999999, 0.000001])
def test_calibration_bin_micros_is_scikit_learns_bin(confidence):
    assert calibration_bin_micros(round(confidence * 1_000_000)) == calibration_bin(confidence)


def test_rejected_reviews_count_as_wrong_and_reviews_without_confidence_are_left_out():
    delta = RollupDelta()
    delta.add(counted(3, None, 0.9))
    delta.add(counted(3, 1, None))
    doc = stored(delta)
    assert doc["calibration_rejected"] == {"17_3": 1}
    assert "calibration_cells" not in doc
    assert Totals.of([doc]).calibration() == ([0] * 17 + [1, 0, 0], [0] * 20, [0] * 17 + [900_000, 0, 0])


def test_zero_confidence_writes_no_zero_sum():
    inc = counted(0, 0, 0.0).increments()
    assert inc["calibration_cells.0_0_0"] == 1 and not any(key.startswith("calibration_micros") for key in inc)


def test_a_correction_moves_the_bins_exactly():
    """Decrement what the old review added, increment the new: only the changed cells move, nothing is left over."""
    old, new = counted(4, 4, 0.35), counted(4, 1, 0.35)
    delta = RollupDelta()
    delta.add(old)
    before = Totals.of([stored(delta)])
    delta.add(old, -1)
    delta.add(new)
    after = Totals.of([stored(delta)])
    assert before.calibration(4)[1][6] == 1 and after.calibration(4)[1][6] == 0   # 0.35 is on an edge: bin 6
    assert after.calibration(4)[0] == before.calibration(4)[0] and after.calibration_micros == before.calibration_micros
    assert +after.calibration_cells == {"6_1_4": 1}


def random_reviews(seed: int, n: int, n_classes: int = 5) -> list[Counted]:
    rng = random.Random(seed)
    reviews = []
    for _ in range(n):
        predicted = rng.randrange(n_classes)
        confidence = rng.choice(EDGES) if rng.random() < 0.3 else round(rng.random(), 6)
        truth = None if rng.random() < 0.05 else predicted if rng.random() < confidence else rng.randrange(n_classes)
        reviews.append(counted(predicted, truth, None if rng.random() < 0.03 else confidence))
    return reviews


def test_totals_equal_scikit_learns_calibration_curve_over_hours_and_per_class():
    reviews = random_reviews(7, 3000)
    docs = []
    for hour in range(4):   # four hours, summed as a day is
        delta = RollupDelta()
        for review in reviews[hour::4]:
            delta.add(review)
        docs.append(stored(delta))
    summed = Totals.of(docs)
    one_by_one = Totals()
    for doc in docs:
        one_by_one.add_doc(doc)
    assert summed == one_by_one and Totals.sum([Totals.of(docs[:2]), Totals.of(docs[2:])]) == summed
    for predicted in (None, 0, 3):
        chosen = [r for r in reviews if r.confidence_micros is not None and predicted in (None, r.predicted)]
        correct = np.array([r.truth == r.predicted for r in chosen], dtype=int)
        confidence = np.array([r.confidence_micros / 1e6 for r in chosen])
        prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=CONFIDENCE_BINS, strategy="uniform")
        reviewed, right, micros = summed.calibration(predicted)
        full = [b for b in range(CONFIDENCE_BINS) if reviewed[b]]
        assert [right[b] / reviewed[b] for b in full] == prob_true.tolist()
        assert [micros[b] / 1e6 / reviewed[b] for b in full] == pytest.approx(prob_pred.tolist(), rel=1e-12)
    confusion = np.array(summed.calibration_confusion(5))
    expected = np.zeros((CONFIDENCE_BINS, 5, 5), dtype=int)
    for r in reviews:
        if r.confidence_micros is not None and r.truth is not None:
            expected[calibration_bin(r.confidence_micros / 1e6), r.truth, r.predicted] += 1
    assert (confusion == expected).all()


def test_prediction_rollups_count_every_prediction_by_calibration_bin_and_class():
    rng = random.Random(3)
    docs = [{"_id": n, "filename": f"{n}.jpg", "output_prediction": rng.randrange(4),
             "output_confidence": rng.choice(EDGES + [round(rng.random(), 6)]),
             "timestamp": HOUR + dt.timedelta(minutes=rng.randrange(60))} for n in range(500)]
    docs.append({"_id": 999, "filename": "x.jpg", "output_prediction": 1, "timestamp": HOUR})   # no confidence
    delta = PredictionDelta()
    for doc in docs:
        assert delta.add_doc(doc, 4, PERIOD)
    [stored_doc] = delta.documents().values()
    totals = PredictionTotals.of([stored_doc])
    for predicted in (None, 2):
        chosen = [d for d in docs if "output_confidence" in d and predicted in (None, d["output_prediction"])]
        bins = [calibration_bin(d["output_confidence"]) for d in chosen]
        counts, micros = totals.calibration_counts(predicted)
        assert counts == np.bincount(bins, minlength=CONFIDENCE_BINS).tolist()
        assert micros == [sum(round(d["output_confidence"] * 1e6) for d, b in zip(chosen, bins) if b == k)
                          for k in range(CONFIDENCE_BINS)]
    assert sum(totals.calibration.values()) == sum(totals.confidence.values()) == 500
    key, rejection = classify({"_id": 1, "filename": "a", "output_prediction": 0, "output_confidence": 0.0,
                               "timestamp": HOUR}, 4, PERIOD)
    assert rejection is None and key[1] == {"predictions": 1, "classes.0": 1, "confidence.0.0": 1, "calibration.0.0": 1}
    doubled = PredictionTotals.sum([totals, totals]).calibration_counts()
    assert doubled == tuple([2 * n for n in values] for values in totals.calibration_counts())
