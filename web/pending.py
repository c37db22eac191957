"""Pending reviews per range, counted again only when the source changed in a way that can move a count.

The count (web.queries.pending_reviews) reads an index range of the source collection: about 12 ms for
10,000 pending predictions, more than everything else /api/summary does. The change fence (web.changes)
counts the source's changes that can move it (a prediction inserted, replaced or deleted, a review set or
taken back, a timestamp moved); while that number and the fence's generation stay the same, so does every
count. A count is stamped with the number seen before it started, so a change made during it is counted
again next time; callers that find a count for their stamp under way share it (web.response_cache).
"""

from __future__ import annotations


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

    async def count(self, collections: Collections, days: DateRange) -> int:
        """Predictions made in the range that nobody has reviewed yet, as stored when this call was made."""
        generation = await self.fence.sync()
        if generation is None:
            return await queries.pending_reviews(collections, days)
        return await self._counts.get(days.bounds, (generation, self.fence.source_changes),
                                      lambda: queries.pending_reviews(collections, days))

    async def close(self) -> None:
        await self._counts.close()

