"""Segments in the consumer: every review and prediction counted overall and once per segment field, exactly,
a capped field's values admitted once for every process, a corrected segment moving its review."""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter, defaultdict

import numpy as np
import pytest
from pymongo.errors import OperationFailure
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from clara.config import config_from_mapping
from clara.db import Collections, connect, ensure_indexes
from clara.embedded_mongo import EmbeddedMongo
from clara.metrics import REJECTED, classification_metrics
from clara.predictions import PredictionTotals
from clara.records import Record, parse_document
from clara.rollups import Totals
from clara.segment_rollups import segment_prediction_totals, segment_totals, segments_seen
from clara.segments import OTHER, SEGMENTS_STATE_ID, UNKNOWN, WARNINGS, canonical, read_admission, save_admission
from consumer.catchup import catch_up
from consumer.predictions import STATE_ID
from tests.support.audit import assert_exactly_once
from tests.support.documents import predictions
from tests.support.inserts import count_inserts
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 27, 20, 0, tzinfo=UTC)   # across Europe/Madrid's change to summer time
FIELDS = ("model_version", "site")
VERSIONS = ["v1", "v2", 3, None]          # an int, and a document without the field
SITES = ["north", "south", True, "east.1$"]  # a bool, and a value that cannot be a field name as it is


def with_segments(docs: list[dict], seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    for doc in docs:
        version = rng.choice(VERSIONS)
        if version is not None:
            doc["model_version"] = version
        doc["site"] = rng.choice(SITES)
    return docs


@pytest.fixture(autouse=True)
def fresh_warnings():
    WARNINGS.seen.clear()


@pytest.fixture
def segmented(make_config, mongo_client):
    config = make_config(consumer={"batch_max_seconds": 0.05, "checkpoint_idle_seconds": 1.0},
                         segments={"fields": list(FIELDS), "max_values": 20})
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    return config, cols


def flat(doc) -> Counter:
    counters: Counter = Counter()
    for key, value in doc.items():
        if isinstance(value, dict) and key != "_id":
            for inner, n in value.items():
                if isinstance(n, dict):
                    counters.update({f"{key}.{inner}.{k}": v for k, v in n.items()})
                else:
                    counters[f"{key}.{inner}"] += n
        elif isinstance(value, int) and key not in ("_id",):
            counters[key] += value
    return +counters


def assert_overall_is_the_sum_of_segments(overall, segments, field: str) -> None:
    by_hour: dict[dt.datetime, Counter] = defaultdict(Counter)
    for doc in segments.find({"_id.field": field}):
        for counters in doc["values"].values():
            by_hour[doc["_id"]["hour"]].update(flat(counters))
    expected = {doc["_id"]: flat(doc) for doc in overall.find()}
    assert {hour: +counter for hour, counter in by_hour.items() if +counter} == \
        {hour: counter for hour, counter in expected.items() if counter}


def sklearn_metrics(docs, n_classes: int) -> tuple[float, list, list]:
    records = [r for r in (parse_document(doc, n_classes) for doc in docs) if isinstance(r, Record) and r.reviewed]
    y_true = np.array([REJECTED if r.truth is None else r.truth for r in records])
    y_pred = np.array([r.predicted for r in records])
    precision, recall, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=list(range(n_classes)),
                                                             zero_division=np.nan)
    as_list = lambda values: [None if np.isnan(v) else float(v) for v in values]   # noqa: E731
    return float(accuracy_score(y_true, y_pred)), as_list(precision), as_list(recall)


