"""Reading ahead: a batch's documents read while the previous batch commits still count exactly once."""

from __future__ import annotations

import datetime as dt
import random
import threading

from pymongo import UpdateOne

from clara.db import Collections, ensure_indexes
from consumer.batch import commit_batch
from consumer.prefetch import prefetch
from consumer.stream import Follower
from tests.support.audit import assert_exactly_once, expected_cells, rollup_cells
from tests.support.documents import predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


def segmented_by_site(make_config, mongo_client, max_values: int):
    """A config with `site` as its segment field, and its collections, indexed."""
    config = make_config(segments={"fields": ["site"], "max_values": max_values})
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    return config, cols


def site_docs(site: str, n: int, **fields) -> list[dict]:
    return [{"filename": f"{site}-{i}.jpg", "output_prediction": 1, "output_confidence": 0.8, "timestamp": START,
             "site": site} | fields for i in range(n)]


def test_a_review_changed_after_it_was_read_ahead_is_corrected_by_its_event(collections, mongo_client, config):
    doc_id = collections.source.insert_one({"filename": "a.jpg", "output_prediction": 2, "output_confidence": 0.7,
                                           "timestamp": START, "output_validated": 2}).inserted_id
    ahead = prefetch(collections, config, [doc_id])
    collections.source.update_one({"_id": doc_id}, {"$set": {"output_validated": 5}})   # after the read
    first = commit_batch(mongo_client, collections, config, [doc_id], sinks=(), prefetched=ahead)
    assert first.counts == {"claimed": 1}
    assert rollup_cells(collections)[0] == {(2, 2): 1}   # counted as read, and kept as counted
    again = commit_batch(mongo_client, collections, config, [doc_id], sinks=())   # the change's own event
    assert again.counts == {"corrected": 1}
    assert rollup_cells(collections)[0] == {(5, 2): 1}
    assert_exactly_once(collections, config.n_classes, predictions=False)


def test_a_document_read_ahead_as_missing_is_not_read_again(collections, mongo_client, config):
    gone = collections.source.insert_one({"filename": "b.jpg", "output_prediction": 1, "timestamp": START,
                                         "output_validated": 1}).inserted_id
    collections.source.delete_one({"_id": gone})
    ahead = prefetch(collections, config, [gone])
    assert gone in ahead.asked and not ahead.docs
    collections.source.insert_one({"_id": gone, "filename": "b.jpg", "output_prediction": 1, "timestamp": START,
                                   "output_validated": 1})   # back, after the read: its insert event counts it
    result = commit_batch(mongo_client, collections, config, [gone], sinks=(), prefetched=ahead)
    assert result.counts == {} and rollup_cells(collections)[2] == 0
    commit_batch(mongo_client, collections, config, [gone], sinks=())
    assert rollup_cells(collections)[2] == 1


def test_the_follower_reads_ahead_only_what_the_committing_batch_does_not_hold(collections, mongo_client, config):
    docs = predictions(4, start=START, reviewed_fraction=0.0)
    ids = collections.source.insert_many(docs).inserted_ids
    follower = Follower(mongo_client, collections, config, (), threading.Event())
    with follower._open(None) as stream:
        collections.source.bulk_write([UpdateOne({"_id": doc_id}, {"$set": {"output_validated": 3}})
                                       for doc_id in ids])
        review_ids: list = []
        while len(review_ids) < len(ids):
            gathered = follower._gather(stream, committing=ids[:2])
            if gathered.batch is not None:
                review_ids += gathered.batch.review_ids
                assert gathered.prefetched.asked == set(gathered.batch.review_ids) - set(ids[:2])
                assert set(gathered.prefetched.docs) == gathered.prefetched.asked
    assert sorted(review_ids) == sorted(ids)


