"""MongoDB reads for the API, all asynchronous: rollups by hour, plus small counts for data health.

Dashboard numbers come from the hourly rollups only. The one count on the source collection (pending
reviews) is an index-backed count on (output_validated, timestamp): index `clara_review_timestamp`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clara.db import CONSUMER_STATE_ID, PREDICTIONS_STATE_ID, Collections
from web.params import DateRange

REJECT_REASONS_SHOWN = 50


async def pending_reviews(collections: Collections, days: DateRange) -> int:
    """Predictions made in the range that nobody has reviewed yet."""
    start, end = days.bounds
    return await collections.source.count_documents(
        {"output_validated": None, "timestamp": {"$gte": start, "$lt": end}})


async def rejects(collections: Collections) -> dict[str, Any]:
    """Documents the consumer set aside: the total, and counts by reason (most frequent first)."""
    total = await collections.rejects.count_documents({})
    pipeline = [{"$group": {"_id": "$reason", "count": {"$sum": 1}, "field": {"$first": "$field"},
                            "last_at": {"$max": "$at"}}},
                {"$sort": {"count": -1, "_id": 1}}, {"$limit": REJECT_REASONS_SHOWN}]
    cursor = await collections.rejects.aggregate(pipeline)
    reasons = [{"reason": str(row["_id"]), "field": row.get("field"), "count": row["count"],
                "last_at": _iso(row.get("last_at"))} async for row in cursor]
    return {"total": total, "by_reason": reasons}


async def outbox_backlog(collections: Collections) -> int:
    """Profiles waiting in the outbox for their sinks."""
    return await collections.outbox.count_documents({})


async def segments_pending(collections: Collections) -> dict[str, Any] | None:
    """The segment increments the consumer put off while behind (clara.segment_pending), which segment figures
    still lack until a fold applies them: how many batches' worth and since when. None without segments.fields."""
    if not collections.segmented:
        return None
    cursor = await collections.segment_pending.aggregate(
        [{"$group": {"_id": None, "batches": {"$sum": 1}, "oldest": {"$min": "$at"}}}])
    found = await cursor.to_list(None)
    return {"batches": found[0]["batches"] if found else 0, "oldest_at": _iso(found[0]["oldest"] if found else None)}


async def consumer_state(collections: Collections, now: dt.datetime) -> dict[str, Any]:
    """The consumer's last batch time and lag, from its state document when it has written one."""
    doc = await collections.state.find_one({"_id": CONSUMER_STATE_ID}) or {}
    last_batch_at = doc.get("last_batch_at")
    lag = doc.get("lag_seconds")
    since = (now - last_batch_at).total_seconds() if isinstance(last_batch_at, dt.datetime) else None
    return {"known": bool(doc), "last_batch_at": _iso(last_batch_at),
            "lag_seconds": float(lag) if isinstance(lag, (int, float)) and not isinstance(lag, bool) else None,
            "seconds_since_last_batch": since}


async def prediction_recount(collections: Collections) -> bool:
    """Whether the consumer is recounting prediction hours now (their counts are still filling up)."""
    doc = await collections.state.find_one({"_id": PREDICTIONS_STATE_ID}, {"recount": 1}) or {}
    recount = doc.get("recount") or {}
    return bool(recount) and not recount.get("done_at")


async def open_alerts_by_severity(collections: Collections) -> dict[str, int]:
    """How many alerts are open now, by severity."""
    cursor = await collections.alerts.aggregate([{"$match": {"status": "open"}},
                                                 {"$group": {"_id": "$severity", "n": {"$sum": 1}}}])
    return {str(row["_id"]): row["n"] async for row in cursor}


async def ping(collections: Collections) -> None:
    await collections.db.client.admin.command("ping")


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None
