"""MongoDB's grouped prediction counts against the record parser, on generated documents in a real mongod:
the pre-filter never accepts a document the parser rejects, and the groups add up to classify's counts."""

from __future__ import annotations

import datetime as dt
import math

from bson import Decimal128, Int64, ObjectId
from bson.errors import InvalidDocument
from bson.datetime_ms import DatetimeMS
from pymongo.errors import WriteError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clara import prediction_counts
from clara.predictions import PredictionDelta, classify
from clara.records import Record, parse_document
from clara.segments import canonical
from consumer.predictions import counted_groups

UTC = dt.timezone.utc
N_CLASSES = 7
FIELDS = ["filename", "output_prediction", "output_confidence", "timestamp", "output_validated",
          "timestamp_validated", "trained", "logged", "site", "model_version"]
SEGMENT_FIELDS = ("model_version", "site")
HOUR, HALF, QUARTER = (dt.timedelta(minutes=m) for m in (60, 30, 15))
WELL_FORMED = {"filename": "bin_001.jpg", "output_prediction": 3, "output_confidence": 0.91,
               "timestamp": dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)}

# Confidences where a bin edge or the rounding to micros could go either way.
edges = st.integers(0, 20).map(lambda k: k / 20)
near_edges = st.tuples(edges, st.sampled_from([-1, 1])).map(lambda e: min(1.0, max(0.0, math.nextafter(e[0], e[1] * 2))))
ties = st.integers(0, 999_999).map(lambda m: (m + 0.5) / 1_000_000)
confidences = st.one_of(st.floats(0, 1), edges, near_edges, ties, st.sampled_from([0, 1, Int64(1), -0.0]))
dates = st.one_of(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
                  st.datetimes(min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(2100, 1, 1),
                               timezones=st.just(UTC)),
                  st.sampled_from([DatetimeMS(-62135596800001), DatetimeMS(253402300800000)]))
values = st.one_of(st.none(), st.booleans(), st.integers(-3, 10), st.integers(-2**63, 2**63 - 1),
                   st.integers(0, 8).map(Int64), st.floats(allow_nan=True), confidences, st.text(max_size=4),
                   dates, st.just(Decimal128("3")), st.just(ObjectId("65f000000000000000000000")),
                   st.lists(st.integers(0, 8), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(-9, 9), max_size=1))
documents = st.dictionaries(st.sampled_from(FIELDS), values)
mostly_valid = st.builds(lambda base, extra: base | extra,
                         st.fixed_dictionaries({"filename": st.text(min_size=1, max_size=3),
                                                "output_prediction": st.integers(0, N_CLASSES - 1),
                                                "output_confidence": confidences, "timestamp": dates}),
                         st.dictionaries(st.sampled_from(FIELDS), values, max_size=2))


def server_counts(collection, selector, period, fields=SEGMENT_FIELDS) -> tuple[PredictionDelta, list]:
    """The server's groups of countable documents as a delta, and the documents it left to the parser."""
    delta, rest = PredictionDelta(), []
    for group in collection.aggregate(prediction_counts.pipeline(selector, N_CLASSES, period, fields)):
        if group.get("document") is not None:
            assert group["n"] == 1 and group["_id"] == {"document": group["document"]["_id"]}
            rest.append(group["document"])
            continue
        hour, inc, raw = prediction_counts.increments(group, fields)
        delta.add(hour, inc, segment(raw))
    return delta, rest


def python_counts(docs, period, delta=None) -> PredictionDelta:
    delta = PredictionDelta() if delta is None else delta
    for doc in docs:
        key, _ = classify(doc, N_CLASSES, period)
        if key is not None:
            delta.add(*key, segment(doc))
    return delta


def shown(doc) -> dict:
    """A document's fields and values, in any order (NaN equal to itself)."""
    return {field: repr(value) for field, value in doc.items()}


def segment(doc) -> tuple:
    return tuple(sorted((field, canonical(doc.get(field))) for field in SEGMENT_FIELDS))


