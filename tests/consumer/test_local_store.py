"""The local profile store: one whylogs-readable v1 file per prediction hour, with its classification metrics,
merged into, replaced atomically; and the hour views the drain builds from outbox entries (rows, old-format
profile bytes, or both)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import whylogs as why

from consumer.sinks import LocalProfileStore, OutboxEntry, PermanentSinkError
from consumer.sinks.local_store import MERGED_KEY, PERFORMANCE_KEY, read_hour, write_atomically
from consumer.sinks.profiles import hour_view
from tests.whylabs_fixture import outbox_document

HOUR = dt.datetime(2024, 5, 1, 13, tzinfo=dt.timezone.utc)
CLASSES = ["SIGRE", "blue", "brown", "green", "green_point", "grey", "yellow"]


def entry(batch_id: str = "b-1", hour: dt.datetime = HOUR, rows: int = 6, legacy: bool = False) -> OutboxEntry:
    return OutboxEntry.from_document(outbox_document(batch_id, hour, rows, legacy=legacy))


def view(*entries: OutboxEntry, performance: bool = False):
    built = hour_view(list(entries), entries[0].hour, CLASSES, performance=performance)
    assert not built.refused
    return built.view


def count(profile, column: str = "target") -> int:
    return profile.get_column(column).get_metric("counts").n.value


def test_one_file_per_hour_read_back_by_whylogs_with_counts_and_dataset_timestamp(tmp_path):
    store = LocalProfileStore(tmp_path)
    store.deliver(HOUR, view(entry()), ["b-1:20240501T13"])

    path = tmp_path / "2024-05-01" / "20240501T13.bin"
    assert store.path_for(HOUR) == path
    read = why.read(str(path)).view()
    assert read.dataset_timestamp == HOUR
    assert {"target", "prediction", "score", "review_latency_seconds"} <= set(read.get_columns())
    assert count(read) == 6 and count(read, "review_latency_seconds") == 6
    assert read.metadata[MERGED_KEY] == "b-1:20240501T13"


def test_deliveries_merge_into_the_hour_file_and_name_their_entries(tmp_path):
    store = LocalProfileStore(tmp_path)
    store.deliver(HOUR, view(entry("b-1", rows=6)), ["b-1:20240501T13"])
    assert store.held(HOUR) == {"b-1:20240501T13"}
    store.deliver(HOUR, view(entry("b-2", rows=4), entry("b-3", rows=5)), ["b-2:20240501T13", "b-3:20240501T13"])

    assert [p.name for p in tmp_path.rglob("*")] == ["2024-05-01", "20240501T13.bin"]
    read = why.read(str(store.path_for(HOUR))).view()
    assert count(read) == 15 and read.dataset_timestamp == HOUR
    assert store.held(HOUR) == {"b-2:20240501T13", "b-3:20240501T13"}   # only the last merge may be unacknowledged
    assert store.held(HOUR + dt.timedelta(hours=1)) == frozenset()


def test_hours_get_files_of_their_own_under_their_utc_date(tmp_path):
    store = LocalProfileStore(tmp_path)
    for hour in (HOUR, HOUR + dt.timedelta(hours=11), HOUR + dt.timedelta(hours=12)):
        store.deliver(hour, view(entry(hour=hour)), [f"b:{hour:%Y%m%dT%H}"])
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.bin")) == [
        "2024-05-01/20240501T13.bin", "2024-05-02/20240502T00.bin", "2024-05-02/20240502T01.bin"]


def test_an_unreadable_hour_file_is_a_permanent_error_and_left_alone(tmp_path):
    store = LocalProfileStore(tmp_path)
    path = store.path_for(HOUR)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"WHY1 but not a profile")
    with pytest.raises(PermanentSinkError, match="unreadable"):
        store.held(HOUR)
    assert path.read_bytes() == b"WHY1 but not a profile"


def test_old_format_entries_merge_with_rows_of_the_same_hour():
    built = hour_view([entry("new", rows=6), entry("old", rows=4, legacy=True)], HOUR, CLASSES, performance=True)
    assert [e.id for e in built.entries] == ["new:20240501T13", "old:20240501T13"] and not built.refused
    assert count(built.view) == 10 and built.view.dataset_timestamp == HOUR
    matrix = built.view.model_performance_metrics.confusion_matrix
    # Rows with a known true class: 6 new ones minus the one rejected without a class, and the 4 old ones.
    assert sum(metric.n for metric in matrix.confusion_matrix.values()) == 5 + 4


def test_an_unusable_entry_is_refused_alone():
    unreadable = OutboxEntry("bad:20240501T13", "bad", HOUR, 1, profile=b"not a profile")
    unknown_class = OutboxEntry("moved:20240501T13", "moved", HOUR, 1, columns={
        "predicted": [9], "truth": [1], "confidence": [0.5], "latency_seconds": [3.0]})
    built = hour_view([unreadable, entry(), unknown_class], HOUR, CLASSES, performance=False)
    assert [e.id for e in built.entries] == ["b-1:20240501T13"] and count(built.view) == 6
    reasons = dict((e.id, reason) for e, reason in built.refused)
    assert "unreadable whylogs profile" in reasons["bad:20240501T13"]
    assert "outside model.classes" in reasons["moved:20240501T13"]


def cells(profile) -> dict[tuple[str, str], int]:
    """The confusion matrix's non-empty cells as (predicted, true) class names -> count."""
    matrix = profile.model_performance_metrics.confusion_matrix
    return {(matrix.labels[p], matrix.labels[t]): metric.n
            for (p, t), metric in matrix.confusion_matrix.items() if metric is not None and metric.n}


