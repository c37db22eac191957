"""/api/stream: status on connect, an update within a second or two of a rollup change, coalesced
bursts, heartbeats, Last-Event-ID, and clients that go away are dropped, logged, never raised."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time

from web import keys
from web.hub import Hub

UTC = dt.timezone.utc
HOUR = dt.datetime(2024, 3, 31, 1, tzinfo=UTC)


async def read_event(response, timeout: float = 5.0) -> dict:
    """The next event (comments such as heartbeats are returned as {'comment': ...})."""
    event: dict = {}
    async with asyncio.timeout(timeout):
        while True:
            line = (await response.content.readline()).decode().rstrip("\r\n")
            if not line:
                if event:
                    return event
                continue
            field, _, value = line.partition(": ")
            event[field or "comment"] = value


async def read_until(response, kind: str, timeout: float = 5.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = await read_event(response, timeout)
            if event.get("event") == kind:
                return event


async def wait_live(client) -> None:
    async with asyncio.timeout(5):
        while not client.app[keys.HUB].live:
            await asyncio.sleep(0.02)


async def test_update_arrives_soon_after_a_rollup_change(client, web_collections):
    await wait_live(client)
    async with client.get("/api/stream") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        status = await read_event(response)
        assert (status["event"], json.loads(status["data"])) == ("status", {"live": True})
        started = time.monotonic()
        await asyncio.to_thread(web_collections.rollups.update_one, {"_id": HOUR}, {"$inc": {"reviews": 1}},
                                upsert=True)
        update = await read_until(response, "update", timeout=2.0)
        assert time.monotonic() - started < 2.0
        assert json.loads(update["data"]) == {"hours": [HOUR.isoformat()]}
        assert update["id"] == client.app[keys.HUB].last_id


async def test_review_processed_by_the_consumer_reaches_the_stream(client, web_collections, process):
    await wait_live(client)
    async with client.get("/api/stream") as response:
        await read_event(response)
        doc = {"_id": 1, "filename": "a.jpg", "output_prediction": 2, "timestamp": HOUR, "output_validated": 2}
        await asyncio.to_thread(web_collections.source.insert_one, doc)
        started = time.monotonic()
        await asyncio.to_thread(process)
        await read_until(response, "update", timeout=2.0)
        assert time.monotonic() - started < 2.0


async def test_heartbeats_keep_the_stream_open(client):
    await wait_live(client)
    async with client.get("/api/stream") as response:
        await read_event(response)
        assert await read_event(response, timeout=2.0) == {"comment": "ping"}


async def test_last_event_id(client, web_collections):
    await wait_live(client)
    hub = client.app[keys.HUB]
    async with client.get("/api/stream", headers={"Last-Event-ID": "0-0"}) as response:
        await read_event(response)  # status
        missed = await read_event(response)
        assert (missed["event"], missed["id"], json.loads(missed["data"])) == ("update", hub.last_id, {"hours": None})
    async with client.get("/api/stream", headers={"Last-Event-ID": hub.last_id}) as response:
        await read_event(response)  # status
        assert await read_event(response, timeout=2.0) == {"comment": "ping"}  # nothing missed


async def test_bursts_are_coalesced(client, web_collections, web_config):
    await wait_live(client)
    async with client.get("/api/stream") as response:
        await read_event(response)
        hours = [HOUR + dt.timedelta(hours=n) for n in range(40)]

        def burst() -> None:
            for hour in hours:
                web_collections.rollups.update_one({"_id": hour}, {"$inc": {"reviews": 1}}, upsert=True)

        await asyncio.to_thread(burst)
        seen, updates = set(), 0
        async with asyncio.timeout(5):
            while len(seen) < len(hours):
                event = await read_until(response, "update")
                updates += 1
                seen.update(json.loads(event["data"])["hours"])
        assert seen == {hour.isoformat() for hour in hours}
        assert updates < len(hours) / 2


async def test_a_client_that_goes_away_is_removed(client):
    hub = client.app[keys.HUB]
    async with client.get("/api/stream") as response:
        await read_event(response)
        assert len(hub.clients) == 1
    async with asyncio.timeout(5):
        while hub.clients:
            await asyncio.sleep(0.05)


class Broken:
    async def send(self, data, id=None, event=None):
        raise ConnectionResetError("gone")


class Recording:
    def __init__(self):
        self.sent = []

    async def send(self, data, id=None, event=None):
        self.sent.append((event, id, data))


async def test_failed_client_is_logged_and_dropped_not_raised(caplog):
    hub = Hub(max_per_second=100, reconnect_max_seconds=1)
    broken, recording = Broken(), Recording()
    hub.clients.update([broken, recording])  # type: ignore[list-item]
    with caplog.at_level(logging.INFO, logger="web.hub"):
        await hub.broadcast("{}", event="update", event_id="1-1")
    assert recording.sent == [("update", "1-1", "{}")]
    assert list(hub.clients) == [recording]
    assert "live client dropped (ConnectionResetError: gone)" in caplog.text


async def test_publisher_sends_at_most_the_configured_rate():
    hub = Hub(max_per_second=4, reconnect_max_seconds=1)
    recording = Recording()
    hub.clients.add(recording)  # type: ignore[arg-type]
    task = asyncio.create_task(hub.publish())
    started = asyncio.get_running_loop().time()
    try:
        for n in range(50):
            hub.changed(HOUR + dt.timedelta(hours=n % 5))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    elapsed = asyncio.get_running_loop().time() - started   # ~0.8 s, longer on a loaded machine
    # At 4 a second: one at once, then one per quarter second at most (50 changes would be 50 sends unbounded).
    assert 1 <= len(recording.sent) <= 1 + int(elapsed * 4)
    assert len(recording.sent) < 25
    assert [sent[1] for sent in recording.sent] == [f"{hub.epoch}-{n}" for n in range(1, len(recording.sent) + 1)]
