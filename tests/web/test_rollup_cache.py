"""The in-memory per-day totals always equal summing the stored hourly rollups afresh."""

from __future__ import annotations

import asyncio
import datetime as dt

from pymongo import AsyncMongoClient

from clara.db import Collections, client_options
from clara.predictions import PredictionTotals, predictions_by_day
from clara.rollups import Totals, local_day, totals_by_day
from web.params import DateRange
from web.changes import ChangeFence
from web.rollup_cache import RollupCache

UTC = dt.timezone.utc
OLD = dt.datetime(2024, 1, 1, tzinfo=UTC)  # an updated_at long past: trusted from memory
FIRST, LAST = dt.date(2024, 3, 30), dt.date(2024, 4, 1)  # Europe/Madrid changes to summer time on 31 March


def _hour(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, tzinfo=UTC)


async def test_changed_deleted_unstamped_and_recent_hours_are_read_again(web_config, web_collections):
    zone = web_config.model.zone
    days = DateRange(FIRST, LAST, zone)
    web_collections.rollups.insert_many(
        [{"_id": _hour(d, h), "reviews": 2, "cells": {"0_0": 1, "1_0": 1}, "updated_at": OLD}
         for d in (29, 30, 31) for h in range(0, 24, 3)])
    client = AsyncMongoClient(web_config.mongodb.uri, **client_options(web_config))
    cache = RollupCache(zone)
    try:
        cols = Collections.of(client, web_config)  # type: ignore[arg-type]

        async def check() -> None:
            start, end = days.bounds
            expected = totals_by_day(web_collections.rollups.find({"_id": {"$gte": start, "$lt": end}}), zone)
            assert await cache.by_day(cols, days) == expected
            assert Totals.sum(expected.values()) == Totals.of(
                web_collections.rollups.find({"_id": {"$gte": start, "$lt": end}}))

        await check()
        await check()  # all from memory
        web_collections.rollups.update_one({"_id": _hour(30, 3)}, {"$inc": {"cells.1_1": 5, "reviews": 5},
                                                                   "$set": {"updated_at": OLD + dt.timedelta(1)}})
        await check()
        web_collections.rollups.delete_one({"_id": _hour(31, 6)})
        await check()
        web_collections.rollups.update_one({"_id": _hour(31, 9)}, {"$inc": {"rejected.2": 1, "reviews": 1},
                                                                   "$unset": {"updated_at": ""}})
        await check()
        web_collections.rollups.update_one({"_id": _hour(31, 9)}, {"$inc": {"rejected.2": 1, "reviews": 1}})
        await check()  # no updated_at: never trusted
        now = dt.datetime.now(UTC)
        web_collections.rollups.update_one({"_id": _hour(30, 12)}, {"$inc": {"cells.0_1": 1, "reviews": 1},
                                                                    "$set": {"updated_at": now}})
        await check()
        web_collections.rollups.update_one({"_id": _hour(30, 12)}, {"$inc": {"cells.0_1": 1, "reviews": 1},
                                                                    "$set": {"updated_at": now}})
        await check()  # the same updated_at written just now: not trusted yet
        web_collections.rollups.insert_one({"_id": _hour(31, 22), "reviews": 1, "cells": {"2_2": 1},
                                            "updated_at": OLD})
        await check()
    finally:
        await client.close()


async def test_concurrent_requests_share_the_next_listing_and_see_every_earlier_write(web_config, web_collections,
                                                                                      monkeypatch):
    zone = web_config.model.zone
    days = DateRange(FIRST, LAST, zone)
    web_collections.rollups.insert_many([{"_id": _hour(d, h), "reviews": 1, "cells": {"0_0": 1}, "updated_at": OLD}
                                         for d in (29, 30, 31) for h in range(24)])
    client = AsyncMongoClient(web_config.mongodb.uri, **client_options(web_config))
    cache = RollupCache(zone)
    listings, gate = [], asyncio.Event()
    real_list = RollupCache._list

    async def slow_first_list(self, collections, start, end):
        listed = await real_list(self, collections, start, end)
        listings.append(listed)
        if len(listings) == 2:     # the first listing of the concurrent requests: it has read, and waits
            await gate.wait()
        return listed

    monkeypatch.setattr(RollupCache, "_list", slow_first_list)
    try:
        cols = Collections.of(client, web_config)  # type: ignore[arg-type]
        await cache.by_day(cols, days)                              # cold: read whole, no listing
        await cache.by_day(cols, days)                              # warm: listing 1
        first = asyncio.create_task(cache.by_day(cols, days))      # listing 2 reads, then waits at the gate
        while len(listings) < 2:
            await asyncio.sleep(0.01)
        web_collections.rollups.update_one({"_id": _hour(30, 5)}, {"$inc": {"reviews": 4, "cells.1_1": 4},
                                                                   "$set": {"updated_at": OLD + dt.timedelta(1)}})
        later = [asyncio.create_task(cache.by_day(cols, days)) for _ in range(20)]
        await asyncio.sleep(0.2)
        gate.set()
        before, after = await first, await asyncio.gather(*later)
    finally:
        await client.close()

    assert len(listings) == 3                                       # twenty requests, one listing
    day = local_day(_hour(30, 5), zone)
    assert before[day].reviews == 24
    assert all(result[day].reviews == 28 for result in after)      # all listed after the write


