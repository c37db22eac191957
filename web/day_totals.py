"""Per-local-day totals of one kind of rollup, read from MongoDB once and kept exact by the change fence.

A local day is loaded whole (every hour of it, in one range query with its neighbours) the first time a
range needs it, and summed once. After that a request costs a fence drain (web.changes): the hours it
names as changed are read again, only if their day is loaded, and only those days are summed again, in
the executor. A day's `seq` is the number of the change that last touched it, so the largest `seq` of a
range is a version of everything the range holds: equal versions, equal answers (web.response_cache).

One refresh at a time, for every caller that arrived before it started (web.coalesce); it returns an
immutable Snapshot, so what a caller reads is what its own refresh left, whatever runs after. When the
fence cannot vouch (not following, or a new generation of its stream), what is held is dropped: the
caller falls back to reading MongoDB (web.rollup_cache) and the next refresh loads afresh.

What an hour's document is comes from its `HourDocs`: by default a rollup role's documents, keyed by hour
(`RollupHours`); for a segment, its counters in one field's segment rollups (web.segment_totals). The
`seq` numbers come from one counter for the whole process, so a cache dropped and made again for the same
data never hands out a version an earlier one gave to other totals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from clara.db import Collections
from clara.rollups import day_bounds, local_day
from web.changes import ChangeFence
from web.coalesce import Coalesced

MAX_HOURS = 200_000  # about 23 years of hours; beyond that the memory is started afresh

Hour = dt.datetime
T = TypeVar("T")
Filter = dict[str, Any]
_SEQ = itertools.count(1)   # every day's seq, of every cache (see the module docstring)


class HourDocs(Protocol):
    """Where a DayTotals reads its hour documents: which collection role (and segment field) the change
    fence notes for it, the filters of some hours and of a range, and each found document's hour and part."""

    role: str
    field: str | None
    projection: dict[str, int] | None

    def of_hours(self, hours: list[Hour]) -> Filter: ...

    def of_range(self, start: Hour, end: Hour) -> Filter: ...

    def entry(self, doc: dict[str, Any]) -> tuple[Hour, dict[str, Any]] | None: ...


@dataclasses.dataclass(frozen=True)
class RollupHours:
    """A rollup role's documents, one per period, keyed by its UTC start."""

    role: str
    field = None
    projection = None

    def of_hours(self, hours: list[Hour]) -> Filter:
        return {"_id": {"$in": hours}}

    def of_range(self, start: Hour, end: Hour) -> Filter:
        return {"_id": {"$gte": start, "$lt": end}}

    def entry(self, doc: dict[str, Any]) -> tuple[Hour, dict[str, Any]]:
        return doc["_id"], doc


@dataclasses.dataclass(frozen=True)
class Snapshot(Generic[T]):
    """What one refresh left: the loaded days' hour documents and totals, and each day's version."""

    generation: int | None = None
    hours: dict[dt.date, dict[Hour, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    totals: dict[dt.date, T] = dataclasses.field(default_factory=dict)
    seq: dict[dt.date, int] = dataclasses.field(default_factory=dict)

    def by_day(self, days: Iterable[dt.date]) -> dict[dt.date, T]:
        return {day: self.totals[day] for day in days if day in self.totals}

    def by_hour(self, days: Iterable[dt.date]) -> dict[Hour, dict[str, Any]]:
        return dict(sorted((hour, doc) for day in days for hour, doc in self.hours.get(day, {}).items()))

    def version(self, days: Iterable[dt.date]) -> int:
        return max(self.seq[day] for day in days)


class DayTotals(Generic[T]):
    """`role` names the clara.db.Collections field to read (`docs`: how to read it, RollupHours by default);
    `summed` adds hour documents up into a T."""

    def __init__(self, zone: ZoneInfo, fence: ChangeFence, role: str, summed: Callable[[Iterable[dict]], T],
                 docs: HourDocs | None = None):
        self.zone, self.fence, self.role, self.summed = zone, fence, role, summed
        self.docs = docs or RollupHours(role)
        self.noted = fence.subscribe(role, self.docs.field)
        self.state: Snapshot[T] = Snapshot()
        self._wanted: set[dt.date] = set()
        self._collections: Collections | None = None
        self._refreshes: Coalesced[Snapshot[T] | None] = Coalesced(self._refresh)

    async def snapshot(self, collections: Collections, days: Iterable[dt.date]) -> Snapshot[T] | None:
        """A snapshot holding every day asked for as stored when this call was made; None: ask MongoDB."""
        self._collections = collections
        self._wanted.update(days)
        return await self._refreshes.run()

    async def close(self) -> None:
        self.fence.unsubscribe(self.noted)
        await self._refreshes.close()

    async def _refresh(self) -> Snapshot[T] | None:
        wanted, self._wanted = self._wanted, set()
        generation = await self.fence.sync()
        if generation is None:
            self.state = Snapshot()
            return None
        changed = self.noted.take()
        state = self.state
        if state.generation != generation or changed is None:
            state = Snapshot(generation)
        try:
            self.state = await self._apply(state, changed or set(), wanted)
        except BaseException:
            self.state = Snapshot()   # the changes taken from the fence are not applied: start afresh
            raise
        return self.state

    async def _apply(self, state: Snapshot[T], changed: set[Hour], wanted: set[dt.date]) -> Snapshot[T]:
        assert self._collections is not None
        collection = getattr(self._collections, self.role)
        reread = sorted(hour for hour in changed if local_day(hour, self.zone) in state.hours)
        missing = sorted(wanted - state.hours.keys())
        if not reread and not missing:
            return state
        loaded = sum(map(len, state.hours.values()))
        if loaded + len(missing) * 25 > MAX_HOURS:
            state, reread, missing = Snapshot(state.generation), [], sorted(wanted)
        hours = dict(state.hours)
        touched = set()
        for day in missing:
            hours[day] = {}
            touched.add(day)
        for hour in reread:   # changed, or deleted (a rebuilt hour not written again)
            day = local_day(hour, self.zone)
            if hour in hours[day]:
                hours[day] = {h: doc for h, doc in hours[day].items() if h != hour}
                touched.add(day)
        queries = [self.docs.of_hours(reread)] if reread else []
        queries += [self.docs.of_range(start, end) for start, end in self._runs(missing)]
        for query in queries:
            for doc in await collection.find(query, self.docs.projection).to_list(None):
                entry = self.docs.entry(doc)
                if entry is None:
                    continue   # the period has no part for these totals (a segment value not in it)
                hour, doc = entry
                day = local_day(hour, self.zone)
                if day not in touched:
                    hours[day] = dict(hours[day])
                    touched.add(day)
                hours[day][hour] = doc
        summed = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(_sum_days, self.summed, {day: hours[day] for day in touched if hours[day]}))
        totals = {day: value for day, value in state.totals.items() if day not in touched} | summed
        seq = dict(state.seq)
        seq.update(dict.fromkeys(touched, next(_SEQ)))
        return Snapshot(state.generation, hours, totals, seq)

    def _runs(self, days: list[dt.date]) -> list[tuple[Hour, Hour]]:
        """UTC bounds of each run of consecutive days."""
        runs: list[list[dt.date]] = []
        for day in days:
            if runs and (day - runs[-1][1]).days == 1:
                runs[-1][1] = day
            else:
                runs.append([day, day])
        return [day_bounds(first, last, self.zone) for first, last in runs]


def _sum_days(summed: Callable[[Iterable[dict]], T], hours_by_day: dict[dt.date, dict[Hour, dict]]) -> dict[dt.date, T]:
    return {day: summed(hours.values()) for day, hours in hours_by_day.items()}


