"""Pending reviews per range, counted again only when the source changed in a way that can move a count.

The count (web.queries.pending_reviews) reads an index range of the source collection: about 12 ms for
10,000 pending predictions, more than everything else /api/summary does. The change fence (web.changes)
counts the source's changes that can move it (a prediction inserted, replaced or deleted, a review set or
taken back, a timestamp moved); while that number and the fence's generation stay the same, so does every
count. A count is stamped with the number seen before it started, so a change made during it is counted
again next time; callers that find a count for their stamp under way share it (web.response_cache).

At start (web.warm) the warmed local days are also counted one by one (the same count over each day's
bounds; consecutive days' bounds leave no gap): while the stamp of those counts holds, a range of those
days is their sum, with no query at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable
from zoneinfo import ZoneInfo

from clara.db import Collections
from web import queries
from web.changes import ChangeFence
from web.params import DateRange
from web.response_cache import ResponseCache

KEPT = 1024


class PendingCounts:
    def __init__(self, fence: ChangeFence, kept: int = KEPT):
        self.fence = fence
        self._counts: ResponseCache[int] = ResponseCache(kept)
        self._by_day: tuple[Hashable, dict[dt.date, int]] | None = None   # (stamp, count per local day)

    async def count(self, collections: Collections, days: DateRange) -> int:
        """Predictions made in the range that nobody has reviewed yet, as stored when this call was made."""
        generation = await self.fence.sync()
        if generation is None:
            return await queries.pending_reviews(collections, days)
        stamp = (generation, self.fence.source_changes)
        held = self._by_day
        if held is not None and held[0] == stamp:
            listed = days.days
            if all(day in held[1] for day in listed):
                return sum(held[1][day] for day in listed)
        return await self._counts.get(days.bounds, stamp, lambda: queries.pending_reviews(collections, days))

    async def warm(self, collections: Collections, days: Iterable[dt.date], zone: ZoneInfo) -> None:
        """Count these local days' pending reviews per day, for `count` to sum while nothing moved them."""
        generation = await self.fence.sync()
        if generation is None:
            return
        stamp = (generation, self.fence.source_changes)
        self._by_day = (stamp, await pending_by_day(collections, sorted(set(days)), zone))

    async def close(self) -> None:
        await self._counts.close()


async def pending_by_day(collections: Collections, days: list[dt.date], zone: ZoneInfo) -> dict[dt.date, int]:
    """Pending reviews of each of these local days: pending_reviews of each day, one after the other on one
    connection (an index count scan, a fraction of a millisecond on the server)."""
    return {day: await queries.pending_reviews(collections, DateRange(day, day, zone)) for day in days}
