"""Every prediction counted once at insert: from the stream, from a recount, never twice, nothing written to it."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import struct
import threading
from collections import Counter

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from clara.db import Collections, ensure_indexes
from clara.periods import period_start
from clara.predictions import predictions_by_day
from clara.rollups import totals_by_day
from consumer.batch import CONSUMER_STATE_ID
from consumer.predictions import STATE_ID
from tests.support.audit import assert_exactly_once, assert_predictions_exact, rollup_predictions
from tests.support.documents import prediction, predictions
from tests.support.processes import start, write_config
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 27, 20, 0, tzinfo=UTC)   # across Europe/Madrid's change to summer time


def total_predictions(cols) -> int:
    return rollup_predictions(cols)[2]


def unreviewed(n: int, *, start: dt.datetime, seed: int) -> list[dict]:
    return predictions(n, start=start, seed=seed, reviewed_fraction=0.0)


def bad_ones(start: dt.datetime) -> list[dict]:
    return [prediction(900, at=start) | {"output_prediction": 42},         # unknown class: bad, in its hour
            prediction(901, at=start, reviewed=False) | {"output_confidence": 1.5},
            prediction(902, at=start) | {"timestamp": "yesterday"}]        # no prediction time: in no hour


def test_a_collection_new_to_clara_is_recounted_while_live_inserts_are_counted(collections, mongo_client, config):
    collections.source.insert_many(predictions(400, start=START, reviewed_fraction=0.3) + bad_ones(START))
    writing = threading.Event()

    def write_live() -> None:
        for i in range(20):
            collections.source.insert_many(unreviewed(10, start=START + dt.timedelta(hours=i), seed=50 + i))
        writing.set()

    with running_follower(mongo_client, collections, config):
        writer = threading.Thread(target=write_live)
        writer.start()   # while the recount runs: each insert must land exactly once, by stream or recount
        writer.join()
        wait_for(lambda: total_predictions(collections) == 402 + 200, timeout=30, what="recount and live inserts")
        wait_for(lambda: (collections.state.find_one({"_id": STATE_ID}) or {}).get("recount", {}).get("done_at"),
                 what="the recount's end")
    assert_predictions_exact(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)
    assert collections.rejects.find_one({"field": "output_confidence"})   # bad unreviewed ones are set aside too


def test_a_restart_follows_the_checkpoint_and_counts_nothing_twice(collections, mongo_client, config):
    collections.source.insert_many(unreviewed(50, start=START, seed=1))
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_predictions(collections) == 50, what="the first count")
        collections.source.insert_many(unreviewed(30, start=START, seed=2))
        wait_for(lambda: total_predictions(collections) == 80, what="live inserts")
    recount_id = collections.state.find_one({"_id": STATE_ID})["recount"]["id"]
    collections.source.insert_many(unreviewed(20, start=START, seed=3))   # while the consumer is down
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_predictions(collections) == 100, what="inserts made while it was down")
    assert collections.state.find_one({"_id": STATE_ID})["recount"]["id"] == recount_id   # no second recount
    assert_predictions_exact(collections, config.n_classes)


def old_id(days: float) -> bson.ObjectId:
    """An ObjectId as a writer would have made it `days` ago."""
    moment = dt.datetime.now(UTC) - dt.timedelta(days=days)
    return bson.ObjectId(struct.pack(">I", int(moment.timestamp())) + os.urandom(8))


def test_history_lost_recounts_the_hours_of_what_was_inserted_since(collections, mongo_client, config):
    # Inserted three days ago (their ObjectIds say so), and counted then.
    collections.source.insert_many([doc | {"_id": old_id(3)} for doc in predictions(120, start=START,
                                                                                      reviewed_fraction=0.5)])
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_predictions(collections) == 120, what="the first count")
        wait_for(lambda: collections.state.find_one({"_id": STATE_ID})["recount"].get("done_at"), what="its end")
    before = rollup_predictions(collections)
    # Inserted while the consumer was down, in hours of their own and in an hour counted before.
    missed = unreviewed(15, start=START + dt.timedelta(days=10), seed=4) + unreviewed(1, start=START, seed=5)
    collections.source.insert_many(missed)
    collections.state.update_one({"_id": CONSUMER_STATE_ID}, {"$set": {"checkpoint_at": dt.datetime.now(UTC)}})
    # The server answers the resume as it does once the token has rolled out of the oplog (a real roll-over
    # is in tests/faults/test_mongo_faults.py; it takes a gigabyte of writes).
    mongo_client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                               data={"failCommands": ["aggregate"], "errorCode": 286})
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_predictions(collections) == 136, what="the recount after history was lost")
        wait_for(lambda: collections.state.find_one({"_id": STATE_ID})["recount"].get("done_at"), what="its end")
    recounted = set(collections.state.find_one({"_id": STATE_ID})["recount"]["hours"])
    assert recounted == {doc["timestamp"].replace(minute=0, second=0, tzinfo=UTC) for doc in missed}
    after = rollup_predictions(collections)
    assert after[2] - before[2] == 16
    assert_predictions_exact(collections, config.n_classes)


def test_unreviewed_documents_stay_byte_for_byte_as_the_model_wrote_them(collections, mongo_client, config):
    docs = predictions(60, start=START, reviewed_fraction=0.5)
    raw = collections.source.with_options(codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    with running_follower(mongo_client, collections, config):
        collections.source.insert_many(docs)
        wait_for(lambda: total_predictions(collections) == 60, what="the inserts")
    unreviewed_ids = [doc["_id"] for doc in docs if "output_validated" not in doc]
    assert unreviewed_ids
    for doc_id in unreviewed_ids:
        original = next(d for d in docs if d["_id"] == doc_id)
        assert raw.find_one({"_id": doc_id}).raw == bson.encode(original)


@pytest.mark.parametrize("zone_name, start, days", [
    ("Europe/Madrid", START, 3),                                           # 27 to 29 March, the 29th 23 hours long
    ("Australia/Adelaide", dt.datetime(2026, 4, 3, 20, 0, tzinfo=UTC), 2),  # +10:30 to +09:30 on 5 April
    ("Asia/Kathmandu", START, 2)])                                          # +05:45: quarter-hour periods
def test_per_day_counts_equal_a_count_of_the_raw_documents_across_a_dst_change(
        make_config, mongo_client, zone_name, start, days):
    config = make_config(model={"timezone": zone_name},
                         consumer={"batch_max_seconds": 0.05, "checkpoint_idle_seconds": 1.0})
    collections = Collections.of(mongo_client, config)
    ensure_indexes(collections)
    collections.source.insert_many(predictions(300, start=start, seed=9, reviewed_fraction=0.5))   # every 7 min, 35 h
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_predictions(collections) == 300, what="the count")
        wait_for(lambda: collections.counted.count_documents({}) == collections.source.count_documents(
            {"output_validated": {"$ne": None}}), what="the reviews")
    zone = config.model.zone
    raw: Counter = Counter()
    raw_reviews: Counter = Counter()
    for doc in collections.source.find():
        day = doc["timestamp"].replace(tzinfo=UTC).astimezone(zone).date()
        raw[day] += 1
        raw_reviews[day] += doc.get("output_validated") is not None
    by_day = predictions_by_day(collections.predictions.find(), zone)
    assert {day: totals.predictions for day, totals in by_day.items()} == raw
    reviews_by_day = totals_by_day(collections.rollups.find(), zone)
    assert {day: totals.reviews for day, totals in reviews_by_day.items()} == raw_reviews
    assert len(raw) == days
    period = config.model.rollup_period
    assert all(period_start(doc["_id"].replace(tzinfo=UTC), period) == doc["_id"].replace(tzinfo=UTC)
               for doc in collections.predictions.find())
    assert_exactly_once(collections, config.n_classes)


def test_kill_9_while_the_model_inserts_counts_every_prediction_once(tmp_path, mongo_uri, collections, config):
    rng = random.Random(3)
    path = write_config(tmp_path / "config.toml", {
        "mongodb": {"database": config.mongodb.database},
        "consumer": {"batch_size": 50, "batch_max_seconds": 0.05, "lease_seconds": 2.0},
        "profiles": {"local_store_dir": str(tmp_path / "profiles")}})
    collections.source.insert_many(unreviewed(500, start=START, seed=10))
    writing = threading.Event()
    written = [500]

    def write() -> None:
        i = 0
        while not writing.is_set():
            collections.source.insert_many(predictions(20, start=START + dt.timedelta(minutes=i), seed=100 + i,
                                                       reviewed_fraction=0.2))
            written[0] += 20
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(4):
            process = start("consumer", path, mongo_uri, log_path=tmp_path / "consumer.log")
            wait_for(lambda: total_predictions(collections) > 0, timeout=30)
            threading.Event().wait(rng.uniform(0.3, 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    finally:
        writing.set()
        writer.join()
    process = start("consumer", path, mongo_uri, log_path=tmp_path / "consumer.log")
    try:
        wait_for(lambda: total_predictions(collections) == written[0], timeout=60, what="every prediction")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert_predictions_exact(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)
