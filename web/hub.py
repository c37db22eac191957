"""The live-update hub: one producer watches the rollups, one publisher fans events out to every client.

The producer follows the rollups collection with a change stream and reconnects with backoff when
MongoDB goes away. Bursts of changes are coalesced: clients get at most `max_per_second` events a
second, each naming the UTC hours that changed. Event ids are `<epoch>-<sequence>`: a client that
reconnects with any other Last-Event-ID than the latest has missed something and is told at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import weakref
from typing import Any

from aiohttp_sse import EventSourceResponse
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)
MAX_HOURS_PER_EVENT = 100
AWAIT_MS = 500  # a getMore returns at least this often, so cancellation is seen promptly


class Hub:
    def __init__(self, max_per_second: float, reconnect_max_seconds: float):
        self.clients: weakref.WeakSet[EventSourceResponse] = weakref.WeakSet()
        self.live = False
        self.epoch = str(time.time_ns() // 1_000_000)
        self.sequence = 0
        self.interval = 1.0 / max_per_second
        self.reconnect_max_seconds = reconnect_max_seconds
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hours: set[dt.datetime] = set()
        self._overflow = False

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self.sequence}"

    def changed(self, hour: Any = None) -> None:
        """Note a change to the rollups (of one hour, or of unknown hours) for the next event."""
        if isinstance(hour, dt.datetime) and len(self._hours) < MAX_HOURS_PER_EVENT:
            self._hours.add(hour)
        else:
            self._overflow = True
        self._dirty.set()

    def update_payload(self) -> str:
        hours = sorted(self._hours)
        payload = {"hours": None if self._overflow else [hour.isoformat() for hour in hours]}
        self._hours, self._overflow = set(), False
        return json.dumps(payload)

    @staticmethod
    def update_payload_missed() -> str:
        """The update a reconnecting client gets when it missed events: unknown hours, refresh all."""
        return json.dumps({"hours": None})

    def status_payload(self) -> str:
        return json.dumps({"live": self.live})

    async def publish(self) -> None:
        """Send coalesced updates forever, at most one per interval."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self.sequence += 1
            await self.broadcast(self.update_payload(), event="update", event_id=self.last_id)
            await asyncio.sleep(self.interval)

    async def broadcast(self, data: str, event: str, event_id: str | None = None) -> None:
        clients = list(self.clients)
        results = await asyncio.gather(*(client.send(data, id=event_id, event=event) for client in clients),
                                       return_exceptions=True)
        for client, result in zip(clients, results):
            if isinstance(result, BaseException):
                log.info("live client dropped (%s: %s)", type(result).__name__, result)
                self.clients.discard(client)

    async def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            await self.broadcast(self.status_payload(), event="status")

    def stop(self) -> None:
        """Ask the producer to finish: it does so within one getMore (AWAIT_MS)."""
        self._stopping.set()

    async def watch(self, rollups) -> None:
        """Follow the rollups collection's change stream until stopped, reconnecting after failures.

        Stopping is cooperative: pymongo (4.20) turns a task cancellation inside a getMore into a
        connection error and resumes the stream, so a cancelled watcher could run on forever.
        """
        delay, first = 0.25, True
        while not self._stopping.is_set():
            try:
                async with await rollups.watch(max_await_time_ms=AWAIT_MS) as stream:
                    await self._set_live(True)
                    if not first:
                        self.changed()  # changes made while we were away went unseen
                    first, delay = False, 0.25
                    while stream.alive and not self._stopping.is_set():
                        change = await stream.try_next()
                        if change is not None:
                            self.changed(change.get("documentKey", {}).get("_id"))
                if not self._stopping.is_set():  # invalidated: the collection was dropped or renamed
                    log.info("rollups change stream ended; following it again")
                    self.changed()
            except PyMongoError as exc:
                if self._stopping.is_set():
                    return
                log.warning("rollups change stream lost (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await self._set_live(False)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("rollups watcher failed; retrying in %.1f s", delay)
                await self._set_live(False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.reconnect_max_seconds)
