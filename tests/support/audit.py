"""Independent checks of the rollups against the raw source documents (the "nothing lost, nothing doubled" audit)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from clara.db import Collections

UTC = dt.timezone.utc


def expected_cells(cols: Collections, n_classes: int) -> tuple[Counter, Counter, int]:
    """(cells, rejected, reviews) counted straight from the raw documents, valid reviews only."""
    cells: Counter = Counter()
    rejected: Counter = Counter()
    for doc in cols.source.find({"output_validated": {"$ne": None}}):
        pred, truth = doc.get("output_prediction"), doc.get("output_validated")
        if (not isinstance(pred, int) or isinstance(pred, bool) or not 0 <= pred < n_classes
                or not isinstance(doc.get("timestamp"), dt.datetime) or not doc.get("filename")):
            continue
        conf = doc.get("output_confidence")
        if conf is not None and (isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 <= conf <= 1):
            continue
        if truth is True:
            cells[(pred, pred)] += 1
        elif truth is False:
            rejected[pred] += 1
        elif isinstance(truth, int) and 0 <= truth < n_classes:
            cells[(truth, pred)] += 1
    return cells, rejected, sum(cells.values()) + sum(rejected.values())


def rollup_cells(cols: Collections) -> tuple[Counter, Counter, int]:
    cells: Counter = Counter()
    rejected: Counter = Counter()
    reviews = 0
    for doc in cols.rollups.find():
        reviews += doc.get("reviews", 0)
        for key, n in (doc.get("cells") or {}).items():
            t, p = key.split("_")
            cells[(int(t), int(p))] += n
        for key, n in (doc.get("rejected") or {}).items():
            rejected[int(key)] += n
    return +cells, +rejected, reviews


def assert_exactly_once(cols: Collections, n_classes: int, *, marked: bool = True, predictions: bool = True) -> int:
    """Every valid review counted once in the rollups, held in the counted collection and (with `marked`,
    consumer.mark_source) marked logged; with `predictions`, every prediction once as inserted (when a
    consumer counted them and its recount is complete); returns the review count."""
    expected = expected_cells(cols, n_classes)
    actual = rollup_cells(cols)
    assert actual[0] == +expected[0], f"confusion cells differ: {actual[0] - expected[0]} / {expected[0] - actual[0]}"
    assert actual[1] == +expected[1], "rejected-without-class counts differ"
    assert actual[2] == expected[2], f"review totals differ: rollups {actual[2]}, documents {expected[2]}"
    valid = {"output_validated": {"$ne": None}, "_id": {"$nin": cols.rejects.distinct("_id")}}
    if marked:
        unlogged = cols.source.count_documents(valid | {"logged": {"$ne": True}})
        assert unlogged == 0, f"{unlogged} valid reviews are not marked logged"
    uncounted = set(cols.source.distinct("_id", valid)) - set(cols.counted.distinct("_id"))
    assert not uncounted, f"{len(uncounted)} valid reviews have no entry in the counted collection"
    assert cols.counted.count_documents({}) == expected[2] + deleted_counted(cols), \
        "the counted collection holds entries for documents that are not counted"
    recount = (cols.state.find_one({"_id": "predictions"}) or {}).get("recount") or {}
    if predictions and recount.get("done_at"):   # a consumer counted predictions too, its recount complete
        assert_predictions_exact(cols, n_classes)
    return expected[2]


def deleted_counted(cols: Collections) -> int:
    """Counted entries whose source document is gone (a TTL index, a delete): their history stays counted."""
    return len(set(cols.counted.distinct("_id")) - set(cols.source.distinct("_id")))


def expected_predictions(cols: Collections, n_classes: int) -> tuple[Counter, int, int]:
    """(per hour and class, bad, total) counted straight from the raw documents, without CLARA's parser."""
    per_class: Counter = Counter()
    bad = total = 0
    for doc in cols.source.find({"timestamp": {"$type": "date"}}):
        stamp = doc["timestamp"]
        if not isinstance(stamp, dt.datetime):
            continue   # outside Python's range: set aside, in no hour
        hour = stamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        pred, conf, truth = doc.get("output_prediction"), doc.get("output_confidence"), doc.get("output_validated")
        valid = (isinstance(pred, int) and not isinstance(pred, bool) and 0 <= pred < n_classes
                 and isinstance(doc.get("filename"), str) and doc.get("filename")
                 and (conf is None or (isinstance(conf, (int, float)) and not isinstance(conf, bool) and 0 <= conf <= 1))
                 and (truth is None or isinstance(truth, bool) or (isinstance(truth, int) and 0 <= truth < n_classes))
                 and (doc.get("timestamp_validated") is None or isinstance(doc.get("timestamp_validated"), dt.datetime))
                 and (doc.get("trained") is None or isinstance(doc.get("trained"), bool))
                 and (doc.get("logged") is None or isinstance(doc.get("logged"), bool)))
        total += 1
        if valid:
            per_class[(hour, pred)] += 1
        else:
            bad += 1
    return per_class, bad, total


def rollup_predictions(cols: Collections) -> tuple[Counter, int, int]:
    per_class: Counter = Counter()
    bad = total = 0
    for doc in cols.predictions.find():
        hour = doc["_id"].astimezone(UTC).replace(minute=0)   # a rollup period, in its UTC hour
        for key, n in (doc.get("classes") or {}).items():
            per_class[(hour, int(key))] += n
        bad += doc.get("bad", 0)
        total += doc.get("predictions", 0)
    return +per_class, bad, total


def assert_predictions_exact(cols: Collections, n_classes: int) -> int:
    """Every prediction counted once in its hour and class (bad ones as bad); returns the total."""
    expected, actual = expected_predictions(cols, n_classes), rollup_predictions(cols)
    assert actual[0] == +expected[0], f"prediction counts differ: {actual[0] - expected[0]} / {expected[0] - actual[0]}"
    assert actual[1:] == expected[1:], f"bad/total predictions differ: rollups {actual[1:]}, documents {expected[1:]}"
    return expected[2]


def everything_counted(cols: Collections, n_classes: int) -> bool:
    """For wait_for: every valid review is in the review rollups and every prediction in the prediction
    rollups (a catch-up can count a review before the stream brings its insert event)."""
    return (rollup_cells(cols)[2] == expected_cells(cols, n_classes)[2]
            and rollup_predictions(cols)[2] == expected_predictions(cols, n_classes)[2])
