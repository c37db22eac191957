"""The stream follower: catch up, then follow the source's change stream in batches, forever.

Order matters for "nothing missed": the stream is opened (or resumed from the checkpoint) before
the catch-up scan, starting no later than the majority-committed data the scan reads, so whatever
the scan cannot see arrives through the stream, and the counted collection makes a second sight a
no-op. Our own writes never match the stream's filter: they touch `logged`/`logged_at`, never a
field a count depends on. Only the consumer holding the lease processes anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bson import Timestamp
from pymongo import MongoClient
from pymongo.change_stream import CollectionChangeStream
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from clara.config import Config
from clara.db import Collections, end_orphaned_transactions, ensure_indexes
from clara.records import COUNTED_FIELDS
from consumer.activity import Activity
from consumer.batch import CONSUMER_STATE_ID, BatchResult, commit_batch
from consumer.catchup import catch_up, recheck_counted
from consumer.isolation import commit_isolating
from consumer.lease import Lease, LeaseLost
from consumer.migrate import migrate_logged_as

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
# Server codes for a resume point that is gone from the oplog.
HISTORY_LOST = {286, 280, 136}
# Every change that can move a count: reviewed inserts, replaces of any kind (an ODM's save, a replace that
# withdraws the review), updates or removals of any counted field. CLARA's own writes touch only `logged`
# and `logged_at`, so they never match. Only the key is kept: the batch re-reads the documents anyway, and
# an event carrying a document the driver cannot decode must not stop the stream.
REVIEW_EVENTS = [
    {"$match": {"$or": [
        {"operationType": "insert", "fullDocument.output_validated": {"$ne": None}},
        {"operationType": "replace"},
        {"operationType": "update", "$or": [
            *({f"updateDescription.updatedFields.{field}": {"$exists": True}} for field in COUNTED_FIELDS),
            {"updateDescription.removedFields": {"$in": list(COUNTED_FIELDS)}}]},
    ]}},
    {"$project": {"operationType": 1, "documentKey": 1, "wallTime": 1}},
]


def is_history_lost(exc: BaseException) -> bool:
    return isinstance(exc, OperationFailure) and (
        exc.code in HISTORY_LOST or "resume point may no longer be in the oplog" in str(exc))


class Backoff:
    """Capped exponential delay for reconnecting; reset after a success."""

    def __init__(self, cap: float, first: float = 0.5):
        self.cap, self.first, self.current = cap, first, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first


class Follower:
    """Runs until `stop` is set: finishes the current batch, checkpoints, returns."""

    def __init__(self, client: MongoClient, cols: Collections, config: Config, sinks: Sequence[str],
                 stop: threading.Event, after_batch: Callable[[BatchResult], None] | None = None,
                 app_name: str | None = None):
        self.client, self.cols, self.config, self.sinks, self.stop = client, cols, config, sinks, stop
        self.app_name = app_name  # set: first end the transactions a killed consumer of this name left open
        self.after_batch = after_batch or (lambda result: None)
        self.settings = config.consumer
        self.lease = Lease(cols.state, config.mongodb.source_collection, self.settings.lease_seconds)
        self.activity = Activity()

    def run(self) -> None:
        backoff = Backoff(self.settings.reconnect_max_seconds)
        try:
            while not self.stop.is_set():
                try:
                    ensure_indexes(self.cols)
                    if not self.lease.wait_for(self.stop):
                        return
                    replica_set = self._is_replica_set()
                    if self.app_name and replica_set:
                        ended = end_orphaned_transactions(self.client, self.app_name)
                        if ended:
                            log.warning("ended %d transaction(s) a killed consumer left open", ended)
                        self.app_name = None
                    migrate_logged_as(self.client, self.cols, self.config, transactions=replica_set)
                    if replica_set:
                        self._follow()
                    else:
                        log.warning("MongoDB at %s is not a replica set: no change streams; polling every %.1f s",
                                    self.config.mongodb.uri.split("@")[-1], self.settings.poll_interval_seconds)
                        self._poll()
                    backoff.reset()
                except LeaseLost as exc:
                    log.warning("lost the consumer lease (%s): standing by", exc)
                except PyMongoError as exc:
                    self.activity.error()
                    delay = backoff.next()
                    log.warning("MongoDB unavailable (%s: %s); reconnecting in %.1f s", type(exc).__name__, exc, delay)
                    self.stop.wait(delay)
        finally:
            self.activity.flush()
            self._release()

    def _release(self) -> None:
        try:
            self.lease.release()
        except PyMongoError as exc:
            log.warning("could not release the consumer lease (%s); a standby takes over when it expires", exc)

    def _is_replica_set(self) -> bool:
        hello = self.client.admin.command("hello")
        return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    # -- change stream --------------------------------------------------------------------------

    def _open(self, token: Any) -> CollectionChangeStream:
        """Resume after the checkpoint; without one, start where the catch-up scan's view ends.

        A stream opened "now" starts after writes the server has applied but not yet majority-committed,
        and a catch-up reading majority-committed data cannot see those yet either: they would be missed.
        Starting at the majority-committed time closes that gap (a review seen both ways counts once).
        """
        max_await = int(min(max(self.settings.batch_max_seconds * 1000, 50), 1000))
        start = None if token is not None else self._majority_committed_time()
        return self.cols.source.watch(REVIEW_EVENTS, resume_after=token,
                                      start_at_operation_time=start, max_await_time_ms=max_await,
                                      batch_size=self.settings.batch_size)

    def _majority_committed_time(self) -> Timestamp:
        """The time of the majority-committed data every later catch-up read sees at least."""
        with self.client.start_session() as session:
            self.cols.source.with_options(read_concern=ReadConcern("majority")).find_one(
                {}, {"_id": 1}, session=session)
            return session.operation_time

    def _follow(self) -> None:
        state = self.cols.state.find_one({"_id": CONSUMER_STATE_ID}) or {}
        token = state.get("resume_token")
        full_scan = False
        while not self.stop.is_set():
            try:
                stream = self._open(token)
            except OperationFailure as exc:
                if not is_history_lost(exc) or token is None:
                    raise
                self._history_lost(exc)
                token, full_scan = None, True
                continue
            with stream:
                try:
                    self._catch_up(full_scan)
                    self._save_token(stream.resume_token)
                    self._consume(stream)
                    return
                except OperationFailure as exc:
                    if not is_history_lost(exc):
                        raise
                    self._history_lost(exc)
                    token, full_scan = None, True

    def _history_lost(self, exc: OperationFailure) -> None:
        log.warning("the checkpoint's resume token is no longer in the oplog (history lost: %s); opening a "
                    "fresh stream, then re-scanning every review so nothing written meanwhile is missed", exc)

    def _catch_up(self, full_scan: bool) -> None:
        started = time.perf_counter()
        result = catch_up(self.client, self.cols, self.config, sinks=self.sinks, include_logged=full_scan,
                          on_batch=self._log_batch, lease=self.lease)
        if full_scan:  # withdrawals made while events were lost: only the counted collection knows them
            rechecked, _ = recheck_counted(self.client, self.cols, self.config, sinks=self.sinks,
                                           on_batch=self._log_batch, lease=self.lease)
            result.merge(rechecked)
        if result.documents:
            log.info("caught up: %d documents in %d batches (%s) in %.1f s", result.documents, result.batches,
                     dict(result.counts), time.perf_counter() - started)

    def _consume(self, stream: CollectionChangeStream) -> None:
        last_checkpoint = last_renewal = time.monotonic()
        while not self.stop.is_set():
            events = self._collect(stream)
            if events:
                ids = [event["documentKey"]["_id"] for event in events]
                wall = [event["wallTime"] for event in events if event.get("wallTime")]
                lag = (dt.datetime.now(UTC) - min(wall).replace(tzinfo=UTC)).total_seconds() if wall else None
                result = commit_isolating(functools.partial(commit_batch, self.client, self.cols, self.config),
                                          self.cols, list(dict.fromkeys(ids)), sinks=self.sinks,
                                          checkpoint=stream.resume_token, lag_seconds=lag, lease=self.lease)
                self._log_batch(result, lag)
                last_checkpoint = last_renewal = time.monotonic()
            else:
                if time.monotonic() - last_checkpoint >= self.settings.checkpoint_idle_seconds:
                    self._save_token(stream.resume_token)
                    last_checkpoint = time.monotonic()
                if time.monotonic() - last_renewal >= self.lease.renew_every:
                    self.lease.renew()
                    last_renewal = time.monotonic()

    def _collect(self, stream: CollectionChangeStream) -> list[dict]:
        """Events until the batch is full or `batch_max_seconds` old; [] after an idle wait."""
        events: list[dict] = []
        opened = None
        while len(events) < self.settings.batch_size:
            event = stream.try_next()
            if event is not None:
                events.append(event)
                opened = opened or time.monotonic()
            elif not events or self.stop.is_set():
                break
            if opened is not None and time.monotonic() - opened >= self.settings.batch_max_seconds:
                break
        return events

    def _save_token(self, token: Any) -> None:
        """Advance the checkpoint on a quiet stream, so oplog rotation cannot strand it."""
        if token is None:
            return
        self.cols.state.update_one({"_id": CONSUMER_STATE_ID},
                                   {"$set": {"resume_token": token, "checkpoint_at": dt.datetime.now(UTC)}},
                                   upsert=True)

    # -- polling (standalone servers) -----------------------------------------------------------

    def _poll(self) -> None:
        """Standalone servers: count new reviews, and re-check `recheck_per_poll` counted ones per round,
        so corrections and withdrawals are applied without change events."""
        from consumer.standalone import commit_batch_journaled, recover_journals

        recover_journals(self.cols)
        after = None
        while not self.stop.is_set():
            self.lease.renew()
            catch_up(self.client, self.cols, self.config, sinks=self.sinks, on_batch=self._log_batch,
                     commit=commit_batch_journaled, lease=self.lease)
            _, after = recheck_counted(self.client, self.cols, self.config, sinks=self.sinks, after=after,
                                       limit=self.settings.recheck_per_poll, on_batch=self._log_rechecked,
                                       commit=commit_batch_journaled, lease=self.lease)
            self.stop.wait(self.settings.poll_interval_seconds)

    def _log_rechecked(self, result: BatchResult) -> None:
        if set(result.counts) - {"already_logged"}:   # quiet when nothing changed
            self._log_batch(result)

    def _log_batch(self, result: BatchResult, lag: float | None = None) -> None:
        self.activity.note(result, lag)
        log.debug("batch %s: %d documents %s, %d profiles, %.0f ms%s", result.batch_id, result.documents,
                 result.counts, result.profiles, result.duration_seconds * 1000,
                 "" if lag is None else f", lag {lag:.2f} s",
                 extra={"batch_id": result.batch_id, "batch_size": result.documents, "counts": result.counts,
                        "duration_ms": round(result.duration_seconds * 1000, 1), "lag_seconds": lag})
        self.after_batch(result)