def test_every_figure_per_segment_equals_sklearn_and_the_segments_add_up_to_the_overall(
        segmented, mongo_client):
    config, cols = segmented
    first = with_segments(predictions(300, start=START, reviewed_fraction=0.6, legacy_fraction=0.2))
    cols.source.insert_many(first)                      # a collection new to CLARA: recounted from the source
    with running_follower(mongo_client, cols, config):
        wait_for(lambda: (cols.state.find_one({"_id": STATE_ID}) or {}).get("recount", {}).get("done_at"),
                 timeout=30, what="the recount")
        live = with_segments(predictions(200, start=START + dt.timedelta(hours=5), seed=3, reviewed_fraction=0.5),
                             seed=8)
        cols.source.insert_many(live)                   # live inserts: counted from their insert events
        wait_for(lambda: sum(d.get("predictions", 0) for d in cols.predictions.find()) == 500, timeout=30,
                 what="every prediction")
        inserted = {doc["_id"]: dict(doc) for doc in first + live}
        pending = [doc["_id"] for doc in first + live if "output_validated" not in doc][:60]
        for i, doc_id in enumerate(pending):            # reviewers at work
            cols.source.update_one({"_id": doc_id}, {"$set": {"output_validated": i % 7,
                                                              "timestamp_validated": START + dt.timedelta(days=1)}})
        moved = [doc["_id"] for doc in first if "output_validated" in doc][:25]
        cols.source.update_many({"_id": {"$in": moved}}, {"$set": {"site": "west"}})   # a corrected segment
        reviews = cols.source.count_documents({"output_validated": {"$ne": None}})
        wait_for(lambda: sum(d.get("reviews", 0) for d in cols.rollups.find()) == reviews and
                 cols.counted.count_documents({"segment.site": "west"}) == 25, timeout=30, what="every review")

    docs = list(cols.source.find())
    for field in FIELDS:
        assert_overall_is_the_sum_of_segments(cols.rollups, cols.segment_rollups, field)
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)
        per_segment = segment_totals(cols, field)
        assert Totals.sum(per_segment.values()).cells == Totals.of(cols.rollups.find()).cells
        values = {canonical(doc.get(field)) for doc in docs if doc.get("output_validated") is not None}
        assert per_segment.keys() == values
        for value, totals in per_segment.items():
            mine = [doc for doc in docs if canonical(doc.get(field)) == value]
            metrics = classification_metrics(totals, config.n_classes)
            accuracy, precision, recall = sklearn_metrics(mine, config.n_classes)
            assert (metrics.accuracy, metrics.per_class["precision"], metrics.per_class["recall"]) == \
                (accuracy, precision, recall), f"{field} = {value}"
        for value, totals in segment_prediction_totals(cols, field).items():   # predictions count as inserted
            mine = [doc for doc in inserted.values() if canonical(doc.get(field)) == value]
            assert totals.classes == Counter(doc["output_prediction"] for doc in mine), f"{field} = {value}"
            assert totals.predictions == len(mine)
    assert PredictionTotals.sum(segment_prediction_totals(cols, "site").values()).classes == \
        PredictionTotals.of(cols.predictions.find()).classes
    seen = segments_seen(cols)
    assert {s.value for s in seen["model_version"]} == {"v1", "v2", "3", UNKNOWN}
    assert {s.value for s in seen["site"]} == {"north", "south", "true", "east.1$", "west"}
    west = next(s for s in seen["site"] if s.value == "west")
    assert (west.predictions, west.reviews) == (0, 25)   # reviews moved; their predictions stay where inserted
    assert sum(s.predictions for s in seen["site"]) == 500
    assert all(set(c["segment"]) == set(FIELDS) for c in cols.counted.find())


def test_without_segments_nothing_more_is_stored(collections, mongo_client, config):
    docs = with_segments(predictions(80, start=START, reviewed_fraction=0.5))
    collections.source.insert_many(docs)
    count_inserts(mongo_client, collections, config, docs)
    catch_up(mongo_client, collections, config)
    names = collections.db.list_collection_names()
    assert config.mongodb.segment_rollups_collection not in names
    assert config.mongodb.segment_predictions_collection not in names
    assert collections.state.find_one({"_id": SEGMENTS_STATE_ID}) is None
    assert all(set(entry) == {"_id", "hour", "predicted", "truth", "confidence_micros", "latency_ms", "at"}
               for entry in collections.counted.find())


def test_a_high_cardinality_field_is_capped_with_a_warning(make_config, mongo_client, caplog):
    config = make_config(segments={"fields": ["camera"], "max_values": 3})
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = predictions(120, start=START, reviewed_fraction=0.5)
    for i, doc in enumerate(docs):
        doc["camera"] = f"cam-{i % 40:02d}"               # 40 cameras, 3 may have a segment
    cols.source.insert_many(docs)
    caplog.set_level(logging.WARNING, logger="clara.segments")
    count_inserts(mongo_client, cols, config, docs[:60])
    count_inserts(mongo_client, cols, config, docs[60:])   # a second batch: the cap holds across batches
    catch_up(mongo_client, cols, config)

    admitted = cols.state.find_one({"_id": SEGMENTS_STATE_ID})["values"]["camera"]
    assert admitted == ["cam-00", "cam-01", "cam-02"]
    seen = {s.value: s for s in segments_seen(cols)["camera"]}
    assert seen.keys() == {"cam-00", "cam-01", "cam-02", OTHER}
    assert seen[OTHER].predictions == 120 - 3 * 3 and sum(s.predictions for s in seen.values()) == 120
    assert sum(s.reviews for s in seen.values()) == cols.source.count_documents({"output_validated": {"$ne": None}})
    warned = [r.getMessage() for r in caplog.records if "segments.max_values = 3" in r.getMessage()]
    assert len(warned) == 37 and len(set(warned)) == 37   # once per capped value, not per document
    assert "'cam-03' counts under 'other'" in warned[0]


def test_two_transactions_cannot_both_admit_the_last_value(make_config, mongo_client):
    config = make_config(segments={"fields": ["site"], "max_values": 1})
    cols = Collections.of(mongo_client, config)
    cols.state.insert_one({"_id": "consumer"})   # the state collection exists (checkpoint, lease) before any batch
    with mongo_client.start_session() as one, mongo_client.start_session() as two:
        one.start_transaction()
        two.start_transaction()
        first, second = (read_admission(cols.state, config.segments, session) for session in (one, two))
        assert (first.value("site", "x"), second.value("site", "y")) == ("x", "y")   # each alone: under the cap
        save_admission(cols.state, first, one)
        with pytest.raises(OperationFailure) as conflict:
            save_admission(cols.state, second, two)
        assert conflict.value.has_error_label("TransientTransactionError")   # with_transaction decides again
        two.abort_transaction()
        one.commit_transaction()
    retried = read_admission(cols.state, config.segments)
    assert retried.value("site", "y") == OTHER and retried.value("site", "x") == "x"


