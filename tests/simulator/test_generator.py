"""The pure generator: determinism, the contract's shape, and the configured statistics."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter

import pytest

from clara.records import Rejection, Review, parse_document
from simulator.generator import BAD_KINDS, Drift, PredictionStream, Settings
from simulator.model import Behaviour

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
N_CLASSES = 7
UNIFORM = (1.0,) * N_CLASSES


def behaviour(**overrides) -> Behaviour:
    values = {"class_mix": UNIFORM, "accuracy": (0.9,) * N_CLASSES} | overrides
    return Behaviour(**values)


def simulate(settings: Settings, n: int, seed=1, rate: float = 10.0) -> list:
    stream = PredictionStream(settings, seed)
    return [stream.next(T0 + dt.timedelta(seconds=i / rate), i / rate) for i in range(n)]


def reviewed(simulated) -> dict:
    timestamp = simulated.document.get("timestamp")
    timestamp = timestamp if isinstance(timestamp, dt.datetime) else T0
    return simulated.document | simulated.review | {
        "timestamp_validated": timestamp + dt.timedelta(seconds=simulated.review_delay)}


def test_same_seed_same_documents_and_reviews():
    settings = Settings(behaviour(), bad_fraction=0.1, legacy_fraction=0.2)
    assert simulate(settings, 500, seed=42) == simulate(settings, 500, seed=42)
    assert simulate(settings, 500, seed=42) != simulate(settings, 500, seed=43)


def test_good_documents_parse_before_and_after_review():
    settings = Settings(behaviour(), legacy_fraction=0.3)
    records = []
    for i, simulated in enumerate(simulate(settings, 2000)):
        doc = simulated.document | {"_id": i}
        assert set(doc) == {"_id", "filename", "output_prediction", "output_confidence", "timestamp"}
        record = parse_document(doc, N_CLASSES)
        assert not isinstance(record, Rejection), record
        assert record.review is Review.PENDING
        if simulated.review is not None:
            records.append((simulated, parse_document(reviewed(simulated) | {"_id": i}, N_CLASSES)))
    assert len(records) > 1000
    forms = Counter(type(s.review["output_validated"]) for s, _ in records)
    assert forms[bool] > 0 and forms[int] > 0
    for simulated, record in records:
        assert not isinstance(record, Rejection), record
        value = simulated.review["output_validated"]
        if value is False:
            assert record.review is Review.REJECTED and record.predicted != simulated.truth
        else:
            assert record.review is Review.CONFIRMED and record.truth == simulated.truth
        assert record.latency_seconds == pytest.approx(simulated.review_delay, abs=1e-3)


def test_bad_documents_are_all_rejected_with_every_kind_present():
    settings = Settings(behaviour(), bad_fraction=1.0)
    kinds = Counter()
    for i, simulated in enumerate(simulate(settings, 400)):
        kinds[simulated.bad] += 1
        assert isinstance(parse_document(simulated.document | {"_id": i}, N_CLASSES), Rejection)
        if simulated.review is not None:
            assert isinstance(parse_document(reviewed(simulated) | {"_id": i}, N_CLASSES), Rejection)
    assert set(kinds) == set(BAD_KINDS)


def test_bad_fraction_is_respected():
    sims = simulate(Settings(behaviour(), bad_fraction=0.1), 10000)
    rejected = sum(isinstance(parse_document(s.document | {"_id": i}, N_CLASSES), Rejection)
                   for i, s in enumerate(sims))
    assert rejected == sum(s.bad is not None for s in sims)
    assert 0.08 < rejected / len(sims) < 0.12


def test_per_class_accuracy_and_class_mix_as_configured():
    accuracy = (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.99)
    mix = (1, 2, 3, 4, 5, 6, 7)
    sims = simulate(Settings(behaviour(accuracy=accuracy, class_mix=mix)), 40000)
    by_class = Counter(s.truth for s in sims)
    for cls in range(N_CLASSES):
        assert by_class[cls] / len(sims) == pytest.approx(mix[cls] / sum(mix), abs=0.01)
        right = sum(s.document["output_prediction"] == cls for s in sims if s.truth == cls)
        assert right / by_class[cls] == pytest.approx(accuracy[cls], abs=0.035)


def test_confidence_means_for_right_and_wrong_predictions():
    sims = simulate(Settings(behaviour(accuracy=(0.5,) * N_CLASSES, confidence_right=0.9,
                                       confidence_wrong=0.4)), 10000)
    right = [s.document["output_confidence"] for s in sims if s.document["output_prediction"] == s.truth]
    wrong = [s.document["output_confidence"] for s in sims if s.document["output_prediction"] != s.truth]
    assert all(0.0 <= c <= 1.0 for c in right + wrong)
    assert statistics.mean(right) == pytest.approx(0.9, abs=0.01)
    assert statistics.mean(wrong) == pytest.approx(0.4, abs=0.01)


def test_review_fraction_and_mean_delay():
    sims = simulate(Settings(behaviour(), review_fraction=0.6, review_delay=30.0), 10000)
    delays = [s.review_delay for s in sims if s.review is not None]
    assert len(delays) / len(sims) == pytest.approx(0.6, abs=0.02)
    assert statistics.mean(delays) == pytest.approx(30.0, rel=0.05)


def _window(sims, start, end):
    return [s for s in sims if start <= (s.document["timestamp"] - T0).total_seconds() < end]


def test_accuracy_drift_switches_on_and_off_at_the_given_offsets():
    drift = Drift("accuracy", start=1000.0, end=2000.0, strength=0.5)
    sims = simulate(Settings(behaviour(), drift=drift), 30000)  # 3000 s at 10/s
    assert [s.drifted for s in sims] == [1000.0 <= i / 10 < 2000.0 for i in range(30000)]
    for start, end, expected in ((0, 1000, 0.9), (1000, 2000, 0.45), (2000, 3000, 0.9)):
        window = _window(sims, start, end)
        accuracy = sum(s.document["output_prediction"] == s.truth for s in window) / len(window)
        assert accuracy == pytest.approx(expected, abs=0.03), (start, end)


def test_confidence_drift_lowers_confidence():
    sims = simulate(Settings(behaviour(), drift=Drift("confidence", start=500.0, strength=0.4)), 10000)
    before = statistics.mean(s.document["output_confidence"] for s in _window(sims, 0, 500))
    after = statistics.mean(s.document["output_confidence"] for s in _window(sims, 500, 1000))
    assert after == pytest.approx(before * 0.6, rel=0.05)


def test_class_mix_drift_moves_traffic_to_the_rarest_class():
    mix = (5, 5, 5, 1, 5, 5, 5)
    sims = simulate(Settings(behaviour(class_mix=mix), drift=Drift("class-mix", start=500.0, strength=0.5)),
                    10000)
    share = {w: sum(s.truth == 3 for s in _window(sims, *w)) / 5000 for w in ((0, 500), (500, 1000))}
    assert share[(0, 500)] == pytest.approx(1 / 31, abs=0.01)
    assert share[(500, 1000)] == pytest.approx(0.5 / 31 + 0.5, abs=0.02)


@pytest.mark.parametrize("kwargs, message", [
    ({"accuracy": (0.9,) * 3}, "one value per class"),
    ({"accuracy": (1.5,) * N_CLASSES}, "from 0 to 1"),
    ({"class_mix": (0,) * N_CLASSES}, "at least one positive"),
    ({"confidence_right": 1.0}, "strictly between 0 and 1"),
    ({"confidence_concentration": 0}, "positive"),
])
def test_behaviour_rejects_impossible_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        behaviour(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "colour"}, "unknown drift"),
    ({"kind": "accuracy", "strength": 1.0}, "strictly between"),
    ({"kind": "accuracy", "start": 10.0, "end": 5.0}, "end after it starts"),
])
def test_drift_rejects_impossible_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Drift(**kwargs)
