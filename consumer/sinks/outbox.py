"""Draining the outbox: the due entries, oldest first, go to each sink still pending for them, one hour at a time.

For each sink and prediction hour, the drain profiles every due entry of the hour at once (their rows,
merged with the views of entries written before rows) and hands the sink ONE profile: one file rewrite
in the local store, one upload to WhyLabs. A sink is drained only once its oldest due entry is
`interval_seconds` old (`profiles.local_store_interval_seconds`, `whylabs.upload_interval_seconds`) or a
call's worth of entries is due, so live batches closing every fraction of a second cost one delivery per
hour per interval, and a backlog drains call after call.

The outcome is marked on the hour's entries: delivered (`$pull` from `pending`, `delivered.<sink>` set;
an entry whose last pending sink this was is deleted instead), failed for now (`attempts.<sink>` +1,
`next_attempt_at.<sink>`, `last_error.<sink>`; retried by a later call, also after a restart), or refused
for good (moved from `pending` to `dead.<sink>` with the reason, kept for inspection and `requeue_dead`).
A sink that fails transiently is not tried again in the same call, so an outage costs one retry budget
per call, not one per hour. Before a sink gets an hour, the entries it says it already holds (`held`:
the local store's last merge, whose acknowledgement a kill may have lost) are acknowledged and left out,
so nothing is merged twice; an `exclusive` sink (the local store) is drained by one process at a time
(consumer.sinks.drain_lease).

Dead entries are kept `profiles.dead_retention_days` (0: until requeued) after their sink refused them,
then deleted with a warning; the count deleted so far is kept in the state document {_id: "outbox"}.
That upkeep runs at most every MAINTENANCE_SECONDS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from pymongo.errors import PyMongoError

from clara.config import Config
from clara.db import Collections
from consumer.outbox_queue import OUTBOX_STATE_ID
from consumer.sinks import drain_lease
from consumer.sinks.base import OutboxEntry, PermanentSinkError, Sink, TransientSinkError
from consumer.sinks.local_store import LocalProfileStore
from consumer.sinks.profiles import hour_view
from consumer.sinks.whylabs import WhyLabsSink

log = logging.getLogger("consumer.sinks")

DEFAULT_LIMIT = 1000
ROWS_PER_CALL = 200_000          # bounds one call's memory when entries are large (replay re-sends whole hours)
MAINTENANCE_SECONDS = 600.0
UNEXPECTED_MAX_DELAY = 3600.0    # an hour that fails in an unexpected way is retried at most this far apart
KNOWN_SINKS = ("local", "whylabs")
_NOT_DEAD = {"dead": {"$in": [{}, None]}}


@dataclasses.dataclass
class DrainResult:
    """What one `deliver_pending` call did, per sink name (entries; `profiles`: hour profiles delivered)."""

    delivered: dict[str, int] = dataclasses.field(default_factory=dict)
    failed: dict[str, int] = dataclasses.field(default_factory=dict)
    dead: dict[str, int] = dataclasses.field(default_factory=dict)
    profiles: dict[str, int] = dataclasses.field(default_factory=dict)
    deleted: int = 0
    expired: int = 0
    possible_duplicates: list[str] = dataclasses.field(default_factory=list)

    def count(self, field: str, sink: str, n: int = 1) -> None:
        if n:
            counts = getattr(self, field)
            counts[sink] = counts.get(sink, 0) + n


def build_sinks(config: Config) -> list[Sink]:
    """The sinks configured: the local store if profiles.local_store, WhyLabs if its credentials are set."""
    sinks: list[Sink] = []
    if config.profiles.local_store:
        sinks.append(LocalProfileStore(config.profiles.local_store_dir, config.profiles.local_store_interval_seconds))
    if config.whylabs.enabled:
        sinks.append(WhyLabsSink(config.whylabs))
    return sinks


def deliver_pending(collections: Collections, config: Config, sinks: Sequence[Sink], *,
                    now: dt.datetime | None = None, limit: int = DEFAULT_LIMIT) -> DrainResult:
    """Deliver up to `limit` due outbox entries, oldest first: one profile per sink and hour, never in a transaction."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = DrainResult()
    ready = [sink for sink in sinks if _ready(collections, sink, now, limit)]
    docs = _due_documents(collections, [sink.name for sink in ready], now, limit)
    for sink in ready:
        by_hour: dict[dt.datetime, list[OutboxEntry]] = {}
        attempts: dict[str, int] = {}
        for doc in docs:
            if sink.name in doc.get("pending", []) and _due(doc, sink.name, now):
                entry = OutboxEntry.from_document(doc)
                by_hour.setdefault(entry.hour, []).append(entry)
                attempts[entry.id] = int((doc.get("attempts") or {}).get(sink.name, 0))
        for hour, entries in by_hour.items():
            if sink.exclusive and not drain_lease.hold(collections.state):
                log.warning("another drainer holds the outbox drain lease; %s waits for it", sink.name)
                break
            if not _deliver_hour(collections, config, sink, hour, entries, attempts, now, result):
                break  # down for now: the rest waits for the next call
    _maintain(collections, config, [sink.name for sink in sinks], now, result)
    return result


