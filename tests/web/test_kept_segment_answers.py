"""Segmented answers kept by the change fence's counts of the segment collections, as the overall ones are: kept
right after a write, read-your-writes for every write to the segment rollups of either kind (whatever its
`updated_at` says), each answer rebuilt only by the kinds it is made of, and the builds of one segment and range
sharing one read of each kind, after which only the hours that changed are read again (web.segment_totals)."""

from __future__ import annotations

import datetime as dt
import random

from tests.support.calls import noted_calls
from tests.support.inserts import count_inserts
from tests.web.conftest import UTC, make_documents
from tests.web.test_response_cache import builds  # noqa: F401 - the fixture
from tests.web.test_segments_api import RANGE, documents, web_config  # noqa: F401 - the same data and fixtures
from web import keys
from web.segment_totals import SegmentHours

NORTH = {**RANGE, "segment": "site:north"}
HOUR = dt.datetime(2024, 3, 31, 10, tzinfo=UTC)   # in the range, with reviews of every site
ID = {"hour": HOUR, "field": "site"}              # its segment rollup (clara.segments.segment_id)


def _reads(monkeypatch) -> list:
    """Every read of a segment's rollups from now on: (kind, value, the hours read again or "range")."""
    read: list = []
    for name, what in (("of_hours", lambda hours: sorted(hours)), ("of_range", lambda *_: "range")):
        noted_calls(monkeypatch, SegmentHours, name, lambda docs, *args, what=what: read.append(
            (docs.role.removeprefix("segment_"), docs.value, what(*args))))
    return read


async def _get(client, path, **params):
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_segmented_answer_is_kept_right_after_the_consumer_wrote_and_rebuilt_after_its_next_batch(
        client, documents, web_config, mongo_client, web_collections, process, builds):
    before = await _get(client, "/api/summary", **NORTH)   # the fixture's batch was written a moment ago
    assert await _get(client, "/api/summary", **NORTH) == before
    assert builds == ["summary"]
    more = make_documents(random.Random(5), dt.datetime(2024, 3, 31, 8, tzinfo=UTC), 2, 5, web_config.n_classes,
                          first_id=2_000_000)
    for doc in more:
        doc["site"] = "north"
    web_collections.source.insert_many(more)
    count_inserts(mongo_client, web_collections, web_config, more)
    process()
    after = await _get(client, "/api/summary", **NORTH)
    assert after["reviews"] == before["reviews"] + sum("output_validated" in doc for doc in more)
    assert after["pending"] == before["pending"] + sum("output_validated" not in doc for doc in more)
    assert builds == ["summary", "summary"]


async def test_a_segment_rollup_written_with_an_older_updated_at_is_in_the_next_answer(client, documents,
                                                                                     web_collections, builds):
    """A consumer whose clock is behind: neither the number of documents nor their latest write time moves."""
    old = dt.datetime(2024, 1, 1, tzinfo=UTC)
    for collection in (web_collections.segment_rollups, web_collections.segment_predictions):
        collection.update_many({}, {"$set": {"updated_at": old}})   # written long ago
    before = await _get(client, "/api/daily", **NORTH)
    assert (await _get(client, "/api/summary", **NORTH))["reviews"] == sum(before["reviews"])
    found = web_collections.segment_rollups.update_one(
        {"_id": ID}, {"$inc": {"values.north.reviews": 3, "values.north.cells.2_2": 3}, "$set": {"updated_at": old}})
    assert found.matched_count == 1
    daily = await _get(client, "/api/daily", **NORTH)
    index = daily["days"].index("2024-03-31")
    assert daily["reviews"][index] == before["reviews"][index] + 3
    assert (await _get(client, "/api/summary", **NORTH))["reviews"] == sum(before["reviews"]) + 3
    assert builds == ["daily", "summary", "daily", "summary"]


async def test_a_segment_prediction_rebuilds_what_counts_predictions_and_keeps_what_does_not(client, documents,
                                                                                            web_collections, builds):
    summary = await _get(client, "/api/summary", **NORTH)
    daily = await _get(client, "/api/daily", **NORTH)
    web_collections.segment_predictions.update_one({"_id": ID}, {"$inc": {"values.north.predictions": 2}})
    assert (await _get(client, "/api/summary", **NORTH))["pending"] == summary["pending"] + 2
    assert await _get(client, "/api/daily", **NORTH) == daily
    assert builds == ["summary", "daily", "summary"]   # the daily answer, of reviews only, was kept


