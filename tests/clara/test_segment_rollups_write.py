"""write_segment_rollups: a document given many increments is read and replaced in the transaction, the rest
$inc'ed; either way the stored counters are exactly what $inc'ing every increment gives, and a writer that
changes a document between the read and the replace is not overwritten."""

from __future__ import annotations

import datetime as dt
import random

from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.rollups import Counted, RollupDelta
from clara.segment_rollups import REWRITE_COUNTERS, segment_increments, write_segment_rollups
from clara.segments import segment_id

UTC = dt.timezone.utc
START = dt.datetime(2026, 5, 4, 8, tzinfo=UTC)
SITES = [f"site-{i}" for i in range(10)] + ["east.1$"]   # one value that must be escaped as a field name


def review_updates(n: int, seed: int, hours: int = 2) -> list:
    """The segment increments of `n` reviews over `hours` hours, two fields: what a fold applies."""
    rng = random.Random(seed)
    delta = RollupDelta()
    for _ in range(n):
        truth, predicted = rng.randrange(10), rng.randrange(10)
        segment = (("model_version", rng.choice(["v1", "v2", "v3"])), ("site", rng.choice(SITES)))
        delta.add(Counted(START + dt.timedelta(hours=rng.randrange(hours)), predicted, truth,
                          rng.randrange(1, 1_000_000), rng.randrange(100, 5000), segment))
    return delta.segment_updates()


def in_transaction(client, write) -> None:
    with client.start_session() as session:
        session.with_transaction(write, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))


def stored(collection) -> dict:
    return {(doc["_id"]["hour"], doc["_id"]["field"]): {k: v for k, v in doc.items() if k != "updated_at"}
            for doc in collection.find()}


def operation_types(collection, write) -> list[str]:
    """The kinds of change `write` makes to `collection`, as its change stream tells them."""
    with collection.watch(max_await_time_ms=200) as stream:
        write()
        kinds = []
        while (event := stream.try_next()) is not None:
            kinds.append(event["operationType"])
    return kinds


def test_large_increments_are_replaced_small_ones_incremented_and_both_equal_inc(collections, mongo_client):
    rewritten, incremented = collections.segment_rollups, collections.db["inc_only"]
    now = dt.datetime.now(UTC)
    rounds = [review_updates(4000, seed=1), review_updates(4000, seed=2), review_updates(12, seed=3),
              review_updates(4000, seed=4, hours=3)]
    assert min(len(inc) for inc in segment_increments(rounds[0]).values()) >= REWRITE_COUNTERS
    assert max(len(inc) for inc in segment_increments(rounds[2]).values()) < REWRITE_COUNTERS
    kinds = []
    for updates in rounds:
        kinds.append(operation_types(rewritten, lambda: in_transaction(
            mongo_client, lambda s: write_segment_rollups(s, rewritten, updates, now))))
        write_segment_rollups(None, incremented, updates, now)   # outside a transaction: always $inc
    assert stored(rewritten) == stored(incremented)
    assert len(stored(rewritten)) == 6   # 3 hours x 2 fields
    # New documents (upserts); the same ones rewritten; a few increments $inc'ed; a new hour beside two rewritten.
    assert [sorted(kind) for kind in kinds] == [["insert"] * 4, ["replace"] * 4, ["update"] * 4,
                                               ["insert"] * 2 + ["replace"] * 4]


def test_a_document_much_larger_than_its_increments_is_incremented(collections, mongo_client):
    """Replacing costs what the whole document holds: 600 increments into a document of many thousand
    counters are cheaper as $inc."""
    collection = collections.segment_rollups
    now = dt.datetime.now(UTC)
    big = {"_id": segment_id(START, "site"), "values": {f"v{i}": {f"c{j}": 1 for j in range(1000)} for i in range(10)}}
    collection.insert_one(big)
    updates = [((START, "site", f"v{i % 10}"), {f"c{i}": 1}) for i in range(600)]
    kinds = operation_types(collection, lambda: in_transaction(
        mongo_client, lambda s: write_segment_rollups(s, collection, updates, now)))
    assert kinds == ["update"]
    doc = collection.find_one()
    assert [doc["values"][f"v{i % 10}"][f"c{i}"] for i in range(600)] == [2] * 600


def test_a_write_between_the_read_and_the_replace_is_kept(collections, mongo_client, config):
    """Another writer increments the document after the transaction's snapshot: the replace meets a write
    conflict, the transaction runs again from a snapshot that holds the other write, and both count."""
    collection = collections.segment_rollups
    now = dt.datetime.now(UTC)
    first, second = review_updates(4000, seed=1, hours=1), review_updates(4000, seed=2, hours=1)
    write_segment_rollups(None, collection, first, now)
    attempts = []

    def write(session) -> None:
        attempts.append(1)
        collection.find_one({}, session=session)   # the snapshot is taken here
        if len(attempts) == 1:
            collection.update_one({"_id": segment_id(START, "site")}, {"$inc": {"values.site-1.reviews": 1000}})
        write_segment_rollups(session, collection, second, now)

    in_transaction(mongo_client, write)
    assert len(attempts) == 2
    expected = collections.db["expected"]
    for updates in (first, second, [((START, "site", "site-1"), {"reviews": 1000})]):
        write_segment_rollups(None, expected, updates, now)
    assert stored(collection) == stored(expected)
