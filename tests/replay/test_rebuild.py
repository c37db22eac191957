"""--rebuild: whole hours of the range recounted from the documents, replacing what was there."""

from __future__ import annotations

import datetime as dt
import random
import threading

from bson import CodecOptions
from bson.raw_bson import RawBSONDocument

from clara.db import CONSUMER_STATE_ID, Collections, ensure_indexes
from consumer.catchup import catch_up
from consumer.migrate import MIGRATIONS_ID
import replay.run
from replay.cli import main
from replay.run import hour_groups
from tests.replay.conftest import recount, rollups
from tests.support.audit import assert_exactly_once
from tests.support.documents import predictions
from tests.support.processes import write_config
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


def test_rebuild_writes_only_the_counted_entries_that_disagree(collections, mongo_client, config, config_file,
                                                              replay_env):
    collections.source.insert_many(predictions(300, start=START, step=dt.timedelta(minutes=10), reviewed_fraction=0.9))
    catch_up(mongo_client, collections, config)
    stale, older, replaced = collections.counted.find({}, {"_id": 1}).sort("_id", 1).limit(3)
    collections.counted.update_one({"_id": stale["_id"]}, {"$inc": {"confidence_micros": 1}})
    collections.counted.delete_one({"_id": older["_id"]})   # marked `logged` by an older logger: no entry
    collections.source.update_one({"_id": replaced["_id"]}, {"$unset": {"logged": "", "logged_at": ""}})  # an ODM save
    marked_at = {d["_id"]: d["logged_at"] for d in collections.source.find({"logged": True}, {"logged_at": 1})}
    entered_at = {d["_id"]: d["at"] for d in collections.counted.find({}, {"at": 1})}

    assert main(["--config", config_file(local_store=False), "--rebuild"]) == 0

    now = {d["_id"]: d["logged_at"] for d in collections.source.find({"logged": True}, {"logged_at": 1})}
    assert now.keys() == marked_at.keys() | {replaced["_id"]}
    assert {doc_id for doc_id in marked_at if now[doc_id] != marked_at[doc_id]} == {stale["_id"], older["_id"]}
    entries = {d["_id"]: d["at"] for d in collections.counted.find({}, {"at": 1})}
    assert entries.keys() == entered_at.keys() | {older["_id"]}
    assert {doc_id for doc_id in entries if entries[doc_id] != entered_at.get(doc_id)} == {stale["_id"], older["_id"]}
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)


def test_without_source_markers_a_rebuild_never_writes_to_the_models_documents(collections, mongo_client, make_config,
                                                                               config_file, replay_env):
    config = make_config(consumer={"mark_source": False})
    collections.source.insert_many(predictions(200, start=START, step=dt.timedelta(minutes=15), reviewed_fraction=0.8))
    catch_up(mongo_client, collections, config)
    some = collections.counted.find_one()
    collections.counted.update_one({"_id": some["_id"]}, {"$set": {"truth": None}})   # wrong: the rebuild fixes it
    corrupt(collections, START + dt.timedelta(hours=3))
    raw = collections.source.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    before = {doc["_id"]: doc.raw for doc in raw.find()}

    assert main(["--config", config_file(mark_source=False), "--rebuild"]) == 0

    assert {doc["_id"]: doc.raw for doc in raw.find()} == before
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes, marked=False)


