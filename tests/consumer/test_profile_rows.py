"""From batch to profile store through the real pipeline: the transaction queues rows and builds no profile;
the drain merges many batches into one file per hour."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import bson
import whylogs as why
from whylogs.core import DatasetProfile

from consumer.catchup import catch_up
from consumer.sinks import build_sinks, deliver_pending
from tests.support.documents import predictions

UTC = dt.timezone.utc
START = dt.datetime(2026, 2, 1, tzinfo=UTC)


def test_a_batch_over_1000_hours_queues_rows_and_builds_no_profile_in_its_transaction(
        monkeypatch, make_config, mongo_client, collections):
    config = make_config(consumer={"catchup_batch_size": 1000})
    docs = predictions(1000, start=START, step=dt.timedelta(hours=1), legacy_fraction=0.2)
    collections.source.insert_many(docs)

    def no_profiles(*args, **kwargs):
        raise AssertionError("a whylogs profile was built inside the batch's transaction")

    monkeypatch.setattr(DatasetProfile, "__init__", no_profiles)
    result = catch_up(mongo_client, collections, config)
    monkeypatch.undo()

    assert result.batches == 1 and result.profiles == 1000
    entries = list(collections.outbox.find().sort("hour", 1))
    assert len(entries) == 1000 and {e["rows"] for e in entries} == {1}
    assert all("profile" not in e for e in entries)
    assert max(len(bson.encode(e)) for e in entries) < 600   # numbers, not profiles or class names
    source = {doc["timestamp"].replace(tzinfo=UTC): doc for doc in collections.source.find()}
    for entry in entries:
        doc = source[entry["hour"]]
        truth = doc["output_validated"]
        truth = doc["output_prediction"] if truth is True else None if truth is False else truth
        latency = (doc["timestamp_validated"] - doc["timestamp"]).total_seconds()
        assert entry["columns"] == {"predicted": [doc["output_prediction"]], "truth": [truth],
                                    "confidence": [doc["output_confidence"]], "latency_seconds": [latency]}


def test_fifty_live_batches_over_three_hours_make_one_file_per_hour(
        make_config, mongo_client, collections, whylabs_config, fake_whylabs):
    config = make_config(consumer={"catchup_batch_size": 3}, profiles={"local_store_interval_seconds": 0.0})
    docs = predictions(150, start=START, step=dt.timedelta(seconds=72), legacy_fraction=0.2)
    collections.source.insert_many(docs)
    sinks = build_sinks(whylabs_config)
    drained = []

    def drain(_batch) -> None:  # what the delivery worker does when a batch wakes it
        drained.append(deliver_pending(collections, whylabs_config, sinks))

    result = catch_up(mongo_client, collections, config, sinks=("local", "whylabs"), on_batch=drain)

    assert result.batches == 50 and collections.outbox.count_documents({}) == 0
    store = Path(config.profiles.local_store_dir)
    files = sorted(p for p in store.rglob("*") if p.is_file())
    assert [str(p.relative_to(store)) for p in files] == [
        "2026-02-01/20260201T00.bin", "2026-02-01/20260201T01.bin", "2026-02-01/20260201T02.bin"]
    expected = defaultdict(list)
    for doc in docs:
        expected[doc["timestamp"].replace(tzinfo=UTC, minute=0, second=0)].append(doc["output_confidence"])
    for path in files:
        view = why.read(str(path)).view()
        scores = expected[view.dataset_timestamp]
        summary = view.get_column("score").to_summary_dict()
        assert summary["counts/n"] == len(scores) == collections.rollups.find_one(
            {"_id": view.dataset_timestamp})["reviews"]
        assert (summary["distribution/min"], summary["distribution/max"]) == (min(scores), max(scores))
    # WhyLabs: one upload per hour per drain, never one per entry.
    assert len(fake_whylabs.uploads) == sum(d.profiles.get("whylabs", 0) for d in drained) < 50 + 3
    assert sum(d.delivered.get("whylabs", 0) for d in drained) == 50 + 2   # two batches straddle an hour
