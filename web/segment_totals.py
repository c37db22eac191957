"""Per-day totals of one segment, kept in memory and exact by the change fence, as the overall ones are.

A segment's answer for a range of days used to be summed again from every one of its ~2,200 period documents
per kind (90 days) after any write to its segment collection, that is after every consumer batch. Kept here
per (kind, segment) by a web.day_totals.DayTotals reading the segment's own counters in its field's segment
rollups (`SegmentHours`): the fence notes the hours of that field that changed (web.changes), only those are
read again and only their days summed again, and a version of the range goes with the totals, so the finished
answers built from them are kept by it (web.response_cache) as the overall ones are.

At most MAX_KEPT (kind, segment) pairs are kept, the least recently asked dropped beyond: a request may name
any value, so the memory must not grow with them. A dropped one stops being followed; a request still using
it reads afresh (its takes are None: web.changes.Noted), and one asking again later starts a new one.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from clara.segments import field_range, segment_id, value_key
from web.changes import ChangeFence
from web.day_totals import DayTotals

MAX_KEPT = 64   # (kind, segment) pairs: 32 segments of both kinds, about 2 x 2,200 small documents each for 90 days

Hour = dt.datetime
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class SegmentHours:
    """One value's counters in one field's segment rollups (clara.segment_rollups), one part per period."""

    role: str    # the segment collection's role: segment_rollups or segment_predictions
    field: str
    value: str

    @property
    def key(self) -> str:
        return value_key(self.value)

    @property
    def projection(self) -> dict[str, int]:
        return {f"values.{self.key}": 1}

    def of_hours(self, hours: list[Hour]) -> dict[str, Any]:
        return {"_id": {"$in": [segment_id(hour, self.field) for hour in hours]}}

    def of_range(self, start: Hour, end: Hour) -> dict[str, Any]:
        return field_range(self.field, start, end)

    def entry(self, doc: dict[str, Any]) -> tuple[Hour, dict[str, Any]] | None:
        counters = (doc.get("values") or {}).get(self.key)
        return None if counters is None else (doc["_id"]["hour"], counters)


class SegmentTotals(Generic[T]):
    """The DayTotals of every (kind, segment) asked for lately, at most `max_kept`."""

    def __init__(self, zone: ZoneInfo, fence: ChangeFence, max_kept: int = MAX_KEPT):
        self.zone, self.fence, self.max_kept = zone, fence, max_kept
        self._kept: collections.OrderedDict[tuple, DayTotals] = collections.OrderedDict()

    def of(self, role: str, field: str, value: str, summed: Callable[[Iterable[dict]], T]) -> DayTotals[T]:
        """The day totals of `value` of `field` in the segment collection `role`, summed by `summed`."""
        docs = SegmentHours(role, field, value)
        key = (docs, summed)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        kept = self._kept[key] = DayTotals(self.zone, self.fence, role, summed, docs)
        while len(self._kept) > self.max_kept:
            _, dropped = self._kept.popitem(last=False)
            self.fence.unsubscribe(dropped.noted)
        return kept

    def __len__(self) -> int:
        return len(self._kept)

    async def close(self) -> None:
        kept, self._kept = list(self._kept.values()), collections.OrderedDict()
        for one in kept:
            await one.close()