def expected_cells(*entries: OutboxEntry) -> Counter:
    return Counter((CLASSES[p], CLASSES[t]) for e in entries
                   for p, t in zip(e.columns["predicted"], e.columns["truth"]) if t is not None)


def test_the_hour_file_keeps_the_classification_metrics_of_every_delivery(tmp_path):
    store = LocalProfileStore(tmp_path)
    first, second, third = entry("b-1", rows=6), entry("b-2", rows=13), entry("b-3", rows=2)
    store.deliver(HOUR, view(first, performance=True), [first.id])
    store.deliver(HOUR, view(second, third, performance=True), [second.id, third.id])

    path = store.path_for(HOUR)
    plain = why.read(str(path)).view()   # still a v1 file that whylogs.read opens, metrics in its metadata
    assert count(plain) == 21 and plain.model_performance_metrics is None and PERFORMANCE_KEY in plain.metadata
    read = read_hour(path)
    assert cells(read) == expected_cells(first, second, third) and sum(cells(read).values()) == 5 + 11 + 2
    assert PERFORMANCE_KEY not in read.metadata and read.metadata[MERGED_KEY] == "b-2:20240501T13\nb-3:20240501T13"
    assert store.held(HOUR) == {second.id, third.id}


def test_an_hour_file_written_before_the_metrics_were_kept_is_merged_into(tmp_path):
    store = LocalProfileStore(tmp_path)
    old, new = entry("old", rows=6), entry("new", rows=4)
    before = view(old)   # what the store wrote before: a v1 file without classification metrics
    before.metadata[MERGED_KEY] = old.id
    write_atomically(store.path_for(HOUR), before.serialize())
    assert store.held(HOUR) == {old.id} and read_hour(store.path_for(HOUR)).model_performance_metrics is None

    store.deliver(HOUR, view(new, performance=True), [new.id])
    read = read_hour(store.path_for(HOUR))
    assert count(read) == 10 and read.get_column("target").get_metric("counts").null.value == 1   # one old rejection
    assert cells(read) == expected_cells(new)   # the old rows' matrix was never recorded
    assert store.held(HOUR) == {new.id}


def test_unreadable_classification_metrics_are_a_permanent_error_and_left_alone(tmp_path):
    store = LocalProfileStore(tmp_path)
    broken = view(entry("b-1"))
    broken.metadata[PERFORMANCE_KEY] = "not base64 at all!"
    write_atomically(store.path_for(HOUR), broken.serialize())
    data = store.path_for(HOUR).read_bytes()
    with pytest.raises(PermanentSinkError, match="classification metrics"):
        store.deliver(HOUR, view(entry("b-2"), performance=True), ["b-2:20240501T13"])
    assert store.path_for(HOUR).read_bytes() == data