def test_a_database_the_previous_version_left_is_migrated_first(collections, mongo_client, config, config_file,
                                                                replay_env, capsys):
    collections.source.insert_many(predictions(120, start=START, step=dt.timedelta(minutes=25)))
    catch_up(mongo_client, collections, config)
    original = rollups(collections)
    for entry in collections.counted.find():   # as the previous version left them: snapshots on the documents
        snapshot = {k: entry[k] for k in ("hour", "predicted", "truth", "confidence_micros", "latency_ms")}
        collections.source.update_one({"_id": entry["_id"]}, {"$set": {"logged_as": snapshot}})
    collections.counted.drop()
    collections.state.delete_one({"_id": MIGRATIONS_ID})
    corrupt(collections, START + dt.timedelta(hours=2))

    assert main(["--config", config_file(), "--rebuild", "--dry-run"]) == 0
    assert "migrate first: 120 documents carry the previous version's logged_as snapshot" in capsys.readouterr().out
    assert main(["--config", config_file(), "--rebuild"]) == 0
    assert "counted: 0 new, 0 corrected, 120 recounted" in capsys.readouterr().out   # nothing counted anew
    assert collections.outbox.count_documents({"batch_id": {"$regex": "^replay-"}}) == 0
    assert collections.source.count_documents({"logged_as": {"$exists": True}}) == 0
    assert rollups(collections) == original
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
                                                                           config_file, replay_env, capsys):
    collections.source.insert_many(predictions(100, start=START, step=dt.timedelta(minutes=20)))
    catch_up(mongo_client, collections, config)
    out_of_range = collections.source.find_one({"timestamp": {"$gte": LOCAL_DAY_2[0]}})
    into_range = collections.source.find_one({"timestamp": {"$lt": LOCAL_DAY_2[0]}})
    collections.source.update_one({"_id": out_of_range["_id"]}, {"$set": {"timestamp": START + dt.timedelta(days=5)}})
    collections.source.update_one({"_id": into_range["_id"]},
                                  {"$set": {"timestamp": LOCAL_DAY_2[0] + dt.timedelta(hours=2, minutes=7)}})
    day_2 = ["--rebuild", "--from", "2026-03-11", "--to", "2026-03-11"]
    assert main(["--config", config_file(), *day_2, "--dry-run"]) == 0
    assert "move: 1 documents counted in a rebuilt hour but now predicted outside the rebuilt hours" in \
        capsys.readouterr().out
    assert main(["--config", config_file(), *day_2]) == 0
    assert "moved to another hour: 1;" in capsys.readouterr().out
    assert rollups(collections) == recount(collections, config.n_classes)   # taken back from its old hour too
    assert collections.counted.find_one({"_id": out_of_range["_id"]})["hour"] == START + dt.timedelta(days=5)
    # catch_up counts reviews only: the prediction rollups hold just the rebuilt hours' predictions
    assert_exactly_once(collections, config.n_classes, predictions=False)


def test_moves_the_consumer_has_not_read_yet_are_counted_once(collections, mongo_client, config, config_file,
                                                             replay_env):
    collections.source.insert_many(predictions(200, start=START, step=dt.timedelta(minutes=20)))
    with running_follower(mongo_client, collections, config, sinks=()):
        wait_for(lambda: collections.counted.count_documents({}) == 200, what="every review counted")
        counted_at = dt.datetime.now(UTC)
        wait_for(lambda: (collections.state.find_one({"_id": CONSUMER_STATE_ID}) or {}).get(
            "checkpoint_at", counted_at) > counted_at, what="a checkpoint after the catch-up")
    # While the consumer lags (here: is stopped), writers move prediction times into and out of the rebuilt day ...
    day_2 = {"timestamp": {"$gte": LOCAL_DAY_2[0], "$lt": LOCAL_DAY_2[1]}}
    for doc in collections.source.find(day_2).limit(3):
        collections.source.update_one({"_id": doc["_id"]}, {"$set": {"timestamp": START + dt.timedelta(days=3)}})
    into_day_2 = LOCAL_DAY_2[0] + dt.timedelta(hours=4)
    for doc in collections.source.find({"timestamp": {"$lt": LOCAL_DAY_2[0]}}).limit(3):
        collections.source.update_one({"_id": doc["_id"]}, {"$set": {"timestamp": into_day_2}})
    assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-11", "--to", "2026-03-11"]) == 0
    # ... and then reads their change events: the rebuild already counted each move, exactly once.
    late = predictions(1, start=START + dt.timedelta(days=4), seed=3)
    with running_follower(mongo_client, collections, config, sinks=()):
        collections.source.insert_many(late)
        wait_for(lambda: collections.counted.find_one({"_id": late[0]["_id"]}), what="the events after the moves")
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes, predictions=False)   # predictions stay where inserted


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
            update = {"output_validated": rng.choice([rng.randrange(config.n_classes), True, False, None])}
            if rng.random() < 0.1:     # a writer moves the prediction time, into or out of the rebuilt days
                update["timestamp"] = START + dt.timedelta(minutes=rng.randrange(-600, 58 * 60))
            collections.source.update_one({"_id": doc["_id"]}, {"$set": update})
            writes.append(doc["_id"])

    with running_follower(mongo_client, collections, config):
        wait_for(lambda: collections.source.count_documents({"logged": True}) > 0, what="the follower to start")
        reviewer = threading.Thread(target=review, daemon=True)
        reviewer.start()
        try:
            runs = 0   # at least two rebuilds, and as many as it takes for the reviewers to write meanwhile
            while runs < 2 or (len(writes) <= 100 and runs < 20):
                # --allow-shrink: predictions the reviewers move out of the range leave its prediction counts
                assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-10", "--to", "2026-03-11",
                             "--allow-shrink"]) == 0
                runs += 1
        finally:
            done.set()
            reviewer.join()
        wait_for(lambda: rollups(collections) == recount(collections, config.n_classes), timeout=60,
                 what="the follower to count the last reviews")
    assert len(writes) > 100
    assert_exactly_once(collections, config.n_classes, predictions=False)   # predictions stay where inserted


