"""Whole answers kept by the change fence's counts: still read-your-writes for every collection an answer is
made of (the prediction recount's state included), rebuilt before a live update goes out, behind the same
headers; pending counts of the days warmed at start summed without a query until the source changes."""

from __future__ import annotations

import asyncio
import datetime as dt

from clara.db import PREDICTIONS_STATE_ID
from tests.web.conftest import UTC, local_day
from tests.web.test_response_cache import PARAMS, builds, documents  # noqa: F401 - the same data and fixtures
from web import hub as hub_module
from web import keys, queries
from web.hub import Hub
from web.security import SECURITY_HEADERS

HOUR = dt.datetime(2024, 3, 31, 10, tzinfo=UTC)


async def _get(client, path, **params):
    response = await client.get(path, params=PARAMS | params)
    assert response.status == 200, await response.text()
    return response, await response.json()


def _pending(docs, config) -> int:
    first, last = (dt.date.fromisoformat(PARAMS[name]) for name in ("from", "to"))
    return sum("output_validated" not in d and first <= local_day(d, config.model.zone) <= last for d in docs)


async def test_a_kept_answer_carries_the_security_headers(client, documents):
    for _ in range(2):   # built, then kept
        response, _ = await _get(client, "/api/summary")
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value


async def test_volume_tells_a_recount_started_or_finished_just_before_the_request(client, documents, web_collections):
    assert (await _get(client, "/api/volume"))[1]["recounting"] is False
    now = dt.datetime.now(UTC)
    web_collections.state.update_one({"_id": PREDICTIONS_STATE_ID}, {"$set": {"recount": {"started_at": now}}},
                                     upsert=True)
    assert (await _get(client, "/api/volume"))[1]["recounting"] is True
    web_collections.state.update_one({"_id": PREDICTIONS_STATE_ID}, {"$set": {"recount.done_at": now}})
    assert (await _get(client, "/api/volume"))[1]["recounting"] is False


async def test_warmed_days_pending_counts_are_summed_without_a_query_until_the_source_changes(
        documents, client, web_config, web_collections, monkeypatch):
    pending = client.app[keys.PENDING]
    async with asyncio.timeout(10):
        while pending._by_day is None:   # the warm-up (web.warm) has counted the days
            await asyncio.sleep(0.05)
    counted = []
    real = queries.pending_reviews

    async def counting(collections, days):
        counted.append(days)
        return await real(collections, days)

    monkeypatch.setattr(queries, "pending_reviews", counting)
    assert (await _get(client, "/api/summary"))[1]["pending"] == _pending(documents, web_config)
    assert counted == []
    new = {"_id": "new", "filename": "new.jpg", "output_prediction": 1, "output_confidence": 0.5,
           "timestamp": dt.datetime(2024, 3, 31, 9, tzinfo=UTC)}
    web_collections.source.insert_one(new)
    assert (await _get(client, "/api/summary"))[1]["pending"] == _pending([*documents, new], web_config)
    assert len(counted) == 1


async def test_an_update_rebuilds_what_the_dashboards_asked_for_before_it_is_sent(documents, client, web_collections):
    hub, answers = client.app[keys.HUB], client.app[keys.RESPONSES]
    before = (await _get(client, "/api/daily"))[1]
    order = []
    real_refresh = answers.refresh

    async def refresh():
        await real_refresh()
        order.append(("refreshed", dict(answers._held)))

    hub.before_update = refresh
    sent = asyncio.get_running_loop().create_future()
    real_broadcast = hub.broadcast

    async def broadcast(data, event, event_id=None):
        if event == "update" and not sent.done():
            order.append(("sent", None))
            sent.set_result(None)
        await real_broadcast(data, event, event_id)

    hub.broadcast = broadcast
    listening = Listening()   # a dashboard connected to /api/stream (the hub holds its clients weakly)
    hub.clients.add(listening)  # type: ignore[arg-type]
    web_collections.rollups.update_one({"_id": HOUR}, {"$inc": {"reviews": 3, "cells.2_2": 3}})
    await asyncio.wait_for(sent, 10)
    assert [step for step, _ in order] == ["refreshed", "sent"]
    kept = [future.result() for key, (_, future) in order[0][1].items() if key[:2] == ("answer", "daily")]
    assert len(kept) == 1   # the daily answer for the range, built anew before the update went out
    after = (await _get(client, "/api/daily"))[1]
    index = after["days"].index("2024-03-31")
    assert after["reviews"][index] == before["reviews"][index] + 3


class Listening:
    """A connected dashboard, as the hub sees one: something to send events to."""

    def __init__(self):
        self.sent = []

    async def send(self, data, id=None, event=None):
        self.sent.append(event)


async def test_with_no_dashboard_connected_an_update_rebuilds_nothing():
    rebuilt = []

    async def refresh():
        rebuilt.append(True)

    hub = Hub(max_per_second=100, reconnect_max_seconds=1, before_update=refresh)
    task = asyncio.create_task(hub.publish())
    try:
        hub.changed(HOUR)   # a batch nobody watches: the answers are built when next asked for
        async with asyncio.timeout(5):
            while hub.sequence < 1:
                await asyncio.sleep(0.01)
        assert rebuilt == []
        listening = Listening()
        hub.clients.add(listening)  # type: ignore[arg-type]
        hub.changed(HOUR)
        async with asyncio.timeout(5):
            while not listening.sent:
                await asyncio.sleep(0.01)
        assert rebuilt == [True] and listening.sent == ["update"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_update_waits_for_the_rebuild_at_most_ready_seconds(monkeypatch):
    monkeypatch.setattr(hub_module, "READY_SECONDS", 0.05)
    stuck = asyncio.Event()

    async def never():
        await stuck.wait()

    hub = Hub(max_per_second=100, reconnect_max_seconds=1, before_update=never)
    sent = []

    class Recording:
        async def send(self, data, id=None, event=None):
            sent.append(event)

    recording = Recording()
    hub.clients.add(recording)  # type: ignore[arg-type]
    task = asyncio.create_task(hub.publish())
    try:
        hub.changed(HOUR)
        async with asyncio.timeout(5):
            while not sent:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sent == ["update"]


async def test_a_refresh_builds_nothing_while_the_fence_cannot_vouch(documents, client, monkeypatch, builds):
    await _get(client, "/api/summary")
    fence = client.app[keys.PENDING].fence

    async def lost():
        return None

    monkeypatch.setattr(fence, "sync", lost)
    await client.app[keys.RESPONSES].refresh()
    assert builds == ["summary"]                   # asked once; the refresh built nothing
    await _get(client, "/api/summary")             # a request still gets its answer, read from MongoDB
    assert builds == ["summary", "summary"]
