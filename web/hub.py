"""The live-update hub: one producer watches rollups and alerts, one publisher fans events out to clients.

The producer follows one change stream on the database, narrowed to the review rollups, the prediction
rollups and the alerts collections, and reconnects with backoff when MongoDB goes away. Bursts of changes
are coalesced: clients get at most `max_per_second` rounds of events a second; a round holds an `update`
event naming the UTC hours whose rollups (of either kind: a review, or a new prediction) changed and/or an
`alerts` event naming the alerts that changed. Event ids are
`<epoch>-<sequence>`: a client that reconnects with any other Last-Event-ID than the latest has missed
something and is told at once.

Before an `update` goes out to connected dashboards, `before_update` (the API's kept answers, rebuilt:
web.response_cache) is awaited for at most READY_SECONDS, so the dashboards that reload on it find their
answers ready. With none connected nothing is rebuilt: under live traffic that would rebuild every answer
asked for in the last minutes on every batch (a segment's 90-day summary: hundreds of milliseconds each),
and the requests that do come would wait behind those builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp_sse import EventSourceResponse
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)
MAX_HOURS_PER_EVENT = 100
AWAIT_MS = 500  # a getMore returns at least this often, so cancellation is seen promptly
READY_SECONDS = 0.5


class Hub:
    def __init__(self, max_per_second: float, reconnect_max_seconds: float,
                 before_update: Callable[[], Awaitable[None]] | None = None):
        self.before_update = before_update
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
        self._rollups_dirty = False
        self._alerts: set[str] = set()
        self._alerts_overflow = False
        self._alerts_dirty = False

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self.sequence}"

    def changed(self, hour: Any = None) -> None:
        """Note a change to the rollups (of one hour, or of unknown hours) for the next event."""
        if isinstance(hour, dt.datetime) and len(self._hours) < MAX_HOURS_PER_EVENT:
            self._hours.add(hour)
        else:
            self._overflow = True
        self._rollups_dirty = True
        self._dirty.set()

    def alerts_changed(self, alert_id: Any = None) -> None:
        """Note a change to the alerts (of one alert, or of unknown ones) for the next event."""
        if isinstance(alert_id, str) and len(self._alerts) < MAX_HOURS_PER_EVENT:
            self._alerts.add(alert_id)
        else:
            self._alerts_overflow = True
        self._alerts_dirty = True
        self._dirty.set()

    def update_payload(self) -> str:
        hours = sorted(self._hours)
        payload = {"hours": None if self._overflow else [hour.isoformat() for hour in hours]}
        self._hours, self._overflow, self._rollups_dirty = set(), False, False
        return json.dumps(payload)

    def alerts_payload(self) -> str:
        payload = {"ids": None if self._alerts_overflow else sorted(self._alerts)}
        self._alerts, self._alerts_overflow, self._alerts_dirty = set(), False, False
        return json.dumps(payload)

    @staticmethod
    def update_payload_missed() -> str:
        """The update a reconnecting client gets when it missed events: unknown hours, refresh all."""
        return json.dumps({"hours": None})

    @staticmethod
    def alerts_payload_missed() -> str:
        """The alerts event a reconnecting client gets when it missed events: unknown alerts."""
        return json.dumps({"ids": None})

    def status_payload(self) -> str:
        return json.dumps({"live": self.live})

    async def publish(self) -> None:
        """Send coalesced events forever, at most one round (an update and/or an alerts event) per interval."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._rollups_dirty:
                if self.clients:   # nobody to reload: answers are built when next asked for, not on every batch
                    await self._ready()
                self.sequence += 1
                await self.broadcast(self.update_payload(), event="update", event_id=self.last_id)
            if self._alerts_dirty:
                self.sequence += 1
                await self.broadcast(self.alerts_payload(), event="alerts", event_id=self.last_id)
            await asyncio.sleep(self.interval)

    async def _ready(self) -> None:
        if self.before_update is None:
            return
        try:
            await asyncio.wait_for(self.before_update(), READY_SECONDS)
        except TimeoutError:
            log.debug("answers not rebuilt within %s s of an update; sending it anyway", READY_SECONDS)
        except Exception:  # noqa: BLE001 - a failed rebuild costs the dashboards time, never their update
            log.exception("rebuilding the kept answers before an update failed")

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

    def _dispatch(self, change: dict[str, Any], alerts_name: str) -> None:
        key = change.get("documentKey", {}).get("_id")
        if change.get("ns", {}).get("coll") == alerts_name:
            self.alerts_changed(key)
        else:
            self.changed(key)

    def _changed_everything(self) -> None:
        self.changed()
        self.alerts_changed()

    async def watch(self, rollups, alerts, predictions) -> None:
        """Follow the rollups, prediction rollups and alerts (one change stream) until stopped, reconnecting.

        Stopping is cooperative: pymongo (4.20) turns a task cancellation inside a getMore into a
        connection error and resumes the stream, so a cancelled watcher could run on forever.
        """
        # The collections live in the configured database: a database stream narrowed to them.
        pipeline = [{"$match": {"ns.coll": {"$in": [rollups.name, predictions.name, alerts.name]}}}]
        delay, first = 0.25, True
        while not self._stopping.is_set():
            try:
                async with await rollups.database.watch(pipeline, max_await_time_ms=AWAIT_MS) as stream:
                    await self._set_live(True)
                    if not first:
                        self._changed_everything()  # changes made while we were away went unseen
                    first, delay = False, 0.25
                    while stream.alive and not self._stopping.is_set():
                        change = await stream.try_next()
                        if change is not None:
                            self._dispatch(change, alerts.name)
                if not self._stopping.is_set():  # invalidated: the database was dropped
                    log.info("rollups and alerts change stream ended; following it again")
                    self._changed_everything()
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