def check(collection, docs, period) -> None:
    collection.delete_many({})
    for i, doc in enumerate(docs):
        try:
            collection.insert_one(doc | {"_id": i})
        except (WriteError, InvalidDocument):   # arrays in two fields of one index, a NUL in a key: refused to any writer
            pass
    stored = list(collection.find({"timestamp": {"$type": "date"}}))
    grouped, rest = server_counts(collection, {"timestamp": {"$type": "date"}}, period)
    assert all(prediction_counts.OK not in doc for doc in rest)
    # Every generated field counts or is a segment field: a document left to the parser comes back as stored.
    as_stored = {doc["_id"]: shown(doc) for doc in stored}
    assert all(shown(doc) == as_stored[doc["_id"]] for doc in rest)
    accepted = [doc for doc in stored if doc["_id"] not in {d["_id"] for d in rest}]
    for doc in accepted:
        assert isinstance(parse_document(doc, N_CLASSES), Record), doc   # never one the parser rejects
    assert grouped.updates() == python_counts(accepted, period).updates()
    python_counts(rest, period, grouped)
    assert grouped.updates() == python_counts(stored, period).updates()   # the whole recount, as one count
    assert grouped.segment_updates() == python_counts(stored, period).segment_updates()
    recounted = PredictionDelta()   # as the consumer's recounts take the groups
    rows = collection.aggregate(prediction_counts.pipeline({"timestamp": {"$type": "date"}}, N_CLASSES, period,
                                                           SEGMENT_FIELDS))
    for key, _, values, _ in counted_groups(rows, N_CLASSES, period, SEGMENT_FIELDS):
        if key is not None:
            recounted.add(*key, segment(values))
    assert recounted.segment_updates() == grouped.segment_updates() and recounted.updates() == grouped.updates()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(documents, max_size=12), st.sampled_from([HOUR, HALF, QUARTER]))
def test_arbitrary_documents_are_counted_by_the_server_only_where_the_parser_accepts_them(collections, docs, period):
    check(collections.source, docs, period)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mostly_valid, min_size=1, max_size=12), st.sampled_from([HOUR, HALF, QUARTER]))
def test_mostly_valid_documents_give_the_parsers_counts_bin_for_bin(collections, docs, period):
    check(collections.source, docs, period)


def test_well_formed_documents_are_all_left_to_the_server(collections):
    """The fast path is the common one: what a model's service writes is never sent to Python."""
    docs = [WELL_FORMED | {"_id": 1},
            WELL_FORMED | {"_id": 2, "output_prediction": Int64(6), "output_confidence": 1, "logged": True},
            WELL_FORMED | {"_id": 3, "output_confidence": None, "output_validated": 2, "trained": False,
                           "timestamp_validated": dt.datetime(2026, 3, 29, 1, 0), "site": "bin-7"},
            WELL_FORMED | {"_id": 4, "output_validated": True, "model_version": 3, "timestamp": dt.datetime(1969, 7, 20)},
            WELL_FORMED | {"_id": 5, "output_validated": False, "logged": None, "output_confidence": 0}]
    collections.source.insert_many(docs)
    grouped, rest = server_counts(collections.source, {}, HOUR)
    assert rest == []
    assert grouped.updates() == python_counts(list(collections.source.find()), HOUR).updates()


def test_a_broken_document_comes_back_with_only_the_fields_that_count_whatever_it_holds(collections):
    """A broken document carrying a payload near MongoDB's 16 MiB limit (an image, say) comes back without it."""
    payload = "x" * (16 * 1024 * 1024 - 400)
    collections.source.insert_one(WELL_FORMED | {"_id": 1, "output_prediction": 99, "image": payload, "site": "a"})
    grouped, rest = server_counts(collections.source, {}, HOUR)
    assert grouped.updates() == [] and [doc["_id"] for doc in rest] == [1]
    assert "image" not in rest[0] and rest[0]["site"] == "a" and rest[0]["output_prediction"] == 99
