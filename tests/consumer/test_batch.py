"""commit_batch: claims, rollups, corrections, rejections and profiles, exactly once."""

from __future__ import annotations

import datetime as dt

from consumer.batch import commit_batch
from consumer.catchup import catch_up
from consumer.sinks import OutboxEntry
from consumer.sinks.profiles import hour_view
from tests.support.audit import assert_exactly_once, rollup_cells
from tests.support.documents import predictions

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 28, 20, 0, tzinfo=UTC)


def test_catch_up_counts_every_review_once(collections, mongo_client, config):
    collections.source.insert_many(predictions(300, start=START, reviewed_fraction=0.8))
    first = catch_up(mongo_client, collections, config)
    reviews = assert_exactly_once(collections, config.n_classes)
    assert first.counts["claimed"] == reviews > 0
    again = catch_up(mongo_client, collections, config)
    assert again.documents == 0
    all_ids = collections.source.distinct("_id")
    replayed = commit_batch(mongo_client, collections, config, all_ids, sinks=())
    assert replayed.counts["claimed"] == 0 and replayed.counts["already_logged"] == reviews
    assert_exactly_once(collections, config.n_classes)


def test_rollups_are_keyed_by_prediction_hour(collections, mongo_client, config):
    collections.source.insert_many(predictions(50, start=START, step=dt.timedelta(minutes=5)))
    catch_up(mongo_client, collections, config)
    hours = sorted(doc["_id"] for doc in collections.rollups.find())
    assert hours[0] == START and hours[-1] == START + dt.timedelta(hours=4)
    assert sum(doc["reviews"] for doc in collections.rollups.find()) == 50


def test_a_corrected_review_moves_its_count(collections, mongo_client, config):
    doc_id = collections.source.insert_one({"filename": "a.jpg", "output_prediction": 2, "output_confidence": 0.7,
                                           "timestamp": START, "output_validated": 2}).inserted_id
    catch_up(mongo_client, collections, config)
    assert rollup_cells(collections)[0] == {(2, 2): 1}
    collections.source.update_one({"_id": doc_id}, {"$set": {"output_validated": 5}})
    result = commit_batch(mongo_client, collections, config, [doc_id], sinks=())
    assert result.counts == {"corrected": 1}
    assert rollup_cells(collections)[0] == {(5, 2): 1}
    commit_batch(mongo_client, collections, config, [doc_id], sinks=())
    assert rollup_cells(collections) == ({(5, 2): 1}, {}, 1)
    collections.source.update_one({"_id": doc_id}, {"$set": {"output_validated": False}})
    commit_batch(mongo_client, collections, config, [doc_id], sinks=())
    assert rollup_cells(collections) == ({}, {2: 1}, 1)
    collections.source.update_one({"_id": doc_id}, {"$unset": {"output_validated": ""}})
    commit_batch(mongo_client, collections, config, [doc_id], sinks=())
    assert rollup_cells(collections) == ({}, {}, 0)
    assert collections.source.find_one({"_id": doc_id})["logged"] is False


def test_bad_documents_are_set_aside_with_their_reason(collections, mongo_client, config):
    good = predictions(5, start=START)
    bad = [{"filename": "x.jpg", "output_prediction": 9, "timestamp": START, "output_validated": 1},
           {"filename": "y.jpg", "output_prediction": 1, "timestamp": "yesterday", "output_validated": 1},
           {"filename": "z.jpg", "output_prediction": 1, "output_confidence": 1.5, "timestamp": START,
            "output_validated": 1}]
    collections.source.insert_many(good + bad)
    result = catch_up(mongo_client, collections, config)
    assert result.counts["rejected"] == 3 and result.counts["claimed"] == 5
    reasons = sorted(doc["reason"] for doc in collections.rejects.find())
    assert reasons == ["output_confidence: expected a number from 0 to 1, got float 1.5",
                       "output_prediction: unknown class id 9; expected 0 to 6",
                       "timestamp: expected a date, got str 'yesterday'"]
    assert collections.source.count_documents({"logged": True}) == 5
    assert_exactly_once(collections, config.n_classes)
    # Fixed by its writer, a set-aside document is counted and leaves the rejects.
    collections.source.update_one({"filename": "x.jpg"}, {"$set": {"output_prediction": 3}})
    catch_up(mongo_client, collections, config)
    assert collections.rejects.count_documents({}) == 2
    assert_exactly_once(collections, config.n_classes)


def test_profiles_go_to_the_outbox_per_hour_with_the_hour_as_dataset_time(collections, mongo_client, config):
    collections.source.insert_many(predictions(30, start=START, step=dt.timedelta(minutes=3)))
    catch_up(mongo_client, collections, config)
    entries = list(collections.outbox.find().sort("hour", 1))
    assert [e["hour"] for e in entries] == [START, START + dt.timedelta(hours=1)]
    assert [e["rows"] for e in entries] == [20, 10]
    assert all(e["pending"] == ["local"] for e in entries)
    # The entry holds rows; the drain profiles them (what WhyLabs gets: with performance metrics).
    view = hour_view([OutboxEntry.from_document(entries[0])], START, config.model.classes, performance=True).view
    assert view.dataset_timestamp == START
    assert view.get_column("prediction").to_summary_dict()["counts/n"] == 20
    matrix = view.model_performance_metrics.confusion_matrix
    labelled = [d for d in collections.source.find() if d["timestamp"].hour == START.hour
                and d["output_validated"] is not False]
    assert sum(matrix.confusion_matrix[key].n for key in matrix.confusion_matrix) == len(labelled)
