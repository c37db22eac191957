"""The web server beside the consumer under faults: a mongod restart, and load with many SSE clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import signal
import subprocess
import time

import aiohttp
import pytest
import psutil

from clara.embedded_mongo import free_port
from tests.faults.conftest import ReviewWriter
from tests.support.audit import assert_exactly_once, everything_counted, expected_cells, rollup_cells
from tests.support.processes import start, write_config
from tests.support.running import wait_for
from tests.support.sse import sse_events

UTC = dt.timezone.utc
START = dt.datetime(2026, 8, 1, tzinfo=UTC)


def config_file(tmp_path, port: int):
    return write_config(tmp_path / "config.toml", {
        "consumer": {"reconnect_max_seconds": 1.0, "batch_max_seconds": 0.05},
        "web": {"port": port, "host": "127.0.0.1", "sse_heartbeat_seconds": 1.0, "sse_max_updates_per_second": 4.0},
        "profiles": {"local_store_dir": str(tmp_path / "profiles")}})


@pytest.fixture
def consumer_and_web(own_mongo, own_setup, tmp_path):
    """The consumer and the web server as real processes on one config; both must stop cleanly afterwards."""
    port = free_port()
    path = config_file(tmp_path, port)
    consumer = start("consumer", path, own_mongo.uri, log_path=tmp_path / "consumer.log")
    web = start("web", path, own_mongo.uri, env={"PORT": str(port)}, log_path=tmp_path / "web.log")
    yield consumer, web, f"http://127.0.0.1:{port}"
    stop(web, tmp_path / "web.log")
    stop(consumer, tmp_path / "consumer.log")


def stop(process: subprocess.Popen, log) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert code == 0, log.read_text()[-3000:]


async def healthz(base: str) -> int:
    try:
        async with aiohttp.ClientSession() as session, session.get(base + "/healthz",
                                                                    timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


class SseClient:
    """An EventSource-like client: reconnects with Last-Event-ID and counts the updates it received."""

    def __init__(self, url: str):
        self.url, self.last_id, self.updates, self.connects = url, None, 0, 0
        self.update_times: list[float] = []

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                async with session.get(self.url, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=None, sock_read=10)) as response:
                    if response.status != 200:
                        await asyncio.sleep(0.2)
                        continue
                    self.connects += 1
                    async for event in sse_events(response.content):
                        if "id" in event:
                            self.last_id = event["id"]
                        if event.get("event") == "update":
                            self.updates += 1
                            self.update_times.append(time.monotonic())
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)


async def wait_async(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.1)


def test_mongod_restart_under_the_consumer_and_the_web_server(own_mongo, own_setup, consumer_and_web):
    config, client, cols = own_setup
    _, _, base = consumer_and_web
    writer = ReviewWriter(cols, START, seed=300)

    async def scenario() -> dict:
        await wait_async(lambda: _is_200(base), 30, "the web server")
        clients = [SseClient(base + "/api/stream") for _ in range(5)]
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(c.run(session)) for c in clients]
            try:
                writer.start()
                await wait_async(lambda: all(c.updates for c in clients), 30, "a first update at every client")
                own_mongo.stop()
                down_status = await wait_async(lambda: _non_200(base), 30, "/healthz to report the outage")
                await asyncio.sleep(2.0)
                own_mongo.start()
                restarted = time.monotonic()
                await wait_async(lambda: _is_200(base), 60, "/healthz after the restart")
                # New reviews after the restart reach every client through its reconnected stream.
                await wait_async(lambda: all(any(t > restarted for t in c.update_times) for c in clients), 60,
                                 "an update after the restart at every client")
                writer.stop()
                return {"down_status": down_status, "connects": [c.connects for c in clients]}
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    try:
        outcome = asyncio.run(scenario())
        wait_for(lambda: everything_counted(cols, config.n_classes), timeout=90,
                 what="every review")
    finally:
        writer.stop()
    assert outcome["down_status"] == 503
    # The web server keeps its SSE connections through the outage (its own change stream reconnects), so
    # clients need not reconnect; those that do come back with Last-Event-ID. Either way all caught up.
    assert all(n >= 1 for n in outcome["connects"]), outcome
    assert writer.valid_reviews() > 50
    assert_exactly_once(cols, config.n_classes)


async def _non_200(base: str):
    status = await healthz(base)
    return status if status != 200 and status != 0 else None


async def _is_200(base: str) -> bool:
    return await healthz(base) == 200


LOAD_SECONDS = 15.0
LOAD_CLIENTS = 100


def test_load_with_the_dashboard_open_in_many_clients(own_setup, consumer_and_web):
    """Writers as fast as they go for ~20 s with 100 live clients: lag bounded, memory flat, exactly once."""
    config, client, cols = own_setup
    consumer, web, base = consumer_and_web
    writers = [ReviewWriter(cols, START + dt.timedelta(days=i), batch=1, pause=0.0, seed=1000 * (i + 1))
               for i in range(2)]
    procs = {"web": psutil.Process(web.pid), "consumer": psutil.Process(consumer.pid)}
    rss: dict[str, list[float]] = {name: [] for name in procs}

    async def scenario() -> dict:
        await wait_async(lambda: _is_200(base), 30, "the web server")
        clients = [SseClient(base + "/api/stream") for _ in range(LOAD_CLIENTS)]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = [asyncio.create_task(c.run(session)) for c in clients]
            try:
                await wait_async(lambda: all(c.connects for c in clients), 30, "every client connected")
                for writer in writers:
                    writer.start()
                began = time.monotonic()
                while time.monotonic() - began < LOAD_SECONDS:
                    for name, process in procs.items():
                        rss[name].append(process.memory_info().rss / 2**20)
                    await asyncio.sleep(0.5)
                for writer in writers:
                    await asyncio.to_thread(writer.stop)
                stopped = time.monotonic()
                await wait_async(lambda: rollup_cells(cols)[2] == expected_cells(cols, config.n_classes)[2], 60,
                                 "the consumer to catch up")
                drain = time.monotonic() - stopped
                for name, process in procs.items():
                    rss[name].append(process.memory_info().rss / 2**20)
                updates = [c.updates for c in clients]
                return {"drain_seconds": drain, "updates": updates, "connects": [c.connects for c in clients]}
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    try:
        outcome = asyncio.run(scenario())
    finally:
        for writer in writers:
            writer.stop()
    reviews = assert_exactly_once(cols, config.n_classes)
    written = sum(len(w.written) for w in writers)
    quarter = {name: values[len(values) // 4] for name, values in rss.items()}
    end = {name: values[-1] for name, values in rss.items()}
    print(f"\nload: {written} documents ({reviews} reviews) in {LOAD_SECONDS:.0f} s = "
          f"{written / LOAD_SECONDS:.0f} docs/s; rollups complete {outcome['drain_seconds']:.1f} s after the "
          f"writes stopped; SSE updates per client min {min(outcome['updates'])} max {max(outcome['updates'])}; "
          f"RSS MiB at 1/4 -> end: " + ", ".join(f"{n} {quarter[n]:.0f} -> {end[n]:.0f}" for n in procs))
    assert written > 2000
    assert outcome["drain_seconds"] < 15, outcome["drain_seconds"]
    assert min(outcome["updates"]) >= LOAD_SECONDS, "live clients stopped receiving updates under load"
    assert all(n == 1 for n in outcome["connects"]), "a client was dropped under load"
    for name in procs:
        assert end[name] < quarter[name] * 1.25 + 20, f"{name} RSS grew from {quarter[name]:.0f} to {end[name]:.0f} MiB"
