"""Hour profiles from outbox rows: the fast confusion matrix gives the bytes whylogs' own computation gives."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from whylogs.core.model_performance_metrics.model_performance_metrics import ModelPerformanceMetrics
from whylogs.migration.converters import read_v0_to_view

import consumer.profiles as profiles
from clara.records import Record, Review
from consumer.outbox_queue import HourRows, rows_by_hour

UTC = dt.timezone.utc
HOUR = dt.datetime(2024, 5, 1, 13, tzinfo=UTC)
CLASSES = ["SIGRE", "blue", "brown", "green", "green_point", "grey", "yellow"]


def records(n: int, seed: int) -> list[Record]:
    """n reviews of HOUR: a tenth rejected without a class, a few without a confidence."""
    rng = random.Random(seed)
    result = []
    for i in range(n):
        predicted = rng.randrange(7)
        review = rng.choice([Review.CONFIRMED] * 9 + [Review.REJECTED])
        truth = (predicted if rng.random() < 0.7 else rng.randrange(7)) if review is Review.CONFIRMED else None
        at = HOUR + dt.timedelta(seconds=rng.randrange(3600))
        confidence = None if rng.random() < 0.05 else rng.random()
        result.append(Record(i, f"img_{i}.jpg", predicted, confidence, at, review, truth,
                             at + dt.timedelta(seconds=rng.randrange(1, 90000)), None, False))
    return result


class WhylogsOwnMatrix(ModelPerformanceMetrics):
    """ModelPerformanceMetrics whose confusion matrix comes from whylogs' unmodified code path."""

    def __init__(self, confusion_matrix):
        super().__init__()
        self.compute_confusion_matrix(predictions=confusion_matrix.predictions, targets=confusion_matrix.targets,
                                      scores=confusion_matrix.scores)


def rows_of(records: list[Record]) -> HourRows:
    [(hour, rows)] = rows_by_hour(records).items()
    assert hour == HOUR
    return rows


def both_ways(monkeypatch, records: list[Record]) -> tuple[bytes, bytes]:
    """(our profile, the profile with whylogs' own confusion matrix code), same creation time."""
    created = dt.datetime(2024, 5, 2, tzinfo=UTC)
    rows = rows_of(records)
    fast = profiles.profile_bytes(rows, HOUR, CLASSES, created=created)

    class Recorder(profiles.ConfusionMatrix):
        """Keeps what it is given, for whylogs' own computation to redo."""

        def add(self, predictions, targets, scores):
            self.predictions, self.targets, self.scores = predictions, targets, scores

    monkeypatch.setattr(profiles, "ArrayConfusionMatrix", Recorder)
    monkeypatch.setattr(profiles, "ModelPerformanceMetrics", WhylogsOwnMatrix)
    reference = profiles.profile_bytes(rows, HOUR, CLASSES, created=created)
    monkeypatch.undo()
    return fast, reference


def view_of(data: bytes, tmp_path):
    path = tmp_path / "profile.bin"
    path.write_bytes(data)
    return read_v0_to_view(str(path))


@pytest.mark.parametrize("n, seed", [(1, 1), (40, 2), (600, 3)])
def test_profile_bytes_equal_whylogs_own_confusion_matrix(monkeypatch, n, seed):
    fast, reference = both_ways(monkeypatch, records(n, seed))

    assert fast == reference


def test_large_cells_have_the_same_counts_moments_and_extremes(monkeypatch, tmp_path):
    # Past ~128 scores a cell's KLL sketch compacts at random, so bytes differ run to run even within whylogs.
    fast, reference = both_ways(monkeypatch, records(8000, 5))
    ours = view_of(fast, tmp_path).model_performance_metrics.confusion_matrix
    theirs = view_of(reference, tmp_path).model_performance_metrics.confusion_matrix

    assert ours.labels == theirs.labels
    assert ours.confusion_matrix.keys() == theirs.confusion_matrix.keys()
    assert max(metric.n for metric in ours.confusion_matrix.values()) > 500
    for cell, metric in ours.confusion_matrix.items():
        other = theirs.confusion_matrix[cell]
        assert (metric.n, metric.min, metric.max) == (other.n, other.min, other.max)
        assert metric.mean.value == pytest.approx(other.mean.value, rel=1e-12)


def test_profile_reads_back_with_the_confusion_matrix_counts(tmp_path):
    reviews = records(300, 4)
    view = view_of(profiles.profile_bytes(rows_of(reviews), HOUR, CLASSES), tmp_path)
    matrix = view.model_performance_metrics.confusion_matrix
    labelled = [r for r in reviews if r.truth is not None]
    index = {label: i for i, label in enumerate(matrix.labels)}
    for (pred, true), metric in matrix.confusion_matrix.items():
        expected = sum(1 for r in labelled if index[CLASSES[r.predicted]] == pred and index[CLASSES[r.truth]] == true)
        assert metric.n == expected
    assert sum(metric.n for metric in matrix.confusion_matrix.values()) == len(labelled)
    assert view.dataset_timestamp == HOUR


def test_rows_keep_what_the_profile_needs_as_numbers():
    reviews = records(50, 6)
    rows = rows_of(reviews)
    assert rows.predicted == [r.predicted for r in reviews] and rows.truth == [r.truth for r in reviews]
    assert rows.confidence == [r.confidence for r in reviews]
    assert rows.latency_seconds == [r.latency_seconds for r in reviews]
    assert HourRows.from_doc(rows.to_doc()) == rows
    assert all(isinstance(v, (int, float, type(None))) for column in rows.to_doc().values() for v in column)


def test_the_local_store_profile_leaves_out_only_the_performance_metrics():
    rows = rows_of(records(200, 7))
    full = profiles.profile_view(rows, HOUR, CLASSES)
    light = profiles.profile_view(rows, HOUR, CLASSES, performance=False)
    assert full.model_performance_metrics is not None and light.model_performance_metrics is None
    assert light.dataset_timestamp == HOUR
    for column in ("target", "prediction", "score", "review_latency_seconds"):
        summaries = [view.get_column(column).to_summary_dict() for view in (light, full)]
        counts = [{k: v for k, v in summary.items() if k.startswith(("counts/", "types/"))} for summary in summaries]
        assert counts[0] == counts[1] and counts[0]["counts/n"] == 200


def test_the_schema_gives_the_profiles_whylogs_default_schema_gives(monkeypatch):
    """consumer.profiles leaves out of its schema only a metric whylogs' default config leaves out anyway."""
    from whylogs.core import DatasetSchema

    created = dt.datetime(2024, 5, 2, tzinfo=UTC)
    rows = rows_of(records(300, 4))
    ours = profiles.profile_bytes(rows, HOUR, CLASSES, created=created), \
        profiles.profile_view(rows, HOUR, CLASSES, created=created).serialize()
    monkeypatch.setattr(profiles, "_SCHEMA", DatasetSchema())
    assert (profiles.profile_bytes(rows, HOUR, CLASSES, created=created),
            profiles.profile_view(rows, HOUR, CLASSES, created=created).serialize()) == ours