def test_bulk_saves_that_keep_changing_the_same_reviews_count_exactly_once(collections, mongo_client, make_config):
    """Consecutive batches hold the same documents (reviewed, corrected, withdrawn, reviewed again), so a read
    ahead overlaps the commit before it: the final rollups still equal the documents."""
    config = make_config(consumer={"batch_size": 40, "batch_max_seconds": 0.05})
    ids = collections.source.insert_many(predictions(60, start=START, reviewed_fraction=0.0)).inserted_ids
    rng = random.Random(4)
    with running_follower(mongo_client, collections, config, sinks=()):
        for _ in range(40):
            chosen = rng.sample(ids, 30)
            collections.source.bulk_write([UpdateOne({"_id": doc_id}, {"$set": {
                "output_validated": None if rng.random() < 0.2 else rng.randrange(config.n_classes),
                "timestamp_validated": dt.datetime.now(UTC)}}) for doc_id in chosen], ordered=False)
        wait_for(lambda: rollup_cells(collections)[:2] == expected_cells(collections, config.n_classes)[:2],
                 what="the rollups to agree with the last saves")
    assert_exactly_once(collections, config.n_classes, predictions=False)


def test_the_plan_made_ahead_is_used_only_for_exactly_its_uncounted_documents(collections, mongo_client, config):
    ids = collections.source.insert_many(predictions(4, start=START)).inserted_ids
    commit_batch(mongo_client, collections, config, ids[:1], sinks=())   # counted before the read ahead
    ahead = prefetch(collections, config, ids)
    assert ahead.uncounted_plan.counts == {"claimed": 3, "logged_elsewhere": 1}   # as if nothing were counted
    part = commit_batch(mongo_client, collections, config, ids[1:3], sinks=(), prefetched=ahead)   # a split batch
    assert part.counts == {"claimed": 2}
    rest = commit_batch(mongo_client, collections, config, ids, sinks=(), prefetched=ahead)
    assert rest.counts == {"already_logged": 3, "claimed": 1}
    assert_exactly_once(collections, config.n_classes, predictions=False)


def test_with_segments_the_transaction_plans_with_the_values_it_admits(make_config, mongo_client):
    config, cols = segmented_by_site(make_config, mongo_client, 5)
    docs = predictions(6, start=START)
    for i, doc in enumerate(docs):
        doc["site"] = f"site-{i % 2}"
    ids = cols.source.insert_many(docs).inserted_ids
    ahead = prefetch(cols, config, ids)
    assert ahead.uncounted_plan is None and len(ahead.parsed) == 6   # read and parsed ahead, planned in the transaction
    commit_batch(mongo_client, cols, config, ids, sinks=(), prefetched=ahead)
    assert {site for entry in cols.counted.find() for site in [entry["segment"]["site"]]} == {"site-0", "site-1"}
    assert_exactly_once(cols, config.n_classes, predictions=False)


def test_with_segments_a_batch_planned_ahead_is_planned_again_only_when_the_admitted_values_changed(
        make_config, mongo_client, monkeypatch):
    import consumer.batch
    from clara.segment_rollups import segment_totals
    from tests.support.calls import noted_calls

    config, cols = segmented_by_site(make_config, mongo_client, 2)
    planned = noted_calls(monkeypatch, consumer.batch, "plan_batch", lambda docs, *args: len(docs))

    def review(site: str, n: int) -> list:
        return cols.source.insert_many(site_docs(site, n, output_validated=1)).inserted_ids

    north = review("north", 3)
    commit_batch(mongo_client, cols, config, north, sinks=(), prefetched=prefetch(cols, config, north))
    assert planned == [3]   # it admits `north`: only the transaction may, so the transaction plans it

    more = review("north", 4)
    commit_batch(mongo_client, cols, config, more, sinks=(), prefetched=prefetch(cols, config, more))
    assert planned == [3]   # `north` admitted already: the plan made ahead is used

    again = review("north", 2)
    ahead = prefetch(cols, config, again)   # planned under the values {north} ...
    commit_batch(mongo_client, cols, config, review("south", 2), sinks=())   # ... then south is admitted
    assert planned == [3, 2]
    commit_batch(mongo_client, cols, config, again, sinks=(), prefetched=ahead)
    assert planned == [3, 2, 2]   # the admitted values changed since the read ahead: planned again

    east = review("east", 2)   # beyond the cap: `other`, nothing admitted, so planned ahead and used
    commit_batch(mongo_client, cols, config, east, sinks=(), prefetched=prefetch(cols, config, east))
    assert planned == [3, 2, 2]
    assert {value: totals.reviews for value, totals in segment_totals(cols, "site").items()} == \
        {"north": 9, "south": 2, "other": 2}