def _due(doc: dict, name: str, now: dt.datetime) -> bool:
    not_before = (doc.get("next_attempt_at") or {}).get(name)
    return not_before is None or not_before <= now


def _due_query(name: str, now: dt.datetime) -> dict:
    return {"pending": name, f"next_attempt_at.{name}": {"$not": {"$gt": now}}}


def _ready(collections: Collections, sink: Sink, now: dt.datetime, limit: int) -> bool:
    """True when the sink's oldest due entry has waited its interval (always, without an interval), or when
    a call's worth of entries is due (a backlog drains call after call, whatever their age)."""
    if sink.interval_seconds <= 0:
        return True
    due = _due_query(sink.name, now)
    oldest = collections.outbox.find_one(due, {"created_at": 1}, sort=[("created_at", 1)])
    if oldest is None:
        return False
    if oldest["created_at"] <= now - dt.timedelta(seconds=sink.interval_seconds):
        return True
    return collections.outbox.count_documents(due, limit=limit) >= limit


def _due_documents(collections: Collections, names: list[str], now: dt.datetime, limit: int) -> list[dict]:
    if not names:
        return []
    docs, rows = [], 0
    for doc in collections.outbox.find({"$or": [_due_query(name, now) for name in names]}).sort("created_at", 1) \
            .limit(limit):
        docs.append(doc)
        rows += int(doc.get("rows") or 0)
        if rows >= ROWS_PER_CALL:
            break
    return docs


def _deliver_hour(collections: Collections, config: Config, sink: Sink, hour: dt.datetime,
                  entries: list[OutboxEntry], attempts_before: dict[str, int], now: dt.datetime,
                  result: DrainResult) -> bool:
    """Deliver one hour's entries to one sink and mark the outcome; False when the sink is down for now."""
    name, ids = sink.name, [entry.id for entry in entries]
    try:
        held = sink.held(hour)
        if held:
            # Delivered before, acknowledgement lost (a kill between the write and the marks): mark, never redo.
            done = _acknowledge(collections, name, sorted(held), now, result)
            if done:
                log.warning("%s already held %d outbox entries of %s (acknowledgement lost); acknowledged, "
                            "not merged again", name, done, f"{hour:%Y-%m-%d %H}:00")
            entries = [entry for entry in entries if entry.id not in held]
            ids = [entry.id for entry in entries]
            if not entries:
                return True
        built = hour_view(entries, hour, config.model.classes, performance=sink.performance)
        for entry, reason in built.refused:
            _refuse(collections, name, [entry.id], reason, now, result)
        if built.view is None:
            return True
        ids = [entry.id for entry in built.entries]
        # Segment profiles only where there are some: sinks without segments keep the three-argument call.
        delivered = sink.deliver(hour, built.view, ids, **({"segments": built.segments} if built.segments else {}))
    except PermanentSinkError as exc:
        _refuse(collections, name, ids, exc.reason, now, result)
        return True
    except TransientSinkError as exc:
        attempts = 1 + max((attempts_before.get(i, 0) for i in ids), default=0)
        delay = max(sink.retry_delay(attempts), exc.retry_after or 0.0)
        log.warning("%s failed for %d outbox entries of %s (attempt %d: %s); retrying in %.1f s",
                    name, len(ids), f"{hour:%Y-%m-%d %H}:00", attempts, exc.reason, delay)
        _failed(collections, name, ids, exc.reason, now + dt.timedelta(seconds=delay), result)
        if exc.maybe_delivered:
            result.possible_duplicates += ids
        return False
    except PyMongoError:
        raise  # MongoDB is away: the whole call is retried
    except Exception as exc:  # noqa: BLE001 - one hour's unexpected failure must not hold up the others
        attempts = 1 + max((attempts_before.get(i, 0) for i in ids), default=0)
        delay = min(UNEXPECTED_MAX_DELAY, 2.0 ** attempts)
        log.exception("%s: unexpected error delivering %d outbox entries of %s; retrying in %.0f s",
                      name, len(ids), f"{hour:%Y-%m-%d %H}:00", delay)
        _failed(collections, name, ids, f"{type(exc).__name__}: {exc}", now + dt.timedelta(seconds=delay), result)
        return True
    _acknowledge(collections, name, ids, now, result)
    result.count("profiles", name)
    if delivered.possible_duplicate:
        result.possible_duplicates += ids
    return True


