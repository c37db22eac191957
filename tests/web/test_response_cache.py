"""Answers kept by range and version: given again while nothing changed, rebuilt at once when anything did,
and always what scikit-learn says of the documents stored when the request was made."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest
from pymongo.errors import AutoReconnect

from tests.web.conftest import UTC, expected_metrics, local_day, make_documents
from web import keys, reports
from web.coalesce import Coalesced
from web.response_cache import ResponseCache
from web.rollup_cache import RollupCache

DAY = dt.date(2024, 3, 31)
PARAMS = {"from": "2024-03-30", "to": "2024-04-01"}


@pytest.fixture
def documents(web_collections, web_config, process) -> list[dict]:
    docs = make_documents(random.Random(17), dt.datetime(2024, 3, 29, 22, tzinfo=UTC), 72, 3, web_config.n_classes)
    web_collections.source.insert_many(docs)
    process()
    return docs


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The names of the reports built (a kept answer builds none)."""
    built: list[str] = []
    for name in ("summary", "daily", "classes"):
        real = getattr(reports, name)

        def counted(*args, _real=real, _name=name):
            built.append(_name)
            return _real(*args)
        counted.__name__ = name
        monkeypatch.setattr(reports, name, counted)
    return built


async def _get(client, path):
    response = await client.get(path, params=PARAMS)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return await response.json()


def _expected(docs, config):
    first, last = dt.date.fromisoformat(PARAMS["from"]), dt.date.fromisoformat(PARAMS["to"])
    return expected_metrics([d for d in docs if first <= local_day(d, config.model.zone) <= last], config.n_classes)


async def test_a_kept_answer_is_given_until_a_review_is_counted_then_rebuilt(client, documents, web_config,
                                                                             web_collections, process, builds):
    first = await _get(client, "/api/summary")
    assert await _get(client, "/api/summary") == first
    assert builds == ["summary"]                       # the second answer was kept, not built again
    assert first["reviews"] == _expected(documents, web_config)["reviews"]
    pending = next(d for d in documents if "output_validated" not in d and local_day(d, web_config.model.zone) == DAY)
    web_collections.source.update_one({"_id": pending["_id"]}, {"$set": {"output_validated": 2,
                                                                         "timestamp_validated": dt.datetime.now(UTC)}})
    pending["output_validated"] = 2
    process()
    after = await _get(client, "/api/summary")          # the review written just before is in the answer
    expected = _expected(documents, web_config)
    assert (after["reviews"], after["pending"]) == (expected["reviews"], first["pending"] - 1)
    assert after["accuracy"] == expected["accuracy"] and after["averages"]["macro"] == expected["macro"]
    assert builds == ["summary", "summary"]


async def test_a_rollup_written_without_a_new_updated_at_is_seen_at_once(client, documents, web_collections, builds):
    """The listing trusted an hour whose updated_at had not changed; the change stream needs no stamp."""
    old = dt.datetime(2024, 1, 1, tzinfo=UTC)
    web_collections.rollups.update_many({}, {"$set": {"updated_at": old}})
    before = await _get(client, "/api/daily")
    hour = dt.datetime(2024, 3, 31, 10, tzinfo=UTC)
    web_collections.rollups.update_one({"_id": hour}, {"$inc": {"reviews": 5, "cells.1_1": 5}})  # updated_at: still old
    after = await _get(client, "/api/daily")
    index = after["days"].index(DAY.isoformat())
    assert after["reviews"][index] == before["reviews"][index] + 5
    web_collections.rollups.delete_one({"_id": hour})
    gone = await _get(client, "/api/daily")
    assert gone["reviews"][index] < before["reviews"][index]


async def test_a_new_pending_prediction_is_counted_though_no_rollup_changed(client, documents, web_collections):
    before = await _get(client, "/api/summary")
    web_collections.source.insert_one({"_id": "new", "filename": "new.jpg", "output_prediction": 1,
                                       "output_confidence": 0.5, "timestamp": dt.datetime(2024, 3, 31, 9, tzinfo=UTC)})
    assert (await _get(client, "/api/summary"))["pending"] == before["pending"] + 1
    web_collections.source.update_one({"_id": "new"}, {"$set": {"timestamp": dt.datetime(2023, 1, 1, tzinfo=UTC)}})
    assert (await _get(client, "/api/summary"))["pending"] == before["pending"]