def test_inserts_counted_ahead_are_used_only_when_no_cut_applies_and_the_admitted_values_are_the_same(
        make_config, mongo_client, monkeypatch):
    import consumer.predictions
    from bson import Timestamp

    from clara.segment_rollups import segment_prediction_totals
    from consumer.predictions import Inserted, begin_recount
    from tests.support.calls import noted_calls

    config, cols = segmented_by_site(make_config, mongo_client, 2)
    in_transaction = noted_calls(monkeypatch, consumer.predictions, "count_inserts", lambda inserted, *args: len(inserted))

    def inserts(site: str, n: int, at: Timestamp = Timestamp(2**31, 1)) -> list[Inserted]:
        docs = site_docs(site, n)
        cols.source.insert_many(docs)
        return [Inserted(doc, at) for doc in docs]

    def commit(inserted: list[Inserted], ahead=None) -> int:
        ahead = prefetch(cols, config, [], inserted=inserted) if ahead is None else ahead
        return commit_batch(mongo_client, cols, config, [], sinks=(), inserted=inserted,
                            prefetched=ahead).counts["predictions"]

    assert commit(inserts("north", 3)) == 3 and in_transaction == [3]   # admits `north`: only the transaction may
    assert commit(inserts("north", 4)) == 4 and in_transaction == [3]   # counted ahead, and that count is used

    again = inserts("north", 2)
    ahead = prefetch(cols, config, [], inserted=again)   # counted under the values {north} ...
    assert commit(inserts("south", 1)) == 1 and in_transaction == [3, 1]   # ... then `south` is admitted
    assert commit(again, ahead) == 2 and in_transaction == [3, 1, 2]   # the values changed: counted again

    split = inserts("north", 4)
    ahead = prefetch(cols, config, [], inserted=split)
    assert commit(split[:2], ahead) == 2 and commit(split[2:], ahead) == 2   # a split batch holds other events
    assert in_transaction == [3, 1, 2, 2, 2]

    assert commit(inserts("east", 2)) == 2 and in_transaction == [3, 1, 2, 2, 2]   # beyond the cap: `other`
    assert {value: totals.predictions for value, totals in segment_prediction_totals(cols, "site").items()} \
        == {"north": 13, "south": 1, "other": 2}

    # A recount's cut holds inserts at or before it (and stays once the recount is done): counted ahead,
    # those would count twice; the count made ahead is used only when every insert is after the cut.
    held = inserts("north", 3, at=Timestamp(1, 1))
    ahead = prefetch(cols, config, [], inserted=held)
    assert ahead.inserts is not None and sum(ahead.inserts.counted.values()) == 3
    begin_recount(mongo_client, cols, None, None, None, "test")
    assert commit(held, ahead) == 0 and in_transaction[-1] == 3
    assert sum(doc.get("predictions", 0) for doc in cols.predictions.find()) == 0   # emptied for the recount
    assert commit(inserts("north", 5)) == 5 and in_transaction[-1] == 3   # after the cut: counted ahead, used
    assert sum(doc.get("predictions", 0) for doc in cols.predictions.find()) == 5


def test_inserts_that_cannot_be_counted_ahead_are_counted_by_their_transaction(collections, mongo_client, config,
                                                                               monkeypatch):
    """Whatever fails on the read-ahead thread (a document no one foresaw) is met by the batch's transaction,
    which isolates it; it never stops the follower."""
    import consumer.prefetch

    def unforeseen(*args, **kwargs):
        raise ValueError("a document no one foresaw")

    def counted() -> int:
        return sum(doc.get("predictions", 0) for doc in collections.predictions.find())

    with running_follower(mongo_client, collections, config):
        collections.source.insert_many(predictions(1, start=START, reviewed_fraction=0.0))
        wait_for(lambda: counted() == 1, what="the start-up recount")   # from now on, inserts come by the stream
        monkeypatch.setattr(consumer.prefetch, "count_inserts", unforeseen)
        collections.source.insert_many(predictions(30, start=START, seed=2, reviewed_fraction=0.0))
        wait_for(lambda: counted() == 31, what="every prediction counted")
