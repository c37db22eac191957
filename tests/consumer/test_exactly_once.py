"""What real writers do to reviewed documents, and each change moving its count exactly once.

ODM saves (whole-document replaces), withdrawals by replace, fields changed one update at a time,
dates outside Python's range, documents the driver cannot decode, the previous version's markers.
"""

from __future__ import annotations

import datetime as dt

import bson
from bson.datetime_ms import DatetimeMS
from bson.raw_bson import RawBSONDocument

from clara.config import config_from_mapping
from clara.db import Collections, connect
from clara.embedded_mongo import EmbeddedMongo
from consumer.batch import CONSUMER_STATE_ID, commit_batch
from consumer.catchup import catch_up
from tests.support.audit import assert_exactly_once, rollup_cells
from tests.support.documents import prediction, predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def total_reviews(cols) -> int:
    return rollup_cells(cols)[2]


def rollup_sum(cols, field: str) -> int:
    return sum(doc.get(field, 0) for doc in cols.rollups.find())


def test_a_writers_replace_neither_recounts_nor_loses_the_review(collections, mongo_client, config):
    doc = prediction(1, at=START)
    doc_id = collections.source.insert_one(dict(doc)).inserted_id
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: collections.source.find_one({"_id": doc_id}).get("logged") is True, what="the first count")
        # An ODM saves the copy it loaded before CLARA marked it: `logged` is gone, nothing else changed.
        collections.source.replace_one({"_id": doc_id}, doc | {"_id": doc_id, "trained": True})
        wait_for(lambda: collections.source.find_one({"_id": doc_id}).get("logged") is True, what="the marker back")
        assert total_reviews(collections) == 1
        # A replace with another true class is a correction; one without a review withdraws it.
        collections.source.replace_one({"_id": doc_id}, doc | {"_id": doc_id, "output_validated": 6})
        wait_for(lambda: rollup_cells(collections)[0] == {(6, doc["output_prediction"]): 1}, what="the correction")
        unreviewed = {k: v for k, v in doc.items() if k not in ("output_validated", "timestamp_validated")}
        collections.source.replace_one({"_id": doc_id}, unreviewed | {"_id": doc_id})
        wait_for(lambda: total_reviews(collections) == 0, what="the withdrawal by replace")
    assert_exactly_once(collections, config.n_classes)
    assert collections.counted.count_documents({}) == 0


def test_a_field_changed_alone_moves_its_count(collections, mongo_client, config):
    doc = prediction(2, at=START)
    del doc["timestamp_validated"]
    doc_id = collections.source.insert_one(doc).inserted_id
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == 1, what="the review")
        assert rollup_sum(collections, "latency_count") == 0
        # The reviewer's tool sets the review time in a second update.
        collections.source.update_one({"_id": doc_id}, {"$set": {"timestamp_validated": START + dt.timedelta(hours=2)}})
        wait_for(lambda: rollup_sum(collections, "latency_count") == 1, what="the latency")
        assert rollup_sum(collections, "latency_ms") == 2 * 3600 * 1000
        collections.source.update_one({"_id": doc_id}, {"$set": {"timestamp": START + dt.timedelta(days=1)}})
        wait_for(lambda: collections.rollups.find_one({"_id": START + dt.timedelta(days=1)}), what="the moved hour")
        collections.source.update_one({"_id": doc_id}, {"$set": {"output_confidence": 0.999}})
        wait_for(lambda: rollup_sum(collections, "confidence_micros") == 999_000, what="the new confidence")
        collections.source.update_one({"_id": doc_id}, {"$set": {"output_prediction": 99}})   # now invalid
        wait_for(lambda: total_reviews(collections) == 0, what="the count taken back")
    assert collections.rollups.find_one({"_id": START})["reviews"] == 0
    assert collections.rejects.find_one({"_id": doc_id})["field"] == "output_prediction"
    # Predictions stay counted as the model service inserted them; only the review's count moved.
    assert_exactly_once(collections, config.n_classes, predictions=False)


def test_dates_outside_pythons_range_are_set_aside_and_the_consumer_goes_on(collections, mongo_client, config):
    # A JavaScript writer's new Date(8.64e15); seconds stored as milliseconds; a date before year 1.
    far = prediction(3, at=START) | {"timestamp": DatetimeMS(8_640_000_000_000_000)}
    early = prediction(4, at=START) | {"timestamp_validated": DatetimeMS(-62_135_596_800_000 - 86_400_000)}
    collections.source.insert_many([far, *predictions(10, start=START)])
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == 10, what="the catch-up past the far date")
        collections.source.insert_one(early)
        collections.source.insert_many(predictions(5, start=START, seed=5))
        wait_for(lambda: total_reviews(collections) == 15 and collections.rejects.count_documents({}) == 2,
                 what="live reviews past the early date")
    reasons = {doc["_id"]: doc["reason"] for doc in collections.rejects.find()}
    assert "timestamp: date out of range" in reasons[far["_id"]]
    assert "timestamp_validated: date out of range" in reasons[early["_id"]]


def undecodable(doc: dict) -> RawBSONDocument:
    """The document as BSON whose filename is not valid UTF-8 (what a buggy writer in C can store)."""
    raw = bson.encode(doc | {"filename": "Zimg.jpg"})
    return RawBSONDocument(raw.replace(b"Zimg.jpg", b"\xffimg.jpg"))