async def test_requests_list_no_hours_while_the_fence_follows_and_list_them_when_it_is_lost(
        client, documents, web_config, web_collections, monkeypatch):
    listings = []
    real_list = RollupCache._list

    async def counted_list(self, collections, start, end):
        listings.append(start)
        return await real_list(self, collections, start, end)

    monkeypatch.setattr(RollupCache, "_list", counted_list)
    expected = _expected(documents, web_config)
    for _ in range(3):
        assert (await _get(client, "/api/classes"))["support"] == expected["support"]
    assert listings == []
    fence = client.app[keys.ROLLUP_CACHE].fenced.fence

    async def broken(*args, **kwargs):
        raise AutoReconnect("gone")

    monkeypatch.setattr(fence._stream, "try_next", broken)
    web_collections.rollups.update_one({"_id": dt.datetime(2024, 3, 31, 10, tzinfo=UTC)},
                                       {"$inc": {"reviews": 1, "cells.3_3": 1}})
    lost = await _get(client, "/api/classes")            # the fence cannot vouch: read from MongoDB
    assert lost["support"][3] == expected["support"][3] + 1
    assert (await _get(client, "/api/classes")) == lost and listings   # and then listed, as before the fence
    monkeypatch.setattr(fence, "_failed_at", float("-inf"))   # retry now rather than in a second
    web_collections.rollups.update_one({"_id": dt.datetime(2024, 3, 31, 10, tzinfo=UTC)},
                                       {"$inc": {"reviews": 1, "cells.3_3": 1}})
    listed = len(listings)
    back = await _get(client, "/api/classes")            # followed again: a new generation, loaded afresh
    assert back["support"][3] == expected["support"][3] + 2 and len(listings) == listed


async def test_concurrent_callers_share_the_next_run_never_one_under_way():
    started, gate = [], asyncio.Event()

    async def run() -> int:
        started.append(len(started))
        await gate.wait()
        return len(started)

    coalesced = Coalesced(run)
    first = asyncio.create_task(coalesced.run())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(coalesced.run()) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 20     # twenty callers, one run after the first
    await coalesced.close()


async def test_the_response_cache_keeps_one_build_per_version_and_never_a_failed_one():
    cache: ResponseCache[str] = ResponseCache(kept=2)
    calls = []

    async def build(value: str) -> str:
        calls.append(value)
        await asyncio.sleep(0)
        if value == "boom":
            raise ValueError(value)
        return value

    assert await asyncio.gather(*(cache.get("a", 1, lambda: build("a1")) for _ in range(5))) == ["a1"] * 5
    assert await cache.get("a", 2, lambda: build("a2")) == "a2"
    with pytest.raises(ValueError):
        await cache.get("b", 1, lambda: build("boom"))
    assert await cache.get("b", 1, lambda: build("b1")) == "b1"
    await cache.get("c", 1, lambda: build("c1"))        # "a" was used least recently: dropped
    assert await cache.get("a", 2, lambda: build("a2 again")) == "a2 again"
    assert calls == ["a1", "a2", "boom", "b1", "c1", "a2 again"]
    await cache.close()


async def test_volume_is_kept_within_the_minute_with_its_own_as_of_and_rebuilt_when_rollups_change(
        client, documents, web_collections, monkeypatch):
    from web import api

    built = []
    real = api.volume_body

    def counted(*args):
        built.append(args[-2])
        return real(*args)

    monkeypatch.setattr(api, "volume_body", counted)
    first = await _get(client, "/api/volume")
    second = await _get(client, "/api/volume")
    assert first["today"]["as_of"] != second["today"]["as_of"]
    if len(built) == 1:   # both asked within the same minute: one build
        assert {k: v for k, v in first.items() if k != "today"} == {k: v for k, v in second.items() if k != "today"}
    web_collections.rollups.update_one({"_id": dt.datetime(2024, 3, 31, 10, tzinfo=UTC)}, {"$inc": {"reviews": 2}})
    third = await _get(client, "/api/volume")
    index = third["periods"].index(DAY.isoformat())
    assert third["reviews"][index] == first["reviews"][index] + 2
