"""Read-your-writes for what the web holds in memory: a change stream drained on every request.

Answers built from memory (web.day_totals, web.pending, web.response_cache) must hold every write
committed before their request arrived. The hub's stream (web.hub) cannot vouch for that: its getMore
waits up to half a second for news, so it is behind by as much. This stream is never waited on: `sync()`
returns once a getMore that started after the call has come back empty. With maxAwaitTimeMS 0 the
server answers at once with everything majority-committed — what the web's majority reads see, and
every CLARA write waits for — so a write acknowledged before the call has been noted by then. Concurrent
callers share the next drain (web.coalesce): one MongoDB round trip, about half a millisecond.

Noted per collection role: the UTC hours of the review and the prediction rollups that changed, and a
count of the source collection's changes that can move a pending count (a prediction inserted, replaced
or deleted; a review set or taken back; a timestamp moved; the consumer's own `logged` marks are filtered
out by the server). Anything else (a drop, a rename, a dropped database) counts as every hour changed.
Beside them, `changes` counts per role every change noted (the rollups, the prediction rollups, the
source as above, `state`: the prediction recount's state document, which /api/volume reports, and the two
segment collections `segment_rollups` and `segment_predictions`, clara.segment_rollups): while the counts
of the roles an answer is made of and the generation stay the same, so does the answer (web.api keeps
finished answers by them, a segment's as the overall ones). The segment collections are counted per
collection, not per field: every review and prediction counts under every configured field in one
transaction (clara.segments), so the fields' counts would always move together.

The changed hours are noted for whoever subscribed (`subscribe`: web.day_totals, one per cache): of a
rollup role, or of one field of a segment collection (its documents' _id is {hour, field}). Each
subscriber takes its own, so any number of caches follow the same role.

When the stream cannot be followed `sync()` returns None, and callers read MongoDB as they did before;
each (re)opening is a new `generation`, and what was held under an older one may have missed changes.
A background drain every IDLE_DRAIN_SECONDS keeps the backlog short while nobody asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from typing import Any

from pymongo.errors import PyMongoError

from clara.db import PREDICTIONS_STATE_ID, Collections
from web.coalesce import Coalesced

log = logging.getLogger(__name__)
ROLES = ("rollups", "predictions")                     # the changed hours are noted too
SEGMENTS = ("segment_rollups", "segment_predictions")  # clara.segment_rollups; changed hours noted per field
COUNTED = (*ROLES, "source", "state", *SEGMENTS)
CRUD = frozenset({"insert", "update", "replace", "delete"})
PENDING_FIELDS = ("output_validated", "timestamp")
MAX_NOTED_HOURS = 10_000     # more changed hours than this between two drains: treated as all of them
REOPEN_SECONDS = 1.0         # after a failed open, callers read MongoDB directly this long before a retry
IDLE_DRAIN_SECONDS = 1.0

Hour = dt.datetime


class Noted:
    """The hours of one role (and segment field) changed since the last take, for one subscriber."""

    def __init__(self, role: str, field: str | None = None) -> None:
        self.role, self.field = role, field
        self.hours: set[Hour] | None = None   # None: unknown, every hour counts as changed
        self.following = True

    def take(self) -> set[Hour] | None:
        """The hours that changed since the last take; None: unknown, take every hour as changed (always
        after `ChangeFence.unsubscribe`)."""
        hours, self.hours = self.hours, set() if self.following else None
        return hours

    def add(self, hour: Hour) -> None:
        if self.hours is not None and len(self.hours) < MAX_NOTED_HOURS:
            self.hours.add(hour)
        else:
            self.hours = None


class ChangeFence:
    """The changes committed up to the last drain, noted for the caches that take them."""

    def __init__(self) -> None:
        self.generation = 0
        self.changes: dict[str, int] = dict.fromkeys(COUNTED, 0)
        self.collections: Collections | None = None
        self._noted: dict[str, list[Noted]] = {role: [] for role in (*ROLES, *SEGMENTS)}
        self._roles: dict[str, str] = {}
        self._stream: Any = None
        self._failed_at = -math.inf
        self._drains: Coalesced[int | None] = Coalesced(self._drain)

    def attach(self, collections: Collections) -> None:
        self.collections = collections
        self._roles = {getattr(collections, role).name: role for role in COUNTED}

    @property
    def source_changes(self) -> int:
        """Changes of the source that can move a pending count (web.pending)."""
        return self.changes["source"]

    async def sync(self) -> int | None:
        """The generation once every change committed before this call is noted; None: not following."""
        return await self._drains.run()

    def subscribe(self, role: str, field: str | None = None) -> Noted:
        """Note from now on the changed hours of `role` (of a segment collection: of its `field`); the
        first take is None (what changed before is unknown)."""
        if (role in SEGMENTS) != (field is not None):
            raise ValueError(f"a segment collection's hours are noted per field, a rollup's not: {role!r}, {field!r}")
        noted = Noted(role, field)
        self._noted[role].append(noted)
        return noted

    def unsubscribe(self, noted: Noted) -> None:
        """Stop noting for `noted`: its takes are None from now on, so a cache still using it reads afresh."""
        noted.following, noted.hours = False, None
        with contextlib.suppress(ValueError):
            self._noted[noted.role].remove(noted)

    async def close(self) -> None:
        await self._drains.close()
        await self._close_stream()

    async def keep_following(self) -> None:
        """Drain while nobody asks (a short backlog, a stream reopened soon after MongoDB is back)."""
        while True:
            await asyncio.sleep(IDLE_DRAIN_SECONDS)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - the idle drain must outlive any one failure
                log.exception("change fence drain failed")

    def pipeline(self) -> list[dict[str, Any]]:
        assert self.collections is not None
        cols = self.collections
        rollups = [getattr(cols, role).name for role in (*ROLES, *SEGMENTS)]
        source_changes = [{"operationType": {"$ne": "update"}}]
        for name in PENDING_FIELDS:
            source_changes += [{f"updateDescription.updatedFields.{name}": {"$exists": True}},
                               {"updateDescription.removedFields": name}]
        return [{"$match": {"$or": [
                    {"ns.coll": {"$in": rollups}},
                    {"ns.coll": cols.source.name, "$or": source_changes},
                    {"ns.coll": cols.state.name, "documentKey._id": PREDICTIONS_STATE_ID},
                    {"to.coll": {"$in": [*rollups, cols.source.name, cols.state.name]}},
                    {"ns.coll": {"$exists": False}}]}},            # a dropped database, an invalidation
                {"$project": {"operationType": 1, "ns": 1, "documentKey": 1}}]

    async def _drain(self) -> int | None:
        if self.collections is None:
            return None
        try:
            if self._stream is None:
                if time.monotonic() - self._failed_at < REOPEN_SECONDS:
                    return None
                await self._open()
            while (change := await self._stream.try_next()) is not None:
                self._note(change)
            if not self._stream.alive:   # invalidated: everything is noted as changed; follow afresh
                await self._close_stream()
                await self._open()
            return self.generation
        except PyMongoError as exc:
            log.info("change fence lost (%s: %s); reading MongoDB directly until it is back",
                     type(exc).__name__, exc)
            self._failed_at = time.monotonic()
            await self._close_stream()
            return None

    async def _open(self) -> None:
        assert self.collections is not None
        self._stream = await self.collections.db.watch(self.pipeline(), max_await_time_ms=0)
        self.generation += 1
        self._changed_all()

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(PyMongoError):
                await stream.close()

    def _note(self, change: dict[str, Any]) -> None:
        role = self._roles.get(change.get("ns", {}).get("coll", ""))
        if change.get("operationType") in CRUD and role is not None:
            self.changes[role] += 1
            noted = self._noted.get(role)
            if not noted:
                return
            key = change.get("documentKey", {}).get("_id")
            hour, field = (key.get("hour"), key.get("field")) if isinstance(key, dict) else (key, None)
            if not isinstance(hour, dt.datetime):
                return   # not an hour: no range query of the caches can match it
            for one in noted:
                if one.field == field:
                    one.add(hour)
            return
        self._changed_all()

    def _changed_all(self) -> None:
        for role in COUNTED:
            self.changes[role] += 1
        for noted in self._noted.values():
            for one in noted:
                one.hours = None

