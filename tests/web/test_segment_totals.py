"""A segment's per-day totals kept in memory (web.segment_totals) always equal summing its stored counters
afresh; a write re-reads only the hours of its field that changed, and versions move only for their days."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from pymongo import AsyncMongoClient

from clara.db import Collections, client_options
from clara.rollups import Totals, local_day
from clara.segments import segment_id
from web.changes import ChangeFence
from web.day_totals import DayTotals
from web.params import DateRange
from web.segment_totals import SegmentTotals

UTC = dt.timezone.utc
FIRST, LAST = dt.date(2024, 3, 30), dt.date(2024, 4, 1)  # Europe/Madrid changes to summer time on 31 March


def _hour(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, tzinfo=UTC)


def _counters(n: int) -> dict:
    return {"reviews": n, "cells": {"0_0": n}}


@pytest.fixture
async def following(web_config, web_collections):
    """An async client's collections with a change fence following them, and the segment totals over it."""
    client = AsyncMongoClient(web_config.mongodb.uri, **client_options(web_config))
    fence = ChangeFence()
    cols = Collections.of(client, web_config)  # type: ignore[arg-type]
    fence.attach(cols)
    kept = SegmentTotals(web_config.model.zone, fence, max_kept=2)
    try:
        yield cols, fence, kept
    finally:
        await kept.close()
        await fence.close()
        await client.close()


def _expected(web_collections, zone, field: str, value: str) -> dict[dt.date, Totals]:
    """The oracle: the value's counters in the field's stored segment rollups, summed per local day."""
    start, end = DateRange(FIRST, LAST, zone).bounds
    grouped = defaultdict(list)
    for doc in web_collections.segment_rollups.find({"_id.field": field}):
        hour = doc["_id"]["hour"]
        if start <= hour < end and value in doc.get("values", {}):
            grouped[local_day(hour, zone)].append(doc["values"][value])
    return {day: Totals.of(parts) for day, parts in grouped.items()}


async def test_a_segments_day_totals_equal_its_stored_counters_after_every_kind_of_write(
        web_config, web_collections, following):
    cols, _, kept = following
    zone = web_config.model.zone
    days, spring = DateRange(FIRST, LAST, zone), DateRange(dt.date(2024, 3, 31), dt.date(2024, 3, 31), zone)
    web_collections.segment_rollups.insert_many(
        [{"_id": segment_id(_hour(d, h), field), "values": {value: _counters(1 + h % 4) for value in values}}
         for d in (29, 30, 31) for h in range(0, 24, 3)
         for field, values in (("model_version", ("v1", "v2")), ("site", ("v1", "south")))])
    v1 = kept.of("segment_rollups", "model_version", "v1", Totals.of)

    async def check() -> tuple:
        snapshot = await v1.snapshot(cols, days.days)
        assert snapshot.by_day(days.days) == _expected(web_collections, zone, "model_version", "v1")
        return snapshot, snapshot.version(days.days), snapshot.version(spring.days)

    first, whole, on_31 = await check()
    assert (await check())[1:] == (whole, on_31)                 # nothing changed: the same versions
    web_collections.segment_rollups.update_one({"_id": segment_id(_hour(30, 3), "model_version")},
                                               {"$inc": {"values.v1.reviews": 5, "values.v1.cells.1_1": 5}})
    second, whole2, on_31_2 = await check()
    assert whole2 > whole and on_31_2 == on_31                  # 30 March changed, 31 March did not
    assert second.hours[dt.date(2024, 3, 31)] is first.hours[dt.date(2024, 3, 31)]   # not read again
    # Another field's write, a value of the same name included: nothing of this segment is read or moved.
    web_collections.segment_rollups.update_one({"_id": segment_id(_hour(31, 6), "site")},
                                               {"$inc": {"values.v1.reviews": 7, "values.v1.cells.0_0": 7}})
    third, *versions = await check()
    assert third is second and versions == [whole2, on_31_2]
    web_collections.segment_rollups.delete_one({"_id": segment_id(_hour(31, 6), "model_version")})  # a rebuild
    assert (await check())[2] > on_31_2
    web_collections.segment_rollups.update_one({"_id": segment_id(_hour(31, 9), "model_version")},
                                               {"$unset": {"values.v1": ""}})             # the value is gone
    await check()
    web_collections.segment_rollups.insert_one({"_id": segment_id(_hour(31, 22), "model_version"),
                                                "values": {"v1": _counters(3)}})          # a new period
    await check()
    web_collections.segment_rollups.drop()                      # a drop: every hour taken as changed
    web_collections.segment_rollups.insert_one({"_id": segment_id(_hour(30, 12), "model_version"),
                                                "values": {"v1": _counters(2)}})
    await check()


async def test_every_cache_of_a_role_sees_the_hours_that_changed(web_config, web_collections, following):
    """Two caches of the same collection, each taking its own changed hours (one taker would starve the other)."""
    cols, fence, _ = following
    zone = web_config.model.zone
    days = DateRange(FIRST, LAST, zone)
    web_collections.rollups.insert_many([{"_id": _hour(d, h), "reviews": 1, "cells": {"0_0": 1}}
                                         for d in (30, 31) for h in range(0, 24, 6)])
    one, other = (DayTotals(zone, fence, "rollups", Totals.of) for _ in range(2))
    try:
        for cache in (one, other):
            await cache.snapshot(cols, days.days)
        web_collections.rollups.update_one({"_id": _hour(30, 6)}, {"$inc": {"reviews": 4, "cells.1_1": 4}})
        start, end = days.bounds
        for cache in (one, other):
            expected = Totals.sum(Totals.of([doc]) for doc in web_collections.rollups.find(
                {"_id": {"$gte": start, "$lt": end}}))
            assert Totals.sum((await cache.snapshot(cols, days.days)).by_day(days.days).values()) == expected
    finally:
        await one.close()
        await other.close()


async def test_at_most_max_kept_segments_are_followed_and_a_dropped_one_reads_afresh(
        web_config, web_collections, following):
    cols, fence, kept = following
    zone = web_config.model.zone
    days = DateRange(FIRST, LAST, zone)
    web_collections.segment_rollups.insert_many(
        [{"_id": segment_id(_hour(30, h), "model_version"), "values": {v: _counters(1) for v in ("v1", "v2", "v3")}}
         for h in range(0, 24, 6)])
    first = kept.of("segment_rollups", "model_version", "v1", Totals.of)
    held = await first.snapshot(cols, days.days)
    assert kept.of("segment_rollups", "model_version", "v1", Totals.of) is first   # asked again: the same
    for value in ("v2", "v3"):
        await kept.of("segment_rollups", "model_version", value, Totals.of).snapshot(cols, days.days)
    assert len(kept) == 2 and first.noted not in fence._noted["segment_rollups"]
    web_collections.segment_rollups.update_one({"_id": segment_id(_hour(30, 6), "model_version")},
                                               {"$inc": {"values.v1.reviews": 9, "values.v1.cells.0_0": 9}})
    fresh = await first.snapshot(cols, days.days)    # no longer noted: loaded afresh, so still exact
    assert fresh.by_day(days.days) == _expected(web_collections, zone, "model_version", "v1") != held.by_day(days.days)
    assert kept.of("segment_rollups", "model_version", "v1", Totals.of) is not first
