"""Segment increments put off by full batches (clara.segment_pending): applied once, by whichever comes first
(a batch that is not full, an idle consumer, a rebuild, a recount), and to exactly the rollups that applying
them batch by batch gives, corrections included."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from bson import ObjectId, Timestamp

from clara.db import Collections, ensure_indexes
from clara.segment_pending import Folding, SegmentWrites, _packed, _summed, _unpacked, fold_all
from clara.segment_rollups import segment_prediction_totals
from clara.segments import canonical
from consumer.batch import CONSUMER_STATE_ID, commit_batch
from consumer.predictions import STATE_ID, Inserted
from tests.consumer.test_segments import FIELDS, assert_overall_is_the_sum_of_segments, with_segments
from tests.support.snapshots import stored
from tests.support.documents import predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 5, 4, 8, tzinfo=UTC)
SEGMENTS = {"fields": list(FIELDS), "max_values": 20}


def with_ids(docs: list[dict]) -> list[dict]:
    """The same _ids in every database a test fills."""
    return [doc | {"_id": ObjectId()} for doc in docs]


def deferring() -> Folding:
    """A folding policy whose last fold is recent for the whole test: every full batch puts off."""
    return Folding(600.0)


def inserts(docs) -> list[Inserted]:
    return [Inserted(doc, Timestamp(1, 1)) for doc in docs]


def reviewed_ids(docs) -> list:
    return [doc["_id"] for doc in docs if doc.get("output_validated") is not None]


def count(client, cols, config, docs, folding=None, full=False, step=100) -> None:
    """Predictions by insert events, then reviews, `step` documents per batch, as the stream commits them."""
    for i in range(0, len(docs), step):
        commit_batch(client, cols, config, [], sinks=(), inserted=inserts(docs[i:i + step]), folding=folding,
                     full=full)
    ids = reviewed_ids(docs)
    for i in range(0, len(ids), step):
        commit_batch(client, cols, config, ids[i:i + step], sinks=(), folding=folding, full=full)


def test_full_batches_put_their_segment_increments_off_and_the_next_batch_folds_them(make_config, mongo_client):
    config = make_config(segments=SEGMENTS)
    cols = Collections.of(mongo_client, config)
    docs = with_segments(predictions(400, start=START, step=dt.timedelta(minutes=1), reviewed_fraction=0.6))
    cols.source.insert_many(docs)
    folding = deferring()
    count(mongo_client, cols, config, docs[:300], folding, full=True)

    # The overall figures are counted; the segment ones wait in the pending collection, one per batch.
    assert sum(doc["predictions"] for doc in cols.predictions.find()) == 300
    assert sum(doc["reviews"] for doc in cols.rollups.find()) == len(reviewed_ids(docs[:300]))
    assert cols.segment_pending.count_documents({}) == 3 + -(-len(reviewed_ids(docs[:300])) // 100)
    assert cols.segment_predictions.count_documents({}) == 0 and cols.segment_rollups.count_documents({}) == 0
    assert folding.pending

    count(mongo_client, cols, config, docs[300:], folding, full=False)   # caught up: a batch that is not full
    assert cols.segment_pending.count_documents({}) == 0 and not folding.pending
    for field in FIELDS:
        assert_overall_is_the_sum_of_segments(cols.rollups, cols.segment_rollups, field)
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)
        for value, totals in segment_prediction_totals(cols, field).items():
            mine = [doc for doc in docs if canonical(doc.get(field)) == value]
            assert totals.classes == Counter(doc["output_prediction"] for doc in mine), f"{field} = {value}"


def test_put_off_and_folded_gives_the_rollups_of_applying_every_batch_at_once(make_config, mongo_client):
    docs = with_ids(with_segments(predictions(300, start=START, step=dt.timedelta(minutes=2), reviewed_fraction=0.7)))
    results = []
    for folding in (None, deferring()):
        config = make_config(segments=SEGMENTS)
        cols = Collections.of(mongo_client, config)
        cols.source.insert_many([dict(doc) for doc in docs])
        count(mongo_client, cols, config, docs, folding, full=True)
        # Corrections in later full batches: another class, another site, a withdrawn review.
        changed = reviewed_ids(docs)[:40]
        cols.source.update_many({"_id": {"$in": changed[:15]}}, {"$set": {"output_validated": 0}})
        cols.source.update_many({"_id": {"$in": changed[15:30]}}, {"$set": {"site": "moved"}})
        cols.source.update_many({"_id": {"$in": changed[30:]}}, {"$unset": {"output_validated": ""}})
        commit_batch(mongo_client, cols, config, changed, sinks=(), folding=folding, full=True)
        assert cols.segment_pending.count_documents({}) == (0 if folding is None else 3 + 3 + 1)
        assert fold_all(mongo_client, cols) == (0 if folding is None else 1)
        results.append(stored(cols))
        mongo_client.drop_database(config.mongodb.database)
    applied, folded = results
    assert folded == applied
    assert applied["segment_rollups"] and applied["segment_predictions"]


def test_an_idle_consumer_folds_what_a_stopped_one_put_off(make_config, mongo_client):
    """A consumer stopped (or killed) while behind left increments put off; restarted from its checkpoint on a
    quiet stream, it folds them while idle."""
    config = make_config(consumer={"batch_max_seconds": 0.05, "mark_source": False}, segments=SEGMENTS)
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = with_segments(predictions(200, start=START, reviewed_fraction=0.5))
    cols.source.insert_many(docs)
    with cols.source.watch() as stream:   # the stopped consumer's checkpoint: every event up to here committed
        stream.try_next()
        token = stream.resume_token
    cols.state.insert_many([{"_id": CONSUMER_STATE_ID, "resume_token": token}, {"_id": STATE_ID}])
    count(mongo_client, cols, config, docs, deferring(), full=True)
    assert cols.segment_pending.count_documents({}) > 0

    with running_follower(mongo_client, cols, config):
        wait_for(lambda: cols.segment_pending.count_documents({}) == 0, timeout=30, what="the idle fold")
    for field in FIELDS:
        assert_overall_is_the_sum_of_segments(cols.rollups, cols.segment_rollups, field)
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)
    assert sum(doc["predictions"] for doc in cols.predictions.find()) == 200


def test_a_recount_of_the_predictions_folds_what_was_put_off_first(make_config, mongo_client):
    """A new consumer recounts every prediction from the source: increments put off before its cut are of
    predictions it counts again, so they are applied and emptied with the rest, not added afterwards."""
    config = make_config(consumer={"batch_max_seconds": 0.05}, segments=SEGMENTS)
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = with_segments(predictions(200, start=START, reviewed_fraction=0.0))
    cols.source.insert_many(docs)
    folding = deferring()
    for i in range(0, 200, 50):
        commit_batch(mongo_client, cols, config, [], sinks=(), inserted=inserts(docs[i:i + 50]), folding=folding,
                     full=True)
    assert cols.segment_pending.count_documents({}) == 4

    with running_follower(mongo_client, cols, config):
        wait_for(lambda: (cols.state.find_one({"_id": STATE_ID}) or {}).get("recount", {}).get("done_at"),
                 timeout=30, what="the recount")
        wait_for(lambda: cols.segment_pending.count_documents({}) == 0, timeout=30, what="the fold")
    for field in FIELDS:
        assert sum(totals.predictions for totals in segment_prediction_totals(cols, field).values()) == 200
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)


def test_a_full_batch_with_no_event_behind_it_folds_and_one_with_events_behind_puts_off(make_config, mongo_client):
    """The last batch of a burst is full but nothing waits behind it: it applies its segment increments (and
    those put off before it) itself, instead of leaving them to the idle wait after it."""
    config = make_config(segments=SEGMENTS)
    cols = Collections.of(mongo_client, config)
    docs = with_segments(predictions(300, start=START, reviewed_fraction=0.0))
    cols.source.insert_many(docs)
    folding = deferring()
    for i, waiting in ((0, True), (100, True)):
        commit_batch(mongo_client, cols, config, [], sinks=(), inserted=inserts(docs[i:i + 100]), folding=folding,
                     full=True, more_waiting=lambda waiting=waiting: waiting)
    assert cols.segment_pending.count_documents({}) == 2 and folding.pending
    commit_batch(mongo_client, cols, config, [], sinks=(), inserted=inserts(docs[200:]), folding=folding,
                 full=True, more_waiting=lambda: False)
    assert cols.segment_pending.count_documents({}) == 0 and not folding.pending
    for field in FIELDS:
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)
    assert sum(doc["predictions"] for doc in cols.predictions.find()) == 300


def test_the_segment_figures_of_a_burst_are_complete_when_its_overall_ones_are(make_config, mongo_client):
    """A bulk insert of exactly one full batch, with the idle wait a second long: the follower's batch folds
    in its own transaction, so no reader ever sees the overall figures complete and the segments behind."""
    config = make_config(consumer={"batch_size": 100, "batch_max_seconds": 1.0},
                         segments=SEGMENTS | {"fold_seconds": 60})
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = with_segments(predictions(101, start=START, reviewed_fraction=0.0))

    def overall() -> int:
        return sum(doc["predictions"] for doc in cols.predictions.find())

    with running_follower(mongo_client, cols, config):
        wait_for(lambda: cols.state.find_one({"_id": CONSUMER_STATE_ID, "resume_token": {"$exists": True}}),
                 timeout=30, what="the stream's first checkpoint")
        cols.source.insert_one(docs[0])   # a batch that is not full: the follower is past its start
        wait_for(lambda: overall() == 1, timeout=30, what="the first prediction")
        cols.source.insert_many(docs[1:])
        wait_for(lambda: overall() == 101, timeout=30, interval=0.002, what="the burst's predictions")
        assert cols.segment_pending.count_documents({}) == 0, "the last full batch left its increments behind"
        for field in FIELDS:
            assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)


def test_folding_waits_for_full_batches_and_its_interval():
    folding = Folding(600.0)
    assert folding.defer(full=True) and not folding.defer(full=False)
    assert not Folding(0.0).defer(full=True)   # 0: every batch applies its own
    late = Folding(0.05)
    late.folded_at -= 1.0
    assert not late.defer(full=True)           # a fold is due however full the batches
    late.committed(deferred=False, pending_left=False)
    assert late.defer(full=True) and not late.pending


def test_stored_increments_read_back_as_written_and_sums_keep_zeros():
    hour = dt.datetime(2026, 5, 4, 8, tzinfo=UTC)
    updates = [((hour, "site", "east.1$"), {"reviews": 1, "cells.3_3": -1, "confidence_micros": 9_876_543_210}),
               ((hour, "model_version", "v1"), {"calibration_micros.4_2": 2**40, "reviews": -2})]
    assert list(_unpacked(_packed(updates))) == updates
    assert _summed([updates[0], ((hour, "site", "east.1$"), {"reviews": -1, "cells.3_3": 1})]) == \
        [((hour, "site", "east.1$"), {"reviews": 0, "cells.3_3": 0, "confidence_micros": 9_876_543_210})]
    assert not SegmentWrites() and SegmentWrites(rollups=updates[:1])