def test_a_document_the_driver_cannot_decode_is_isolated_and_set_aside(collections, mongo_client, config, caplog):
    good = predictions(20, start=START)
    bad = prediction(99, at=START) | {"_id": bson.ObjectId()}
    collections.source.insert_many(good[:10])
    collections.source.insert_one(undecodable(bad))
    collections.source.insert_many(good[10:])
    result = catch_up(mongo_client, collections, config, sinks=())
    assert result.counts["claimed"] == 20 and result.counts["set_aside"] == 1
    assert "cannot be processed (InvalidBSON" in collections.rejects.find_one({"_id": bad["_id"]})["reason"]
    assert "splitting it" in caplog.text
    with running_follower(mongo_client, collections, config):   # live too: the stream carries no document body
        collections.source.insert_one(undecodable(prediction(100, at=START) | {"_id": bson.ObjectId()}))
        collections.source.insert_many(predictions(3, start=START, seed=8))
        wait_for(lambda: total_reviews(collections) == 23 and collections.rejects.count_documents({}) == 2,
                 what="the live batch around the undecodable document")


def test_a_batch_too_slow_for_one_transaction_is_split_not_retried(collections, mongo_client, make_config, caplog):
    config = make_config(consumer={"transaction_max_seconds": 1e-9})   # every batch of two or more is "too slow"
    collections.source.insert_many(predictions(64, start=START, step=dt.timedelta(hours=1)))
    result = catch_up(mongo_client, collections, config, sinks=())
    assert result.counts["claimed"] == 64 and result.documents == 64
    assert "BatchTooSlow" in caplog.text
    assert_exactly_once(collections, config.n_classes)


def test_the_previous_versions_markers_migrate_once(collections, mongo_client, config):
    collections.source.insert_many(predictions(30, start=START))
    catch_up(mongo_client, collections, config, sinks=())
    # As the previous version left them: the snapshot on the source document, no counted collection.
    for entry in collections.counted.find():
        snapshot = {k: entry[k] for k in ("hour", "predicted", "truth", "confidence_micros", "latency_ms")}
        collections.source.update_one({"_id": entry["_id"]}, {"$set": {"logged_as": snapshot}})
    collections.counted.drop()
    some = collections.source.find_one()
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: collections.counted.count_documents({}) == 30, what="the migration")
        replaced = {k: v for k, v in some.items() if k not in ("logged", "logged_as", "logged_at")}
        collections.source.replace_one({"_id": some["_id"]}, replaced)
        wait_for(lambda: collections.source.find_one({"_id": some["_id"]}).get("logged") is True, what="re-mark")
    assert collections.source.count_documents({"logged_as": {"$exists": True}}) == 0
    assert_exactly_once(collections, config.n_classes)


def test_without_source_markers_the_models_documents_stay_byte_for_byte(collections, mongo_client, make_config):
    config = make_config(consumer={"mark_source": False, "batch_max_seconds": 0.05})
    collections.source.insert_many(predictions(40, start=START, reviewed_fraction=0.7))
    raw = collections.source.with_options(codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    before = {doc["_id"]: doc.raw for doc in raw.find()}
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == collections.source.count_documents(
            {"output_validated": {"$ne": None}}), what="the catch-up")
    again = catch_up(mongo_client, collections, config, sinks=())   # a restart counts nothing twice
    assert again.counts["claimed"] == 0
    assert {doc["_id"]: doc.raw for doc in raw.find()} == before
    assert_exactly_once(collections, config.n_classes, marked=False)
    doc_id = next(iter(before))
    commit_batch(mongo_client, collections, config, [doc_id], sinks=())
    assert raw.find_one({"_id": doc_id}).raw == before[doc_id]


def test_a_standalone_server_applies_corrections_and_withdrawals(tmp_path):
    with EmbeddedMongo(tmp_path / "standalone", replica_set=None) as mongo:
        config = config_from_mapping({"consumer": {"poll_interval_seconds": 0.1, "recheck_per_poll": 7},
                                      "profiles": {"local_store_dir": str(tmp_path / "profiles")}},
                                     {"MONGODB_URI": mongo.uri}, source="test")
        client = connect(config)
        cols = Collections.of(client, config)
        docs = predictions(20, start=START)
        cols.source.insert_many(docs)
        with running_follower(client, cols, config):
            wait_for(lambda: total_reviews(cols) == 20, what="the first poll")
            corrected, withdrawn, saved = docs[3], docs[11], docs[17]
            cols.source.update_one({"_id": corrected["_id"]}, {"$set": {"output_validated": 6}})
            cols.source.update_one({"_id": withdrawn["_id"]}, {"$unset": {"output_validated": ""}})
            cols.source.replace_one({"_id": saved["_id"]}, saved)   # an ODM's save drops `logged`
            wait_for(lambda: rollup_cells(cols)[0].get((6, corrected["output_prediction"])) and total_reviews(cols) == 19
                     and cols.source.find_one({"_id": saved["_id"]}).get("logged") is True,
                     what="the correction, the withdrawal and the re-mark")
        assert_exactly_once(cols, config.n_classes)
        client.close()


def test_a_withdrawal_made_while_history_was_lost_is_applied(collections, mongo_client, config):
    docs = predictions(12, start=START)
    collections.source.insert_many(docs)
    catch_up(mongo_client, collections, config, sinks=())
    with collections.source.watch() as stream:
        collections.source.update_one({"_id": docs[0]["_id"]}, {"$unset": {"output_validated": ""}})
        stream.try_next()
        real = stream.resume_token["_data"]
    stale = {"_data": real[:2] + "00000001" + real[10:]}   # from 1970: long gone from the oplog
    collections.state.insert_one({"_id": CONSUMER_STATE_ID, "resume_token": stale})
    with running_follower(mongo_client, collections, config):
        wait_for(lambda: total_reviews(collections) == 11, what="the withdrawal found by the re-check")
    assert_exactly_once(collections, config.n_classes)
