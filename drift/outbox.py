"""What waits in the outbox, for the outbox alert: entries per sink, the oldest one's age, dead letters.

Every read is bounded and uses the outbox's (pending, created_at) index: counts stop at `cap`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from clara.config import DriftSettings
from clara.db import Collections
from consumer.outbox_queue import OUTBOX_STATE_ID

# Counts stop at ten times the threshold (past it the exact number changes nothing), or here without one.
COUNT_CAP_FACTOR, COUNT_CAP = 10, 10_000


@dataclasses.dataclass(frozen=True)
class OutboxStatus:
    waiting: dict[str, int]                 # entries pending per sink (capped)
    oldest: dict[str, dt.datetime]          # created_at of the oldest entry pending per sink
    dead: int                               # entries refused for good by a sink, kept for requeue_dead (capped)
    dead_expired: dict[str, int]            # dead entries deleted after profiles.dead_retention_days, so far
    cap: int

    def shown(self, count: int) -> str:
        return f"at least {count:,}" if count >= self.cap else f"{count:,}"


def count_cap(drift: DriftSettings) -> int:
    return drift.outbox_max_entries * COUNT_CAP_FACTOR + 1 if drift.outbox_max_entries else COUNT_CAP


def outbox_status(cols: Collections, cap: int) -> OutboxStatus:
    waiting: dict[str, int] = {}
    oldest: dict[str, dt.datetime] = {}
    for sink in sorted(name for name in cols.outbox.distinct("pending") if isinstance(name, str)):
        waiting[sink] = cols.outbox.count_documents({"pending": sink}, limit=cap)
        first = cols.outbox.find_one({"pending": sink}, {"created_at": 1}, sort=[("created_at", 1)])
        if first is not None:
            at = first["created_at"]
            oldest[sink] = at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at
    dead = cols.outbox.count_documents({"pending": [], "dead": {"$nin": [{}, None]}}, limit=cap)
    state = cols.state.find_one({"_id": OUTBOX_STATE_ID}, {"dead_expired": 1}) or {}
    return OutboxStatus(waiting, oldest, dead, dict(state.get("dead_expired") or {}), cap)
