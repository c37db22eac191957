"""--rebuild: whole hours of the range recounted from the documents, replacing what was there."""

from __future__ import annotations

import datetime as dt
import random
import threading

from consumer.catchup import catch_up
from replay.cli import main
from replay.run import hour_groups
from tests.replay.conftest import recount, rollups
from tests.support.audit import assert_exactly_once
from tests.support.documents import predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)   # local midnight of 2026-03-10 in Europe/Madrid
LOCAL_DAY_2 = (START + dt.timedelta(days=1), START + dt.timedelta(days=2))


def corrupt(collections, hour, by=3):
    collections.rollups.update_one({"_id": hour}, {"$inc": {"reviews": by, "cells.1_1": by}}, upsert=True)


def test_rebuild_gives_back_the_original_rollups(collections, mongo_client, config, config_file, replay_env, capsys):
    docs = predictions(900, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.85, legacy_fraction=0.2)
    docs[10]["output_confidence"] = 7.5                                          # set aside
    collections.source.insert_many(docs)
    catch_up(mongo_client, collections, config)
    original = rollups(collections)
    inside, outside = LOCAL_DAY_2[0] + dt.timedelta(hours=5), START + dt.timedelta(hours=5)
    corrupt(collections, inside)
    corrupt(collections, outside)
    collections.rollups.delete_one({"_id": inside + dt.timedelta(hours=1)})
    corrupt(collections, LOCAL_DAY_2[1] - dt.timedelta(hours=1))                 # an hour with no reviews yet

    assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-11", "--to", "2026-03-11"]) == 0
    assert "24 rebuilt hours" in capsys.readouterr().out
    now = rollups(collections)
    day_2 = {h: v for h, v in original.items() if LOCAL_DAY_2[0] <= h < LOCAL_DAY_2[1]}
    assert {h: v for h, v in now.items() if LOCAL_DAY_2[0] <= h < LOCAL_DAY_2[1]} == day_2
    assert now[outside]["reviews"] == original[outside]["reviews"] + 3           # outside the range: untouched

    assert main(["--config", config_file(), "--rebuild"]) == 0
    assert rollups(collections) == original == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)


def test_hours_share_a_transaction_up_to_the_batch_size_and_are_never_split():
    hours = {START + dt.timedelta(hours=i): n for i, n in enumerate([300, 0, 400, 200, 1500, 0, 0, 100, 999])}
    groups = list(hour_groups(hours, 1000))
    assert [[hours[h] for h in group] for group in groups] == [[300, 0, 400, 200], [1500, 0, 0], [100], [999]]
    assert [h for group in groups for h in group] == list(hours)


def test_rebuild_writes_only_the_documents_whose_marker_is_stale(collections, mongo_client, config, config_file,
                                                               replay_env):
    collections.source.insert_many(predictions(300, start=START, step=dt.timedelta(minutes=10), reviewed_fraction=0.9))
    catch_up(mongo_client, collections, config)
    stale, older = collections.source.find({"logged": True}, {"_id": 1}).sort("_id", 1).limit(2)
    collections.source.update_one({"_id": stale["_id"]}, {"$inc": {"logged_as.confidence_micros": 1}})
    collections.source.update_one({"_id": older["_id"]}, {"$unset": {"logged_as": ""}})   # marked by an older logger
    marked_at = {d["_id"]: d["logged_at"] for d in collections.source.find({"logged": True}, {"logged_at": 1})}

    assert main(["--config", config_file(local_store=False), "--rebuild"]) == 0

    now = {d["_id"]: d["logged_at"] for d in collections.source.find({"logged": True}, {"logged_at": 1})}
    assert now.keys() == marked_at.keys()
    assert {doc_id for doc_id in now if now[doc_id] != marked_at[doc_id]} == {stale["_id"], older["_id"]}
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)


def test_partial_hours_are_only_backfilled(collections, mongo_client, config, config_file, replay_env):
    collections.source.insert_many(predictions(60, start=START, step=dt.timedelta(minutes=6)))   # 6 hours
    catch_up(mongo_client, collections, config)
    late = predictions(12, start=START + dt.timedelta(minutes=1), step=dt.timedelta(minutes=30), seed=9)
    collections.source.insert_many(late)                                                         # missed
    for hour in range(6):
        corrupt(collections, START + dt.timedelta(hours=hour))
    # 00:30 to 03:30 local: whole hours 01, 02 local are rebuilt; 00:30-01:00 and 03:00-03:30 backfilled only
    assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-10T00:30", "--to", "2026-03-10T03:30"]) == 0
    expected = recount(collections, config.n_classes, {"logged": True})
    now = rollups(collections)
    for hour in range(6):
        at = START + dt.timedelta(hours=hour)
        assert now[at]["reviews"] == expected[at]["reviews"] + (0 if hour in (1, 2) else 3), hour
    minutes = [(d["timestamp"].replace(tzinfo=UTC) - START) / dt.timedelta(minutes=1) for d in late]
    edge_docs = [d for d, m in zip(late, minutes, strict=True) if 30 <= m < 60 or 180 <= m < 210]
    assert edge_docs and all(collections.source.find_one({"_id": d["_id"]})["logged"] for d in edge_docs)


def test_a_document_whose_prediction_time_moved_is_counted_in_its_new_hour(collections, mongo_client, config,
                                                                           config_file, replay_env):
    collections.source.insert_many(predictions(100, start=START, step=dt.timedelta(minutes=20)))
    catch_up(mongo_client, collections, config)
    moved = collections.source.find_one({"timestamp": {"$gte": LOCAL_DAY_2[0]}})
    collections.source.update_one({"_id": moved["_id"]}, {"$set": {"timestamp": START + dt.timedelta(days=5)}})
    assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-11", "--to", "2026-03-11"]) == 0
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)


def test_rebuild_beside_a_live_consumer_counts_every_review_once(collections, mongo_client, config, config_file,
                                                                 replay_env):
    docs = predictions(2000, start=START, step=dt.timedelta(minutes=2), reviewed_fraction=0.6, legacy_fraction=0.1)
    collections.source.insert_many(docs)
    rng = random.Random(3)
    done = threading.Event()
    writes = []

    def review() -> None:          # reviewers keep confirming and correcting predictions of the rebuilt range
        while not done.is_set():
            doc = rng.choice(docs)
            value = rng.choice([rng.randrange(config.n_classes), True, False, None])
            collections.source.update_one({"_id": doc["_id"]}, {"$set": {"output_validated": value}})
            writes.append(doc["_id"])

    with running_follower(mongo_client, collections, config):
        wait_for(lambda: collections.source.count_documents({"logged": True}) > 0, what="the follower to start")
        reviewer = threading.Thread(target=review, daemon=True)
        reviewer.start()
        try:
            for _ in range(2):
                assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-10", "--to", "2026-03-11"]) == 0
        finally:
            done.set()
            reviewer.join()
        wait_for(lambda: rollups(collections) == recount(collections, config.n_classes), timeout=60,
                 what="the follower to count the last reviews")
    assert len(writes) > 100
    assert_exactly_once(collections, config.n_classes)
