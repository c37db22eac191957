"""Deleted documents (a TTL index, a user): their reviews happened and stay counted; --rebuild refuses to erase
them unless --allow-shrink, and then the rebuilt hours equal a recount of what is left."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from clara.db import ensure_indexes
from clara.periods import HOUR
from clara.records import Record, parse_document
from clara.rollups import Counted, RollupDelta, day_bounds
from consumer.catchup import catch_up
from replay.cli import main
from replay.counted import CountedInRange
from tests.replay.conftest import recount, rollups, snapshot
from tests.support.documents import predictions
from tests.support.processes import start
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
STEP = dt.timedelta(minutes=10)


def counts_of(docs, n_classes: int, period: dt.timedelta = HOUR) -> dict[dt.datetime, dict[str, int]]:
    """What these documents' reviews add to each hour's rollup (the shape of `recount`)."""
    delta = RollupDelta()
    for doc in docs:
        record = parse_document(doc, n_classes)
        if isinstance(record, Record) and record.reviewed:
            delta.add(Counted.of(record, period))
    return dict(delta.updates())


def plus(*hours: dict[dt.datetime, dict[str, int]]) -> dict[dt.datetime, dict[str, int]]:
    total: dict[dt.datetime, Counter] = {}
    for counts in hours:
        for hour, inc in counts.items():
            total.setdefault(hour, Counter()).update(inc)
    return {hour: dict(+inc) for hour, inc in total.items() if +inc}


def within(counts: dict, start: dt.datetime, end: dt.datetime, inside: bool = True) -> dict:
    return {hour: inc for hour, inc in counts.items() if (start <= hour < end) == inside}


@pytest.fixture
def fast_ttl_monitor(mongo_client):
    """The TTL monitor passes every second instead of every minute (it takes effect after its current sleep)."""
    was = mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": 1})["was"]
    try:
        yield
    finally:
        mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": was})


def test_reviews_a_ttl_index_deleted_stay_counted_and_rebuild_will_not_erase_them(
        tmp_path, mongo_uri, mongo_client, collections, config, config_file, fast_ttl_monitor):
    zone = config.model.zone
    days = [dt.datetime.now(zone).date() - dt.timedelta(days=7 - i) for i in range(4)]   # four local days, a week ago
    start_at, _ = day_bounds(days[0], days[0], zone)
    day_1, day_3 = day_bounds(days[1], days[1], zone)[0], day_bounds(days[3], days[3], zone)[0]
    cutoff = day_1 + dt.timedelta(hours=12, minutes=1)   # the TTL index expires everything before it
    docs = predictions(4 * 144, start=start_at, step=STEP, reviewed_fraction=0.9)
    collections.source.insert_many(docs)
    deleted = [doc for doc in docs if doc["timestamp"].replace(tzinfo=UTC) < cutoff]
    reviewed = sum(1 for doc in docs if "output_validated" in doc)
    later = predictions(6, start=day_3 + dt.timedelta(hours=20), seed=5)

    with running_follower(mongo_client, collections, config, sinks=()):
        wait_for(lambda: collections.counted.count_documents({}) == reviewed, what="every review counted")
        # The deployment expires old predictions by a TTL index on timestamp, which also serves CLARA's queries.
        collections.source.drop_index("clara_timestamp")
        collections.source.create_index("timestamp", name="expire_predictions",
                                        expireAfterSeconds=int((dt.datetime.now(UTC) - cutoff).total_seconds()))
        ensure_indexes(collections)
        wait_for(lambda: collections.source.count_documents({"timestamp": {"$lt": cutoff}}) == 0, timeout=120,
                 interval=0.5, what="the TTL monitor to delete the old predictions")
        collections.source.insert_many(later)   # after the delete events: once counted, they were all seen
        wait_for(lambda: collections.counted.count_documents({}) == reviewed + len(later), what="later reviews")
    assert collections.source.count_documents({}) == len(docs) + len(later) - len(deleted)
    history = counts_of(deleted, config.n_classes)
    assert rollups(collections) == plus(recount(collections, config.n_classes), history)   # deletes kept their counts

    in_range = [doc for doc in deleted if "output_validated" in doc and doc["timestamp"].replace(tzinfo=UTC) >= day_1]
    hours = len({doc["timestamp"].replace(minute=0) for doc in in_range})
    refusal = (f"rebuild would remove {len(in_range)} reviews counted in {hours} hours over 1 day ({days[1]}, "
               f"Europe/Madrid) whose documents are gone (deleted, e.g. by a TTL index); their counts are history. "
               f"Pass --allow-shrink to rebuild anyway")
    path, log = config_file(local_store=False), tmp_path / "replay.log"
    rebuild = ["--rebuild", "--from", str(days[1]), "--to", str(days[2])]
    before = snapshot(collections)
    assert start("replay", path, mongo_uri, *rebuild, log_path=log).wait(timeout=120) == 2
    assert refusal in log.read_text()
    assert snapshot(collections) == before
    assert start("replay", path, mongo_uri, *rebuild, "--dry-run", log_path=log).wait(timeout=120) == 0
    assert f"gone: {len(in_range)} reviews counted in {hours} hours over 1 day ({days[1]}, Europe/Madrid) whose " \
           f"documents no longer exist" in log.read_text()
    assert snapshot(collections) == before

    assert start("replay", path, mongo_uri, *rebuild, "--allow-shrink", log_path=log).wait(timeout=120) == 0
    assert f"documents gone: 0 counts kept, {len(in_range)} dropped" in log.read_text()
    now, left = rollups(collections), recount(collections, config.n_classes)
    assert within(now, day_1, day_3) == within(left, day_1, day_3)
    assert within(now, day_1, day_3, inside=False) == within(plus(left, history), day_1, day_3, inside=False)
    entries, dropped = set(collections.counted.distinct("_id")), {doc["_id"] for doc in in_range}
    assert not entries & dropped
    assert {doc["_id"] for doc in deleted if "output_validated" in doc} - dropped <= entries   # history outside


def test_documents_deleted_after_the_check_keep_their_counts(collections, mongo_client, config, config_file,
                                                             replay_env, monkeypatch, capsys):
    start_at = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)
    collections.source.insert_many(predictions(300, start=start_at, step=STEP))
    catch_up(mongo_client, collections, config, sinks=())
    original = rollups(collections)
    gone = list(collections.source.find({"timestamp": {"$lt": start_at + dt.timedelta(hours=5)}}))
    collections.source.delete_many({"_id": {"$in": [doc["_id"] for doc in gone]}})
    # As if the deletes came between the check and the hours' transactions (a TTL pass while it runs).
    monkeypatch.setattr("replay.cli.check_counted", lambda cols, phase: CountedInRange())
    assert main(["--config", config_file(local_store=False), "--rebuild"]) == 0
    assert f"documents gone: {len(gone)} counts kept, 0 dropped" in capsys.readouterr().out
    assert rollups(collections) == original
    assert collections.counted.count_documents({}) == 300