def _failed(collections: Collections, name: str, ids: list[str], reason: str, retry_at: dt.datetime,
            result: DrainResult) -> None:
    collections.outbox.update_many({"_id": {"$in": ids}, "pending": name}, {
        "$inc": {f"attempts.{name}": 1}, "$set": {f"next_attempt_at.{name}": retry_at, f"last_error.{name}": reason}})
    result.count("failed", name, len(ids))


def _acknowledge(collections: Collections, name: str, ids: list[str], now: dt.datetime, result: DrainResult) -> int:
    """Mark `ids` delivered to `name`; those it was the last sink of go at once. Returns how many were pending."""
    outbox = collections.outbox
    deleted = outbox.delete_many({"_id": {"$in": ids}, "pending": [name], **_NOT_DEAD}).deleted_count
    marked = outbox.update_many({"_id": {"$in": ids}, "pending": name}, {
        "$pull": {"pending": name}, "$set": {f"delivered.{name}": now},
        "$unset": {f"next_attempt_at.{name}": ""}}).modified_count
    result.deleted += deleted
    result.count("delivered", name, deleted + marked)
    return deleted + marked


def _refuse(collections: Collections, name: str, ids: list[str], reason: str, now: dt.datetime,
            result: DrainResult) -> None:
    log.error("%s refused %d outbox entries for good (%s): %s", name, len(ids), ", ".join(ids[:3]), reason)
    refused = collections.outbox.update_many({"_id": {"$in": ids}, "pending": name}, {
        "$pull": {"pending": name}, "$inc": {f"attempts.{name}": 1},
        "$set": {f"dead.{name}": {"reason": reason, "at": now}}}).modified_count
    result.count("dead", name, refused)


def _maintain(collections: Collections, config: Config, names: list[str], now: dt.datetime,
              result: DrainResult) -> None:
    """At most every MAINTENANCE_SECONDS: delete dead entries past their retention, and entries left done."""
    state = collections.state.find_one({"_id": OUTBOX_STATE_ID}, {"maintained_at": 1}) or {}
    last = state.get("maintained_at")
    if last is not None and now - dt.timedelta(seconds=MAINTENANCE_SECONDS) < last <= now:
        return
    collections.state.update_one({"_id": OUTBOX_STATE_ID}, {"$set": {"maintained_at": now}}, upsert=True)
    outbox = collections.outbox
    # Done everywhere but not deleted (left by versions that deleted in a second step).
    result.deleted += outbox.delete_many({"pending": [], **_NOT_DEAD}).deleted_count
    days = config.profiles.dead_retention_days
    if days <= 0:
        return
    cutoff = now - dt.timedelta(days=days)
    sinks = sorted(set(names) | set(KNOWN_SINKS))
    expired: dict[str, int] = {}
    for doc in outbox.find({"pending": [], "$or": [{f"dead.{name}.at": {"$lt": cutoff}} for name in sinks]},
                           {"dead": 1}):
        dead = doc.get("dead") or {}
        gone = [name for name, info in dead.items() if isinstance(info, dict) and _before(info.get("at"), cutoff)]
        if len(gone) == len(dead):
            removed = outbox.delete_one({"_id": doc["_id"], "pending": []}).deleted_count
        else:
            removed = outbox.update_one({"_id": doc["_id"]},
                                        {"$unset": {f"dead.{name}": "" for name in gone}}).modified_count
        for name in gone:
            expired[name] = expired.get(name, 0) + removed
        result.expired += removed
    if result.expired:
        log.warning("deleted %d dead outbox entries older than profiles.dead_retention_days (%g days), "
                    "never delivered to: %s", result.expired, days,
                    ", ".join(f"{name} ({n})" for name, n in sorted(expired.items())))
        collections.state.update_one({"_id": OUTBOX_STATE_ID}, {
            "$inc": {f"dead_expired.{name}": n for name, n in expired.items()}, "$set": {"dead_expired_at": now}})


def requeue_dead(collections: Collections, sink: str, entry_ids: Iterable[str] | None = None) -> int:
    """Put dead-lettered entries back in `sink`'s pending list (after fixing the cause); returns how many."""
    query: dict = {f"dead.{sink}": {"$exists": True}}
    if entry_ids is not None:
        query["_id"] = {"$in": list(entry_ids)}
    update = {"$addToSet": {"pending": sink}, "$set": {f"attempts.{sink}": 0},
              "$unset": {f"dead.{sink}": "", f"next_attempt_at.{sink}": ""}}
    return collections.outbox.update_many(query, update).modified_count


def _before(moment: object, cutoff: dt.datetime) -> bool:
    return isinstance(moment, dt.datetime) and moment < cutoff


