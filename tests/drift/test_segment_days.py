"""A segment's drift checks per day (the Drift tab's charts of one segment) are the overall day checks run on its
documents alone: counted into a database of their own and checked there, and recomputed with scipy."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from scipy.spatial.distance import jensenshannon

from drift.queries import daily_statistics
from drift.segment_days import segment_daily_statistics
from tests.drift.test_segment_day_estimates import CAMERAS, TODAY, counted, documents

FIRST, LAST = (TODAY - dt.timedelta(days=3)).date(), TODAY.date()


@pytest.mark.parametrize("reference", ["rolling", "fixed"])
def test_a_segments_day_checks_are_the_overall_ones_on_its_own_documents(mongo_client, make_config, reference):
    docs = documents({"c3": "mix", "c1": "calibration", "c4": "shift"})
    for doc in docs[::5]:
        doc["camera"] = f"{doc['camera']}.v$2"   # a value that needs escaping as a key of `values`
    drift = {"reference_start": "2025-03-02", "reference_end": "2025-03-03"} if reference == "fixed" else {}
    config, cols = counted(mongo_client, make_config, docs, fields=("camera", "lens"), **drift)
    for camera in ("c3", "c1", "c0.v$2"):
        mine = [doc for doc in docs if doc["camera"] == camera]
        database = f"{config.mongodb.database}_days"
        try:
            alone_config, alone = counted(mongo_client, make_config, mine, fields=(), database=database, **drift)
            oracle = daily_statistics(alone, alone_config, FIRST, LAST)
        finally:
            mongo_client.drop_database(database)
        found = segment_daily_statistics(cols, config, FIRST, LAST, "camera", camera)
        assert found == oracle and oracle["series"]["accuracy:day"]
        assert found != daily_statistics(cols, config, FIRST, LAST)
        # And from the raw documents: today's predicted-class mix against the reference days, with scipy.
        first, last = (TODAY - dt.timedelta(days=3), TODAY) if reference == "rolling" else (
            TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=1))
        today = Counter(doc["output_prediction"] for doc in mine if doc["timestamp"] >= TODAY)
        before = Counter(doc["output_prediction"] for doc in mine if first <= doc["timestamp"] < last)
        shares = [[row[c] / sum(row.values()) for c in range(3)] for row in (today, before)]
        point = found["series"]["prediction_drift:day"][-1]
        assert point["day"] == LAST.isoformat()
        assert point["value"] == pytest.approx(jensenshannon(*shares, base=2), rel=1e-9)
    assert segment_daily_statistics(cols, config, FIRST, LAST, "lens", "unknown") == daily_statistics(
        cols, config, FIRST, LAST)   # every document lacks the field: its one value is everything
    assert segment_daily_statistics(cols, config, FIRST, LAST, "camera", "never") == {"days": [], "series": {}}
    assert {doc["camera"] for doc in docs} >= set(CAMERAS)
