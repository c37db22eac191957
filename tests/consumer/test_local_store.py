"""The local profile store: whylogs-readable v1 files, one per outbox entry, written atomically."""

from __future__ import annotations

import datetime as dt

import pytest
import whylogs as why

from consumer.sinks import LocalProfileStore, OutboxEntry, PermanentSinkError

HOUR = dt.datetime(2024, 5, 1, 13, tzinfo=dt.timezone.utc)


def entry(outbox_entry, batch_id="b-1", hour=HOUR, rows=6) -> OutboxEntry:
    return OutboxEntry.from_document(outbox_entry(batch_id, hour, rows))


def test_file_reads_back_with_whylogs_with_counts_and_dataset_timestamp(tmp_path, outbox_entry):
    store = LocalProfileStore(tmp_path)
    item = entry(outbox_entry)
    store.deliver(item)

    path = tmp_path / "2024-05-01" / "b-1_20240501T13.bin"
    view = why.read(str(path)).view()
    assert view.dataset_timestamp == HOUR
    assert {"target", "prediction", "score"} <= set(view.get_columns())
    assert view.get_column("target").get_metric("counts").n.value == 6


def test_redelivery_replaces_the_same_file(tmp_path, outbox_entry):
    store = LocalProfileStore(tmp_path)
    item = entry(outbox_entry)
    store.deliver(item)
    store.deliver(item)

    assert [p.name for p in tmp_path.rglob("*")] == ["2024-05-01", "b-1_20240501T13.bin"]


def test_names_are_one_to_one_with_entry_ids(tmp_path, outbox_entry):
    store = LocalProfileStore(tmp_path)
    ids = ["a_b:20240501T13", "a:b_20240501T13", "a/b:20240501T13", "a%2Fb:20240501T13"]
    paths = {store.path_for(OutboxEntry(i, i.rpartition(":")[0], HOUR, b"", 0)) for i in ids}
    assert len(paths) == len(ids)
    assert all(p.parent == tmp_path / "2024-05-01" for p in paths)


def test_unreadable_profile_is_refused_for_good(tmp_path):
    with pytest.raises(PermanentSinkError, match="unreadable whylogs profile"):
        LocalProfileStore(tmp_path).deliver(OutboxEntry("b:20240501T13", "b", HOUR, b"not a profile", 1))
    assert not list(tmp_path.rglob("*.bin"))
