"""The record contract parser: every shape of document in, a Record or a Rejection naming the field out."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from clara.records import Record, Rejection, Review, parse_document

UTC = dt.timezone.utc
FIELDS = ["_id", "filename", "output_prediction", "output_confidence", "timestamp", "output_validated",
          "timestamp_validated", "trained", "logged"]
BASE = {"_id": ObjectId(), "filename": "bin_001.jpg", "output_prediction": 3, "output_confidence": 0.91,
        "timestamp": dt.datetime(2026, 3, 29, 0, 30)}

values = st.one_of(st.none(), st.booleans(), st.integers(-10, 20), st.floats(allow_nan=True),
                   st.text(max_size=8), st.datetimes(), st.datetimes(timezones=st.just(UTC)),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
documents = st.dictionaries(st.sampled_from(FIELDS), values)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_arbitrary_documents_never_raise_and_rejections_name_a_field(doc):
    result = parse_document(doc, n_classes=7)
    assert isinstance(result, Record | Rejection)
    if isinstance(result, Rejection):
        assert result.field in FIELDS or result.field == "document"
        assert result.reason
    else:
        assert 0 <= result.predicted < 7 and result.timestamp.tzinfo is UTC


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS[5:]), values))
def test_a_valid_base_with_arbitrary_review_fields_is_parsed_or_rejected_on_those_fields(extra):
    result = parse_document(BASE | extra, n_classes=7)
    if isinstance(result, Rejection):
        assert result.field in extra


def test_review_forms():
    assert parse_document(BASE, 7).review is Review.PENDING
    assert parse_document(BASE | {"output_validated": None}, 7).review is Review.PENDING
    confirmed = parse_document(BASE | {"output_validated": 5}, 7)
    assert (confirmed.review, confirmed.truth) == (Review.CONFIRMED, 5)
    legacy_true = parse_document(BASE | {"output_validated": True}, 7)
    assert (legacy_true.review, legacy_true.truth) == (Review.CONFIRMED, 3)
    legacy_false = parse_document(BASE | {"output_validated": False}, 7)
    assert (legacy_false.review, legacy_false.truth) == (Review.REJECTED, None)


def test_naive_datetimes_are_utc_and_aware_ones_are_converted():
    record = parse_document(BASE | {"timestamp_validated": dt.datetime(2026, 3, 29, 2, 0,
                                                                       tzinfo=dt.timezone(dt.timedelta(hours=2)))}, 7)
    assert record.timestamp == dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert record.reviewed_at == dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert record.latency_seconds is None  # reviewed "before" predicted: no latency rather than a negative one


def test_each_kind_of_bad_document_names_its_field():
    cases = {
        "filename": BASE | {"filename": ""},
        "output_prediction": BASE | {"output_prediction": 7},
        "output_confidence": BASE | {"output_confidence": 1.01},
        "timestamp": BASE | {"timestamp": "2026-03-29"},
        "output_validated": BASE | {"output_validated": 2.0},
        "timestamp_validated": BASE | {"timestamp_validated": 17},
        "trained": BASE | {"trained": "yes"},
    }
    for field, doc in cases.items():
        result = parse_document(doc, 7)
        assert isinstance(result, Rejection) and result.field == field, (field, result)
    missing = parse_document({k: v for k, v in BASE.items() if k != "output_prediction"}, 7)
    assert str(missing) == "output_prediction: missing"
    assert parse_document(BASE | {"output_prediction": True}, 7).field == "output_prediction"
