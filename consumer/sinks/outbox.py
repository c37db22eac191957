"""Draining the outbox: each due entry goes to each sink still pending for it, oldest first.

Each sink marks its own outcome with one atomic update of the entry: delivered (`$pull` from
`pending`, `delivered.<sink>` set), failed for now (`attempts.<sink>` +1, `next_attempt_at.<sink>`,
`last_error.<sink>`; retried by a later call, also after a restart), or refused for good (moved from
`pending` to `dead.<sink>` with the reason, kept for inspection and `requeue_dead`). An entry whose
`pending` is empty and has nothing dead is deleted. A sink that fails transiently is not tried again
in the same call, so an outage costs one retry budget per call, not one per entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from clara.config import Config
from clara.db import Collections
from consumer.sinks.base import OutboxEntry, PermanentSinkError, Sink, TransientSinkError
from consumer.sinks.local_store import LocalProfileStore
from consumer.sinks.whylabs import WhyLabsSink

log = logging.getLogger("consumer.sinks")

DEFAULT_LIMIT = 100
_DELETABLE = {"pending": {"$size": 0}, "dead": {"$in": [{}, None]}}


@dataclasses.dataclass
class DrainResult:
    """What one `deliver_pending` call did, per sink name."""

    delivered: dict[str, int] = dataclasses.field(default_factory=dict)
    failed: dict[str, int] = dataclasses.field(default_factory=dict)
    dead: dict[str, int] = dataclasses.field(default_factory=dict)
    deleted: int = 0
    possible_duplicates: list[str] = dataclasses.field(default_factory=list)

    def count(self, field: str, sink: str) -> None:
        counts = getattr(self, field)
        counts[sink] = counts.get(sink, 0) + 1


def build_sinks(config: Config) -> list[Sink]:
    """The sinks configured: the local store if profiles.local_store, WhyLabs if its credentials are set."""
    sinks: list[Sink] = []
    if config.profiles.local_store:
        sinks.append(LocalProfileStore(config.profiles.local_store_dir))
    if config.whylabs.enabled:
        sinks.append(WhyLabsSink(config.whylabs))
    return sinks


def deliver_pending(collections: Collections, config: Config, sinks: Sequence[Sink], *,
                    now: dt.datetime | None = None, limit: int = DEFAULT_LIMIT) -> DrainResult:
    """Deliver up to `limit` due outbox entries (created_at order) to their pending sinks; never in a transaction."""
    now = now or dt.datetime.now(dt.timezone.utc)
    by_name = {sink.name: sink for sink in sinks}
    result = DrainResult()
    down: set[str] = set()
    due = [{"pending": name, f"next_attempt_at.{name}": {"$not": {"$gt": now}}} for name in by_name]
    docs = list(collections.outbox.find({"$or": due}).sort("created_at", 1).limit(limit)) if due else []
    for doc in docs:
        entry = OutboxEntry.from_document(doc)
        for name in doc.get("pending", []):
            not_before = (doc.get("next_attempt_at") or {}).get(name)
            if name in by_name and name not in down and (not_before is None or not_before <= now):
                if not _deliver_one(collections, by_name[name], entry, doc, now, result):
                    down.add(name)
    # Every entry now delivered everywhere, including those a drainer that stopped left behind.
    result.deleted += collections.outbox.delete_many(_DELETABLE).deleted_count
    return result


def _deliver_one(collections: Collections, sink: Sink, entry: OutboxEntry, doc: dict, now: dt.datetime,
                 result: DrainResult) -> bool:
    """Try one sink for one entry and record the outcome; False when the sink is down for now."""
    name, mine = sink.name, {"_id": entry.id, "pending": sink.name}
    try:
        delivered = sink.deliver(entry)
    except PermanentSinkError as exc:
        log.error("outbox entry %s: %s refused it for good: %s", entry.id, name, exc.reason)
        collections.outbox.update_one(mine, {"$pull": {"pending": name}, "$inc": {f"attempts.{name}": 1},
                                             "$set": {f"dead.{name}": {"reason": exc.reason, "at": now}}})
        result.count("dead", name)
        return True
    except TransientSinkError as exc:
        attempts = int((doc.get("attempts") or {}).get(name, 0)) + 1
        delay = max(sink.retry_delay(attempts), exc.retry_after or 0.0)
        log.warning("outbox entry %s: %s failed (attempt %d: %s); retrying in %.1f s",
                    entry.id, name, attempts, exc.reason, delay)
        collections.outbox.update_one(mine, {"$inc": {f"attempts.{name}": 1}, "$set": {
            f"next_attempt_at.{name}": now + dt.timedelta(seconds=delay), f"last_error.{name}": exc.reason}})
        result.count("failed", name)
        if exc.maybe_delivered:
            result.possible_duplicates.append(entry.id)
        return False
    collections.outbox.update_one(mine, {"$pull": {"pending": name}, "$set": {f"delivered.{name}": now},
                                         "$unset": {f"next_attempt_at.{name}": ""}})
    result.count("delivered", name)
    if delivered.possible_duplicate:
        result.possible_duplicates.append(entry.id)
    return True


def requeue_dead(collections: Collections, sink: str, entry_ids: Iterable[str] | None = None) -> int:
    """Put dead-lettered entries back in `sink`'s pending list (after fixing the cause); returns how many."""
    query: dict = {f"dead.{sink}": {"$exists": True}}
    if entry_ids is not None:
        query["_id"] = {"$in": list(entry_ids)}
    update = {"$addToSet": {"pending": sink}, "$set": {f"attempts.{sink}": 0},
              "$unset": {f"dead.{sink}": "", f"next_attempt_at.{sink}": ""}}
    return collections.outbox.update_many(query, update).modified_count