def test_a_group_of_hours_that_cannot_commit_in_time_is_split_down_to_single_hours(
        collections, mongo_client, config, config_file, replay_env, monkeypatch, capsys):
    """Beside a consumer writing to its hours all the time, a large group's transaction keeps restarting (the
    live-consumer test above met it for the 120 s with_transaction allows, then failed). Here every group of
    several hours runs out of its patience at once: the rebuild still replaces every hour, exactly, in
    single-hour transactions."""
    docs = predictions(600, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.8)
    collections.source.insert_many(docs)
    catch_up(mongo_client, collections, config)
    original = rollups(collections)
    corrupt(collections, START + dt.timedelta(hours=30))
    monkeypatch.setattr(replay.run, "GROUP_PATIENCE_SECONDS", 0.0001)

    assert main(["--config", config_file(), "--rebuild", "--from", "2026-03-10", "--to", "2026-03-11"]) == 0
    assert rollups(collections) == original == recount(collections, config.n_classes)
    assert "did not commit in 0.0001 s" in capsys.readouterr().err
    assert_exactly_once(collections, config.n_classes, predictions=False)   # no consumer counted the inserts


def test_rebuild_in_a_quarter_hour_zone_replaces_every_period_of_its_hours(
        mongo_client, make_config, tmp_path, replay_env, capsys):
    """Asia/Kathmandu (+05:45) keeps 15-minute rollups: a rebuilt hour replaces its four periods, and a
    counted entry's period is taken back in its own hour."""
    config = make_config(model={"timezone": "Asia/Kathmandu"})
    collections = Collections.of(mongo_client, config)
    ensure_indexes(collections)
    collections.source.insert_many(predictions(600, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.8))
    catch_up(mongo_client, collections, config)
    original = rollups(collections)
    period = config.model.rollup_period
    assert period == dt.timedelta(minutes=15) and any(hour.minute == 45 for hour in original)
    inside = dt.datetime(2026, 3, 10, 20, 45, tzinfo=UTC)
    corrupt(collections, inside)
    collections.rollups.delete_one({"_id": inside + period})
    path = write_config(tmp_path / "kathmandu.toml", {"mongodb": {"database": config.mongodb.database},
                                                      "model": {"timezone": "Asia/Kathmandu"},
                                                      "profiles": {"local_store": False}})
    assert main(["--config", str(path), "--rebuild", "--from", "2026-03-10T20:00Z", "--to", "2026-03-10T22:00Z"]) == 0
    assert "2 rebuilt hours" in capsys.readouterr().out
    assert rollups(collections) == original == recount(collections, config.n_classes, period=period)
    # catch_up counts reviews only: the prediction rollups hold just the rebuilt hours' predictions
    assert_exactly_once(collections, config.n_classes, predictions=False)