async def test_a_segment_rollup_deleted_is_out_of_the_next_answer(client, documents, web_collections):
    """What a rebuild does first (replay --rebuild deletes the range's segment rollups, then writes them anew)."""
    before = await _get(client, "/api/daily", **NORTH)
    index = before["days"].index("2024-03-31")
    assert before["reviews"][index] > 0
    web_collections.segment_rollups.delete_many({"_id.field": "site"})
    after = await _get(client, "/api/daily", **NORTH)
    assert after["reviews"] == [0] * len(after["reviews"])


async def test_the_fence_counts_each_segment_collections_changes(client, documents, web_collections):
    fence = client.app[keys.PENDING].fence
    assert await fence.sync() is not None
    before = dict(fence.changes)
    web_collections.segment_rollups.update_one({"_id": ID}, {"$inc": {"values.north.reviews": 1}})
    web_collections.segment_predictions.update_one({"_id": ID}, {"$inc": {"values.north.predictions": 1}})
    web_collections.segment_predictions.update_one({"_id": ID}, {"$inc": {"values.south.predictions": 1}})
    await fence.sync()
    moved = {role: fence.changes[role] - before[role] for role in before if fence.changes[role] != before[role]}
    assert moved == {"segment_rollups": 1, "segment_predictions": 2}


async def test_the_builds_of_one_segment_and_range_read_each_kind_once_then_only_the_hour_that_changed(
        client, documents, web_collections, monkeypatch):
    # The client started before the documents were written: nothing was loaded at start (web.warm).
    read = _reads(monkeypatch)
    bodies = [await _get(client, path, **NORTH) for path in ("/api/summary", "/api/daily", "/api/classes")]
    # summary's totals and pending, daily and classes: one range read of each kind
    assert sorted(read) == [("predictions", "north", "range"), ("rollups", "north", "range")]
    web_collections.segment_rollups.update_one({"_id": ID}, {"$inc": {"values.north.reviews": 1,
                                                                       "values.north.cells.2_2": 1}})
    assert (await _get(client, "/api/summary", **NORTH))["reviews"] == bodies[0]["reviews"] + 1
    assert sum((await _get(client, "/api/daily", **NORTH))["reviews"]) == sum(bodies[1]["reviews"]) + 1
    assert sorted(read[2:]) == [("rollups", "north", [HOUR])]   # the one hour written, read once


async def test_the_estimates_and_compare_of_a_segment_share_the_totals_the_rollup_endpoints_read(
        client, documents, web_collections, monkeypatch):
    """Intervals, calibration, unreviewed accuracy, label shift and the version comparison read no segment rollups
    that summary and daily have read already, and see the next write to them."""
    read = _reads(monkeypatch)
    await _get(client, "/api/summary", **NORTH)
    await _get(client, "/api/summary", **RANGE, segment="site:south")
    assert sorted(read) == [(kind, value, "range") for kind in ("predictions", "rollups") for value in ("north", "south")]
    before = {path: await _get(client, path, **NORTH) for path in ("/api/intervals", "/api/calibration")}
    await _get(client, "/api/unreviewed", **NORTH, reference="range")
    await _get(client, "/api/label-shift", **NORTH, reference="range")
    compared = await _get(client, "/api/compare", **RANGE, field="site", a="north", b="south")
    assert len(read) == 4   # everything above came from the totals summary read
    web_collections.segment_rollups.update_one({"_id": ID}, {"$inc": {"values.north.reviews": 1,
                                                                       "values.north.cells.2_2": 1}})
    after = await _get(client, "/api/intervals", **NORTH)
    assert after["total"]["reviews"] == before["/api/intervals"]["total"]["reviews"] + 1
    assert await _get(client, "/api/compare", **RANGE, field="site", a="north", b="south") != compared
    # The hour written read again once per side (both follow the field's hours), the predictions' kept.
    assert sorted(read[4:]) == [("rollups", "north", [HOUR]), ("rollups", "south", [HOUR])]
