"""Per-day totals of hourly rollups, kept in memory: exact by the change fence, or by listing the hours.

One cache per kind of rollup (the review rollups, summed into `Totals`, and the prediction rollups,
summed into `PredictionTotals`), each with its own collection role and summing function.

With a change fence that is following (web.changes), the days live in web.day_totals: a request costs
one drain of the fence's stream, no listing, and the answer carries a version of the range's data, by
which finished answers are kept (web.response_cache). Without one (none given, or its stream lost), each
request lists the range's (hour, updated_at) pairs, as described below, and gets no version.

Decoding the ~2,200 hourly documents of a 90-day range costs tens of milliseconds of CPU (summing
them again as much), so the web process keeps every hour it has read and the Totals of every local
day it has summed. Each request lists only the range's (hour, updated_at) pairs, fetches the hours
that are new or whose `updated_at` changed, drops the ones gone, and re-sums only the days whose
hours changed; the CPU work runs in the executor.

`updated_at` is set on every write of an hour (consumer batches and the standalone journal), and a
rebuilt hour is deleted then written again. An hour without it, or written in the last
RECENT_SECONDS (two writes within the same millisecond, or a consumer clock behind ours), is never
trusted from memory: it is read again every time, and its day summed again.

Concurrent requests for the same range share one listing: the next one to start, never one already
under way, so every request still sees every write made before it arrived. When a live update
makes twenty open dashboards ask at once, MongoDB is listed twice at most, not twenty times.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from clara.db import Collections
from clara.rollups import UTC, Totals, local_day
from web.changes import ChangeFence
from web.day_totals import DayTotals
from web.params import DateRange

RECENT_SECONDS = 5.0
MAX_HOURS = 200_000  # about 23 years of hours; beyond that the memory is simply started afresh

Hour = dt.datetime
Stamp = dt.datetime | None
T = TypeVar("T")


class RollupCache(Generic[T]):
    """`role` names the clara.db.Collections field to read; `summed` adds hour documents up into a T."""

    def __init__(self, zone: ZoneInfo, recent_seconds: float = RECENT_SECONDS, role: str = "rollups",
                 summed: Callable[[Iterable[dict[str, Any]]], T] = Totals.of, fence: ChangeFence | None = None):
        self.zone = zone
        self.fenced = None if fence is None else DayTotals(zone, fence, role, summed)
        self.recent = dt.timedelta(seconds=recent_seconds)
        self.role, self.summed = role, summed
        self.hours: dict[Hour, tuple[Stamp, dict[str, Any]]] = {}
        self.days: dict[dt.date, tuple[tuple, T]] = {}
        self._running: dict[tuple[Hour, Hour], asyncio.Task] = {}   # the listing under way, per range
        self._next: dict[tuple[Hour, Hour], asyncio.Task] = {}      # the one that starts after it

    async def by_day(self, collections: Collections, days: DateRange) -> dict[dt.date, T]:
        """The totals of every local day of the range that has rollups (a day without any is absent)."""
        return (await self.by_day_versioned(collections, days))[0]

    async def by_day_versioned(self, collections: Collections, days: DateRange) -> tuple[dict[dt.date, T], int | None]:
        """`by_day`, and a version of what it holds (None without a following fence): equal versions of
        the same range, equal totals."""
        listed = days.days
        snapshot = await self._snapshot(collections, listed)
        if snapshot is not None:
            return snapshot.by_day(listed), snapshot.version(listed)
        return await self._listed_by_day(collections, days), None

    async def warm(self, collections: Collections, days: Iterable[dt.date]) -> dict[dt.date, T]:
        """Load and sum these days ahead of any request (with a following fence; else nothing)."""
        snapshot = await self._snapshot(collections, days)
        return {} if snapshot is None else dict(snapshot.totals)

    async def close(self) -> None:
        if self.fenced is not None:
            await self.fenced.close()

    async def _snapshot(self, collections: Collections, days: Iterable[dt.date]):
        if self.fenced is None:
            return None
        snapshot = await self.fenced.snapshot(collections, days)
        if snapshot is not None and self.hours:
            self.hours.clear()   # the listing's memory, from a time the fence was not following
            self.days.clear()
        return snapshot

    async def _listed_by_day(self, collections: Collections, days: DateRange) -> dict[dt.date, T]:
        start, end = days.bounds
        settled = dt.datetime.now(UTC) - self.recent   # an hour written after this is not trusted from memory
        listed = await self._refresh(collections, start, end, settled)
        by_day: dict[dt.date, list[Hour]] = defaultdict(list)
        for hour in listed:
            if hour in self.hours:
                by_day[local_day(hour, self.zone)].append(hour)
        result, to_sum = {}, {}
        for day, hours in by_day.items():
            hours.sort()
            key = tuple((hour, self.hours[hour][0]) for hour in hours)
            cached = self.days.get(day)
            if cached is not None and cached[0] == key and all(self._trusted(h, s, settled) for h, s in key):
                result[day] = cached[1]
            else:
                to_sum[day] = (key, [self.hours[hour][1] for hour in hours])
        if to_sum:
            summed = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(_sum_days, self.summed, {day: docs for day, (_, docs) in to_sum.items()}))
            for day, totals in summed.items():
                self.days[day] = (to_sum[day][0], totals)
                result[day] = totals
        return result

    async def by_hour(self, collections: Collections, days: DateRange) -> dict[Hour, dict[str, Any]]:
        """The stored document of every UTC hour of the range that has one, fresh as in `by_day`."""
        return (await self.by_hour_versioned(collections, days))[0]

    async def by_hour_versioned(self, collections: Collections,
                                days: DateRange) -> tuple[dict[Hour, dict[str, Any]], int | None]:
        """`by_hour`, and the version of `by_day_versioned`."""
        listed = days.days
        snapshot = await self._snapshot(collections, listed)
        if snapshot is not None:
            return snapshot.by_hour(listed), snapshot.version(listed)
        return await self._listed_by_hour(collections, days), None

    async def _listed_by_hour(self, collections: Collections, days: DateRange) -> dict[Hour, dict[str, Any]]:
        start, end = days.bounds
        listed = await self._refresh(collections, start, end, dt.datetime.now(UTC) - self.recent)
        return {hour: self.hours[hour][1] for hour in sorted(listed) if hour in self.hours}

    def _collection(self, collections: Collections):
        return getattr(collections, self.role)

    async def _refresh(self, collections: Collections, start: Hour, end: Hour,
                       settled: dt.datetime) -> dict[Hour, Stamp]:
        """Bring every stored hour of [start, end) into memory as stored now; returns the range's listing."""
        query = {"_id": {"$gte": start, "$lt": end}}
        if any(start <= hour < end for hour in self.hours):
            listed = await self._listing(collections, start, end)
            stale = [hour for hour, stamp in listed.items() if not self._trusted(hour, stamp, settled)]
            fetched = await self._collection(collections).find({"_id": {"$in": stale}}).to_list(None) if stale else []
        else:  # nothing of the range in memory yet: read it all at once
            fetched = await self._collection(collections).find(query).to_list(None)
            listed = {doc["_id"]: doc.get("updated_at") for doc in fetched}
        for hour in [hour for hour in self.hours if start <= hour < end and hour not in listed]:
            del self.hours[hour]  # deleted (a rebuilt hour not written again)
        if len(self.hours) + len(fetched) > MAX_HOURS:
            self.hours.clear()
            self.days.clear()
        for doc in fetched:
            self.hours[doc["_id"]] = (doc.get("updated_at"), doc)
        return listed

    async def _listing(self, collections: Collections, start: Hour, end: Hour) -> dict[Hour, Stamp]:
        """The range's (hour, updated_at) pairs, from a listing that starts after this call."""
        key = (start, end)
        task = self._next.get(key)
        if task is None:
            task = self._next[key] = asyncio.ensure_future(self._list_after_running(collections, key))
        return await asyncio.shield(task)   # a caller that goes away does not cancel the others' listing

    async def _list_after_running(self, collections: Collections, key: tuple[Hour, Hour]) -> dict[Hour, Stamp]:
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait([running])
        me = self._running[key] = self._next.pop(key)   # callers from now on queue for the listing after this
        try:
            return await self._list(collections, *key)
        finally:
            if self._running.get(key) is me:
                del self._running[key]

    async def _list(self, collections: Collections, start: Hour, end: Hour) -> dict[Hour, Stamp]:
        query = {"_id": {"$gte": start, "$lt": end}}
        return {doc["_id"]: doc.get("updated_at")
                for doc in await self._collection(collections).find(query, {"updated_at": 1}).to_list(None)}

    def _trusted(self, hour: Hour, stamp: Stamp, settled: dt.datetime) -> bool:
        """Whether the hour in memory is the one stored: same updated_at, and not written just now."""
        held = self.hours.get(hour)
        return (held is not None and stamp is not None and held[0] == stamp
                and stamp < settled)


def _sum_days(summed: Callable[[Iterable[dict]], T], docs_by_day: dict[dt.date, list[dict]]) -> dict[dt.date, T]:
    return {day: summed(docs) for day, docs in docs_by_day.items()}


