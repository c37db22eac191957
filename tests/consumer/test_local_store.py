"""The local profile store: one whylogs-readable v1 file per prediction hour, merged into, replaced atomically;
and the hour views the drain builds from outbox entries (rows, old-format profile bytes, or both)."""

from __future__ import annotations

import datetime as dt

import pytest
import whylogs as why

from consumer.sinks import LocalProfileStore, OutboxEntry, PermanentSinkError
from consumer.sinks.local_store import MERGED_KEY
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
