"""clara.predictions.classify on every shape of document: an hour and $inc, or none, and never an exception."""

from __future__ import annotations

import datetime as dt

from bson.datetime_ms import DatetimeMS
from hypothesis import given, settings

from clara.predictions import classify
from tests.clara.test_records import documents

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_arbitrary_documents_are_filed_under_an_hour_only_when_their_prediction_time_is_a_date(doc):
    key, rejection = classify(doc, 7, HOUR)
    if key is not None:
        assert isinstance(doc.get("timestamp"), dt.datetime)
        assert key[0].tzinfo is not None and key[0].minute == 0
        assert (rejection is None) == ("bad" not in key[1])


def test_a_document_broken_before_its_prediction_time_is_timeless_when_that_time_is_broken_too():
    for timestamp in (None, "2026-03-01", DatetimeMS(253402300800000)):
        doc = {"_id": 1, "output_prediction": 3} | ({} if timestamp is None else {"timestamp": timestamp})
        key, rejection = classify(doc, 7, HOUR)   # the parser names the missing filename first
        assert key is None and rejection.field == "filename"
    key, rejection = classify({"_id": 1, "output_prediction": 3, "timestamp": dt.datetime(2026, 3, 1, 9, 30)}, 7, HOUR)
    assert key == (dt.datetime(2026, 3, 1, 9, tzinfo=UTC), {"predictions": 1, "bad": 1})   # naive: UTC
