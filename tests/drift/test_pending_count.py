"""The backlog check counts pending reviews through whatever index the user has, or none."""

from __future__ import annotations

import datetime as dt

from drift.evaluate import count_pending
from tests.support.documents import predictions

START = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)


def test_pending_reviews_are_counted_through_an_equivalent_index_of_any_name(mongo_client, config):
    from clara.db import Collections

    cols = Collections.of(mongo_client, config)
    cols.source.insert_many(predictions(30, start=START, reviewed_fraction=0.5))
    pending = cols.source.count_documents({"output_validated": None})
    assert count_pending(cols, 1000) == pending            # no index at all: MongoDB picks a plan
    cols.source.create_index([("output_validated", 1), ("timestamp", 1)], name="users_own")
    assert count_pending(cols, 1000) == pending
    assert count_pending(cols, 5) == 5