def test_a_standalone_server_counts_segments_once_even_when_its_journal_is_applied_twice(tmp_path):
    from consumer import standalone

    with EmbeddedMongo(tmp_path / "standalone", replica_set=None) as mongo:
        config = config_from_mapping({"consumer": {"poll_interval_seconds": 0.1, "recheck_per_poll": 100},
                                      "profiles": {"local_store_dir": str(tmp_path / "profiles")},
                                      "segments": {"fields": list(FIELDS), "max_values": 3}},
                                     {"MONGODB_URI": mongo.uri}, source="test")
        client = connect(config)
        cols = Collections.of(client, config)
        docs = with_segments(predictions(40, start=START, reviewed_fraction=0.7))
        cols.source.insert_many(docs[:30])
        with running_follower(client, cols, config):
            reviewed = cols.source.count_documents({"output_validated": {"$ne": None}})
            wait_for(lambda: sum(d.get("reviews", 0) for d in cols.rollups.find()) == reviewed, what="the first poll")
            for field in FIELDS:   # each poll recounts the predictions inserted since, per segment too
                wait_for(lambda field=field: sum(t.predictions for t in segment_prediction_totals(cols, field).values())
                         == 30, what=f"the {field} segment prediction rollups")
            moved = [d["_id"] for d in docs[:30] if "output_validated" in d][:4]
            cols.source.update_many({"_id": {"$in": moved}}, {"$set": {"site": "west"}})   # beyond the cap: other
            wait_for(lambda: cols.counted.count_documents({"_id": {"$in": moved}, "segment.site": OTHER}) == 4,
                     what="the moved segments, by recheck")
        real_apply, journals = standalone._apply_journal, []

        def crash_after_applying(cols_, journal):
            real_apply(cols_, journal | {"_id": "applied already"})   # every effect made, the journal kept
            journals.append(journal)
            raise KeyboardInterrupt   # as if killed before the journal entry went

        standalone._apply_journal = crash_after_applying
        cols.source.insert_many(docs[30:])
        try:
            with pytest.raises(KeyboardInterrupt):
                standalone.commit_batch_journaled(client, cols, config, [d["_id"] for d in docs[30:]],
                                                  sinks=("local",))
        finally:
            standalone._apply_journal = real_apply
        assert journals and journals[0]["segment_rollups"]
        assert standalone.recover_journals(cols) == 1          # applied a second time
        source = list(cols.source.find())
        reviews = [d for d in source if d.get("output_validated") is not None]
        admitted = cols.state.find_one({"_id": SEGMENTS_STATE_ID})["values"]
        for field in FIELDS:
            assert_overall_is_the_sum_of_segments(cols.rollups, cols.segment_rollups, field)
            assert len(admitted[field]) == len(set(admitted[field])) <= 3
            expected = Counter(value if value in (UNKNOWN, *admitted[field]) else OTHER
                               for value in (canonical(d.get(field)) for d in reviews))
            assert {value: totals.reviews for value, totals in segment_totals(cols, field).items()} == expected
        rows = [entry["columns"] for entry in cols.outbox.find()]
        assert sum(len(r["segments"]["site"]) for r in rows) == sum(len(r["predicted"]) for r in rows) == len(reviews)
        assert_exactly_once(cols, config.n_classes)
        client.close()


def test_a_standalone_recount_replaces_the_segment_prediction_rollups(segmented):
    from consumer.predictions import hours_inserted_since, recount_replacing

    config, cols = segmented
    first = with_segments(predictions(80, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.5))
    cols.source.insert_many(first)
    recount = lambda hours: recount_replacing(cols, config.n_classes, config.model.rollup_period, hours,  # noqa: E731
                                              config.segments)
    recount(None)
    since = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
    recount(None)                                                   # again: replaced, not added twice
    later = with_segments(predictions(15, start=START + dt.timedelta(hours=2), seed=5), seed=9)
    cols.source.insert_many(later)
    recount(hours_inserted_since(cols, since))                      # the next poll: the hours inserted into
    docs = list(cols.source.find())
    for field in FIELDS:
        assert_overall_is_the_sum_of_segments(cols.predictions, cols.segment_predictions, field)
        for value, totals in segment_prediction_totals(cols, field).items():
            mine = [doc for doc in docs if canonical(doc.get(field)) == value]
            assert totals.classes == Counter(doc["output_prediction"] for doc in mine), f"{field} = {value}"
    assert {s.value for s in segments_seen(cols)["site"]} == {"north", "south", "true", "east.1$"}
