"""The follower on a real replica set: live reviews, its own writes filtered, history lost, polling."""

from __future__ import annotations

import datetime as dt
import threading

from pymongo.write_concern import WriteConcern

from clara.config import config_from_mapping
from clara.db import Collections, connect
from clara.embedded_mongo import EmbeddedMongo
from consumer.batch import CONSUMER_STATE_ID
from consumer.catchup import catch_up
from consumer.stream import EVENTS, Follower
from tests.support.audit import assert_exactly_once, rollup_cells
from tests.support.documents import predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def total_reviews(cols) -> int:
    return rollup_cells(cols)[2]


def test_catches_up_then_follows_live_reviews(collections, mongo_client, config):
    backlog = predictions(40, start=START)
    collections.source.insert_many(backlog)
    pending = predictions(30, start=START + dt.timedelta(days=1), seed=2, reviewed_fraction=0.0)
    ids = collections.source.insert_many(pending).inserted_ids
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == 40, what="the backlog")
        for i, doc_id in enumerate(ids):
            collections.source.update_one({"_id": doc_id}, {"$set": {"output_validated": i % 7,
                                                                    "timestamp_validated": dt.datetime.now(UTC)}})
        wait_for(lambda: total_reviews(collections) == 70, what="the live reviews")
        collections.source.update_one({"_id": ids[0]}, {"$set": {"output_validated": 6}})
        wait_for(lambda: rollup_cells(collections)[0].get((6, pending[0]["output_prediction"]), 0) >= 1,
                 what="the correction")
    assert_exactly_once(collections, config.n_classes)
    state = collections.state.find_one({"_id": CONSUMER_STATE_ID})
    assert state["resume_token"] and state["last_batch"]["size"] >= 1


def test_a_fresh_stream_starts_where_the_catch_up_scan_stops_seeing(collections, mongo_client, config):
    # Seen in the load test: a writer's first review, inserted as the consumer started, was never counted.
    # It was applied but not yet majority-committed: invisible to the catch-up's majority reads, and
    # before the start of a stream opened "now". disableSnapshotting holds that window open at will.
    admin = mongo_client.admin
    follower = Follower(mongo_client, collections, config, (), threading.Event())
    admin.command("configureFailPoint", "disableSnapshotting", mode="alwaysOn")
    try:
        late = predictions(1, start=START, reviewed_fraction=1.0)[0]
        collections.source.with_options(write_concern=WriteConcern(w=1)).insert_one(late)
        with follower._open(None) as stream:
            assert catch_up(mongo_client, collections, config, sinks=()).documents == 0   # the scan cannot see it
            admin.command("configureFailPoint", "disableSnapshotting", mode="off")
            event = wait_for(stream.try_next, what="the review's insert event")
    finally:
        admin.command("configureFailPoint", "disableSnapshotting", mode="off")
    assert event["documentKey"]["_id"] == late["_id"]


def test_its_own_writes_do_not_come_back_through_the_stream(collections, mongo_client, config):
    with collections.source.watch(EVENTS) as watcher:
        with running_follower(mongo_client, collections, config):
            collections.source.insert_many(predictions(10, start=START))
            wait_for(lambda: collections.source.count_documents({"logged": True}) == 10, what="logging")
        events = []
        while (event := watcher.try_next()) is not None:
            events.append(event)
    assert [e["operationType"] for e in events] == ["insert"] * 10


def test_idle_stream_still_advances_the_checkpoint(collections, mongo_client, make_config):
    config = make_config(consumer={"checkpoint_idle_seconds": 0.2, "batch_max_seconds": 0.05})
    with running_follower(mongo_client, collections, config):
        first = wait_for(lambda: (collections.state.find_one({"_id": CONSUMER_STATE_ID}) or {}).get("checkpoint_at"))
        wait_for(lambda: collections.state.find_one({"_id": CONSUMER_STATE_ID})["checkpoint_at"] > first,
                 what="a later idle checkpoint")


def test_a_stale_resume_token_takes_the_history_lost_path(collections, mongo_client, config, caplog):
    with collections.source.watch() as stream:
        collections.source.insert_one({"x": 1})
        stream.try_next()
        real = stream.resume_token["_data"]
    # Same token shape, but from 1970: far older than anything the oplog holds.
    stale = {"_data": real[:2] + "00000001" + real[10:]}
    collections.state.insert_one({"_id": CONSUMER_STATE_ID, "resume_token": stale})
    collections.source.delete_many({})
    collections.source.insert_many(predictions(25, start=START))
    with caplog.at_level("WARNING"), running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == 25, what="the re-scan")
        collections.source.insert_many(predictions(5, start=START, seed=9))
        wait_for(lambda: total_reviews(collections) == 30, what="reviews on the fresh stream")
    assert "history lost" in caplog.text
    assert_exactly_once(collections, config.n_classes)
    assert collections.state.find_one({"_id": CONSUMER_STATE_ID})["resume_token"] != stale


def test_a_standalone_server_falls_back_to_polling(tmp_path, caplog):
    with EmbeddedMongo(tmp_path / "standalone", replica_set=None) as mongo:
        config = config_from_mapping({"consumer": {"poll_interval_seconds": 0.1},
                                      "profiles": {"local_store_dir": str(tmp_path / "profiles")}},
                                     {"MONGODB_URI": mongo.uri}, source="test")
        client = connect(config)
        cols = Collections.of(client, config)
        cols.source.insert_many(predictions(20, start=START))
        with caplog.at_level("WARNING"), running_follower(client, cols, config):
            wait_for(lambda: total_reviews(cols) == 20, what="the first poll")
            cols.source.insert_many(predictions(7, start=START, seed=3))
            wait_for(lambda: total_reviews(cols) == 27, what="the next poll")
        assert "not a replica set" in caplog.text
        assert_exactly_once(cols, config.n_classes)
        assert cols.outbox.count_documents({}) > 0 and cols.outbox.find_one()["columns"]["predicted"]
        client.close()


def test_an_interrupted_standalone_batch_is_finished_from_its_journal(tmp_path):
    from consumer import standalone

    with EmbeddedMongo(tmp_path / "standalone", replica_set=None) as mongo:
        config = config_from_mapping({}, {"MONGODB_URI": mongo.uri}, source="test")
        client = connect(config)
        cols = Collections.of(client, config)
        cols.source.insert_many(predictions(12, start=START))
        real_apply = standalone._apply_journal
        crashed = threading.Event()

        def crash_midway(cols_, journal):
            crashed.set()
            raise KeyboardInterrupt  # as if killed after the journal was written

        standalone._apply_journal = crash_midway
        try:
            try:
                standalone.commit_batch_journaled(client, cols, config, cols.source.distinct("_id"), sinks=("local",))
            except KeyboardInterrupt:
                pass
        finally:
            standalone._apply_journal = real_apply
        assert crashed.is_set() and total_reviews(cols) == 0
        assert standalone.recover_journals(cols) == 1
        assert standalone.recover_journals(cols) == 0
        assert_exactly_once(cols, config.n_classes)
        client.close()