async def test_the_prediction_rollups_cache_equals_summing_the_stored_hours_afresh(web_config, web_collections):
    zone = web_config.model.zone
    days = DateRange(FIRST, LAST, zone)
    web_collections.predictions.insert_many(
        [{"_id": _hour(d, h), "predictions": 3, "classes": {"0": 2}, "bad": 1, "confidence": {"0": {"19": 2}},
          "updated_at": OLD} for d in (29, 30, 31) for h in range(0, 24, 2)])
    client = AsyncMongoClient(web_config.mongodb.uri, **client_options(web_config))
    cache = RollupCache(zone, role="predictions", summed=PredictionTotals.of)
    try:
        cols = Collections.of(client, web_config)  # type: ignore[arg-type]

        async def check() -> None:
            start, end = days.bounds
            stored = list(web_collections.predictions.find({"_id": {"$gte": start, "$lt": end}}))
            assert await cache.by_day(cols, days) == predictions_by_day(stored, zone)
            assert await cache.by_hour(cols, days) == {_utc(doc["_id"]): doc for doc in stored}

        await check()
        await check()  # all from memory
        web_collections.predictions.update_one({"_id": _hour(30, 4)}, {"$inc": {"predictions": 2, "classes.3": 2},
                                                                       "$set": {"updated_at": OLD + dt.timedelta(1)}})
        await check()
        # A recount empties an hour (and stamps it) before it fills it again.
        web_collections.predictions.update_one({"_id": _hour(31, 8)}, {
            "$unset": {"predictions": "", "classes": "", "bad": "", "confidence": ""},
            "$set": {"updated_at": OLD + dt.timedelta(2)}})
        await check()
        web_collections.predictions.delete_one({"_id": _hour(31, 10)})
        await check()
    finally:
        await client.close()


def _utc(hour: dt.datetime) -> dt.datetime:
    return hour.replace(tzinfo=UTC) if hour.tzinfo is None else hour


async def test_with_a_change_fence_every_write_is_seen_stamped_or_not_and_versions_follow_the_days(
        web_config, web_collections):
    zone = web_config.model.zone
    days, spring = DateRange(FIRST, LAST, zone), DateRange(dt.date(2024, 3, 31), dt.date(2024, 3, 31), zone)
    web_collections.rollups.insert_many(
        [{"_id": _hour(d, h), "reviews": 2, "cells": {"0_0": 1, "1_0": 1}, "updated_at": OLD}
         for d in (29, 30, 31) for h in range(0, 24, 3)])
    client = AsyncMongoClient(web_config.mongodb.uri, **client_options(web_config))
    fence = ChangeFence()
    cache = RollupCache(zone, fence=fence)
    try:
        cols = Collections.of(client, web_config)  # type: ignore[arg-type]
        fence.attach(cols)

        async def check() -> tuple[int, int]:
            start, end = days.bounds
            expected = totals_by_day(web_collections.rollups.find({"_id": {"$gte": start, "$lt": end}}), zone)
            by_day, version = await cache.by_day_versioned(cols, days)
            assert by_day == expected
            assert version is not None
            return version, (await cache.by_day_versioned(cols, spring))[1]

        first = await check()
        assert await check() == first                           # nothing changed: the same versions
        web_collections.rollups.update_one({"_id": _hour(30, 3)}, {"$inc": {"cells.1_1": 5, "reviews": 5}})
        second = await check()                                  # no new updated_at, seen all the same
        assert second[0] > first[0] and second[1] == first[1]  # 30 March changed, 31 March did not
        web_collections.rollups.delete_one({"_id": _hour(31, 6)})
        third = await check()
        assert third[1] > second[1]
        web_collections.rollups.insert_one({"_id": _hour(31, 22), "reviews": 1, "cells": {"2_2": 1}})
        await check()
        web_collections.rollups.drop()                          # a drop: every hour taken as changed
        web_collections.rollups.insert_one({"_id": _hour(30, 12), "reviews": 3, "cells": {"2_2": 3}})
        await check()
    finally:
        await cache.close()
        await fence.close()
        await client.close()
