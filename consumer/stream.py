"""The stream follower: catch up, then follow the source's change stream in batches, forever.

Order matters for "nothing missed": the stream is opened (or resumed from the checkpoint) before
the catch-up scan, starting no later than the majority-committed data the scan reads, so whatever
the scan cannot see arrives through the stream, and the counted collection makes a second sight a
no-op. Our own writes never match the stream's filter: they touch `logged`/`logged_at`, never a
field a count depends on. Only the consumer holding the lease processes anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import bson
import bson.errors
from bson import Timestamp
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.change_stream import CollectionChangeStream
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from clara.config import Config
from clara.db import Collections, end_orphaned_transactions, ensure_indexes
from clara.records import COUNTED_FIELDS
from clara.segment_pending import Folding, fold_all
from consumer.activity import Activity
from consumer.batch import CONSUMER_STATE_ID, BatchResult, commit_batch
from consumer.catchup import catch_up, recheck_counted
from consumer.isolation import commit_isolating, set_aside
from consumer.lease import Lease, LeaseLost
from consumer.migrate import migrate_logged_as
from consumer.prefetch import Ahead, Prefetched, prefetch
from consumer.predictions import (Inserted, Recount, RecountPlan, begin_recount, hours_inserted_since, read_state,
                                  recount_replacing, recount_request, recount_thread, unfinished_recount)

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
# Server codes for a resume point that is gone from the oplog.
HISTORY_LOST = {286, 280, 136}
# Every change that can move a count: inserts (every prediction is counted at insert), replaces of any
# kind (an ODM's save, a replace that withdraws the review), updates or removals of any counted field.
# CLARA's own writes touch only `logged` and `logged_at`, so they never match. An insert keeps only the
# fields that count; other events only their key (the batch re-reads reviewed documents anyway).
def events(segment_fields: Sequence[str] = ()) -> list[dict]:
    """The stream's pipeline; segment fields (segments.fields) count too: an insert carries them, an update
    of one moves its review to another segment."""
    fields = (*COUNTED_FIELDS, *segment_fields)
    return [
        {"$match": {"$or": [
            {"operationType": {"$in": ["insert", "replace"]}},
            {"operationType": "update", "$or": [
                *({f"updateDescription.updatedFields.{field}": {"$exists": True}} for field in fields),
                {"updateDescription.removedFields": {"$in": list(fields)}}]},
        ]}},
        {"$project": {"operationType": 1, "documentKey": 1, "wallTime": 1, "clusterTime": 1, "fullDocument": {
            "$cond": [{"$eq": ["$operationType", "insert"]},
                      {"_id": "$fullDocument._id", **{f: f"$fullDocument.{f}" for f in ("logged", *fields)}},
                      "$$REMOVE"]}}},
    ]


EVENTS = events()
# Events stay raw until read field by field: a document the driver cannot decode is set aside, not fatal.
RAW_EVENTS = CodecOptions(document_class=RawBSONDocument, tz_aware=True, tzinfo=UTC,
                          datetime_conversion=DatetimeConversion.DATETIME_AUTO)
# An inserted document's fields, decoded once per event: made here, since building CodecOptions is several
# times dearer than decoding a prediction.
EVENT_DOCUMENTS = RAW_EVENTS.with_options(document_class=dict)
# After history is lost, prediction hours from this long before the last checkpoint are recounted.
RECOUNT_MARGIN = dt.timedelta(days=1)
# How often the follower looks for a recount request from `python -m replay --rebuild` (one small read).
REQUEST_CHECK_SECONDS = 1.0
# Standalone servers (no change streams): each poll recounts the prediction hours of what was inserted
# since the last poll (by ObjectId time, which the writer's clock sets: hence a margin).
STANDALONE_CLOCK_MARGIN = dt.timedelta(minutes=2)


@dataclasses.dataclass
class EventBatch:
    """A batch of change events, sorted for the batch pipeline."""

    review_ids: list = dataclasses.field(default_factory=list)     # documents whose review may have changed
    inserted: list[Inserted] = dataclasses.field(default_factory=list)
    undecodable: list = dataclasses.field(default_factory=list)    # (document key, error)
    wall: list[dt.datetime] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, events: Sequence[Mapping]) -> EventBatch:
        batch = cls()
        for event in events:
            doc_id = event["documentKey"]["_id"]
            if event.get("wallTime"):
                batch.wall.append(event["wallTime"])
            if event["operationType"] != "insert":
                batch.review_ids.append(doc_id)
                continue
            try:
                doc = bson.decode(event["fullDocument"].raw, EVENT_DOCUMENTS)
            except bson.errors.BSONError as exc:
                batch.undecodable.append((doc_id, exc))
                continue
            batch.inserted.append(Inserted(doc, event["clusterTime"]))
            if doc.get("output_validated") is not None:
                batch.review_ids.append(doc_id)
        batch.review_ids = list(dict.fromkeys(batch.review_ids))
        return batch


@dataclasses.dataclass(frozen=True)
class Gathered:
    """A batch of events (None: an idle wait), the stream's resume token after them, their documents read ahead."""

    batch: EventBatch | None
    token: Any
    prefetched: Prefetched | None = None
    full: bool = False   # batch_size events: the consumer is behind


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
                 app_name: str | None = None, when_idle: Callable[[], None] | None = None):
        self.client, self.cols, self.config, self.sinks, self.stop = client, cols, config, sinks, stop
        self.app_name = app_name  # set: end the transactions a killed consumer of this name left open
        self.orphans_ended = False
        self.after_batch = after_batch or (lambda result: None)
        self.when_idle = when_idle or (lambda: None)   # called when the stream falls idle after work
        self.settings = config.consumer
        self.lease = Lease(cols.state, f"lease:{config.mongodb.source_collection}", self.settings.lease_seconds,
                           before_takeover=self._end_orphans if app_name else None)
        self.activity = Activity()
        self.opened_at: Timestamp | None = None    # where a fresh stream started
        # With segments: when a batch may put its segment increments off (clara.segment_pending).
        self.folding = Folding(config.segments.fold_seconds) if config.segments.enabled else None
        # Set once the batch being gathered holds an event: the batch committing meanwhile is not the last.
        self.events_waiting = threading.Event()

    def run(self) -> None:
        backoff = Backoff(self.settings.reconnect_max_seconds)
        try:
            while not self.stop.is_set():
                try:
                    ensure_indexes(self.cols)
                    if not self.lease.wait_for(self.stop):
                        return
                    if self.folding is not None:   # a consumer that held the lease meanwhile may have put some off
                        self.folding.pending = True
                    replica_set = self._is_replica_set()
                    if self.app_name and replica_set and not self.orphans_ended:
                        self._end_orphans()
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

    def _end_orphans(self) -> None:
        """End the transactions a killed consumer of ours left open (they lock what they touched for 60 s)."""
        if not self._is_replica_set():
            return
        ended = end_orphaned_transactions(self.client, self.app_name)
        if ended:
            log.warning("ended %d transaction(s) a killed consumer left open", ended)
        self.orphans_ended = True

    def _release(self) -> None:
        try:
            self.lease.release()
        except PyMongoError as exc:
            log.warning("could not release the consumer lease (%s); a standby takes over when it expires", exc)

    def _is_replica_set(self) -> bool:
        hello = self.client.admin.command("hello")
        return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    # -- change stream --------------------------------------------------------------------------

    def _open(self, token: Any, resume_at: Timestamp | None = None) -> CollectionChangeStream:
        """Resume after the checkpoint; without one, start where the catch-up scan's view ends.

        A stream opened "now" starts after writes the server has applied but not yet majority-committed,
        and a catch-up reading majority-committed data cannot see those yet either: they would be missed.
        Starting at the majority-committed time closes that gap (a review seen both ways counts once).
        """
        max_await = int(min(max(self.settings.batch_max_seconds * 1000, 50), 1000))
        start = None if token is not None else resume_at or self._majority_committed_time()
        self.opened_at = start
        pipeline = events(self.config.segments.fields)
        return self.cols.source.with_options(codec_options=RAW_EVENTS).watch(pipeline, resume_after=token,
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
        token, resume_at = state.get("resume_token"), state.get("resume_at")
        full_scan = False
        recount_from: frozenset | None | bool = False if token or resume_at else None   # None: every hour
        while not self.stop.is_set():
            try:
                stream = self._open(token, resume_at)
            except OperationFailure as exc:
                if not is_history_lost(exc) or (token is None and resume_at is None):
                    raise
                self._history_lost(exc)
                token, resume_at, full_scan, recount_from = None, None, True, self._recount_start(state)
                continue
            with stream, self._predictions(stream, recount_from):
                try:
                    self._catch_up(full_scan)
                    self._save_token(stream.resume_token)
                    self._consume(stream)
                    return
                except OperationFailure as exc:
                    if not is_history_lost(exc):
                        raise
                    self._history_lost(exc)
                    token, resume_at, full_scan, recount_from = None, None, True, self._recount_start(state)

    def _recount_start(self, state: Mapping) -> frozenset[dt.datetime] | None:
        """After history is lost: recount the prediction hours of what was inserted since a margin before
        the last checkpoint (every hour when that cannot be told)."""
        checkpoint_at = state.get("checkpoint_at")
        return hours_inserted_since(self.cols, None if checkpoint_at is None else checkpoint_at - RECOUNT_MARGIN)

    @contextlib.contextmanager
    def _predictions(self, stream: CollectionChangeStream, recount_from: frozenset | None | bool) -> Iterator[None]:
        """Begin (or resume) a recount of predictions beside the stream, and stop it on the way out.

        recount_from False: follow the checkpoint, resuming an unfinished recount; None or a set of hours:
        recount every hour, or those.
        """
        plan = unfinished_recount(read_state(self.cols))
        if recount_from is not False:
            reason = "no checkpoint: counting what the collection holds" if recount_from is None else "history lost"
            plan = begin_recount(self.client, self.cols, recount_from, stream.resume_token, self.opened_at, reason)
        self._recount_stop = threading.Event()
        self._recounts = []
        if plan is not None:
            self._start_recount(plan)
        try:
            yield
        finally:
            self._recount_stop.set()
            for thread in self._recounts:
                thread.join(timeout=60)

    def _start_recount(self, plan: RecountPlan) -> None:
        recount = Recount(self.cols, self.config.n_classes, self.config.model.rollup_period, plan, self._recount_stop,
                          segments=self.config.segments)
        thread = recount_thread(recount)
        thread.start()
        self._recounts = [t for t in self._recounts if t.is_alive()] + [thread]

    def _answer_recount_request(self, committed_token: Any) -> None:
        """Between two commits (none in flight), begin the recount `python -m replay --rebuild` asked for,
        checkpointing the stream at the last committed batch (`committed_token`)."""
        request = recount_request(read_state(self.cols))
        if request is None:
            return
        request_id, hours, reason = request
        plan = begin_recount(self.client, self.cols, hours, committed_token, self.opened_at, reason,
                             request_id=request_id)
        self._start_recount(plan)

    def _history_lost(self, exc: OperationFailure) -> None:
        log.warning("the checkpoint's resume token is no longer in the oplog (history lost: %s); opening a "
                    "fresh stream, then re-scanning every review so nothing written meanwhile is missed", exc)

    def _catch_up(self, full_scan: bool) -> None:
        started = time.perf_counter()
        result = catch_up(self.client, self.cols, self.config, sinks=self.sinks, include_logged=full_scan,
                          on_batch=self._log_batch, lease=self.lease, folding=self.folding)
        if full_scan:  # withdrawals made while events were lost: only the counted collection knows them
            rechecked, _ = recheck_counted(self.client, self.cols, self.config, sinks=self.sinks,
                                           on_batch=self._log_batch, lease=self.lease)
            result.merge(rechecked)
        if result.documents:
            log.info("caught up: %d documents in %d batches (%s) in %.1f s", result.documents, result.batches,
                     dict(result.counts), time.perf_counter() - started)

    def _consume(self, stream: CollectionChangeStream) -> None:
        """Follow the stream: each batch's events are gathered, and its documents read ahead, on a thread of
        its own while the previous batch commits (consumer.prefetch); commits stay one at a time, in order."""
        last_checkpoint = last_renewal = last_request_check = time.monotonic()
        committed_token = stream.resume_token   # every event up to it is committed
        busy = True   # since the last idle wait: the catch-up, or a batch
        with Ahead() as ahead:
            upcoming = ahead.submit(functools.partial(self._gather, stream, ()))
            while not self.stop.is_set():
                gathered = upcoming.result()
                if gathered.batch is None:   # an idle wait: nothing gathered, nothing in flight
                    committed_token = gathered.token
                    if self.folding is not None and self.folding.pending:
                        fold_all(self.client, self.cols)
                        self.folding.committed(False, False)
                    if busy:
                        self.when_idle()
                        busy = False
                    if time.monotonic() - last_checkpoint >= self.settings.checkpoint_idle_seconds:
                        self._save_token(committed_token)
                        last_checkpoint = time.monotonic()
                    if time.monotonic() - last_renewal >= self.lease.renew_every:
                        self.lease.renew()
                        last_renewal = time.monotonic()
                else:
                    batch = gathered.batch
                    self.events_waiting.clear()
                    upcoming = ahead.submit(functools.partial(self._gather, stream, batch.review_ids))
                    for doc_id, exc in batch.undecodable:
                        set_aside(self.cols, doc_id, exc)
                    lag = (dt.datetime.now(UTC) - min(batch.wall)).total_seconds() \
                        if batch.wall else None
                    result = commit_isolating(functools.partial(commit_batch, self.client, self.cols, self.config),
                                              self.cols, batch.review_ids, sinks=self.sinks, inserted=batch.inserted,
                                              checkpoint=gathered.token, lag_seconds=lag, lease=self.lease,
                                              prefetched=gathered.prefetched, folding=self.folding,
                                              full=gathered.full, more_waiting=self.events_waiting.is_set)
                    committed_token, busy = gathered.token, True
                    self._log_batch(result, lag)
                    last_checkpoint = last_renewal = time.monotonic()
                if time.monotonic() - last_request_check >= REQUEST_CHECK_SECONDS:
                    self._answer_recount_request(committed_token)   # no commit is in flight here
                    last_request_check = time.monotonic()
                if gathered.batch is None and not self.stop.is_set():
                    upcoming = ahead.submit(functools.partial(self._gather, stream, ()))

    def _gather(self, stream: CollectionChangeStream, committing: Sequence[Any]) -> Gathered:
        """The next batch of events with the stream's position after them, and its documents read ahead
        except those of the batch committing meanwhile (`committing`)."""
        events = self._collect(stream)
        if not events:
            return Gathered(None, stream.resume_token)
        batch = EventBatch.of(events)
        return Gathered(batch, stream.resume_token,
                        prefetch(self.cols, self.config, batch.review_ids, skip=set(committing),
                                 inserted=batch.inserted),
                        len(events) >= self.settings.batch_size)

    def _collect(self, stream: CollectionChangeStream) -> list[dict]:
        """Events until the batch is full or `batch_max_seconds` old; [] after an idle wait."""
        events: list[dict] = []
        opened = None
        while len(events) < self.settings.batch_size:
            event = stream.try_next()
            if event is not None:
                events.append(event)
                if opened is None:
                    opened = time.monotonic()
                    self.events_waiting.set()
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
        since: dt.datetime | None = None   # first poll: every hour
        while not self.stop.is_set():
            self.lease.renew()
            polled_at = dt.datetime.now(UTC)
            hours = None if since is None else hours_inserted_since(self.cols, since)
            recount_replacing(self.cols, self.config.n_classes, self.config.model.rollup_period, hours,
                              self.config.segments)
            since = polled_at - STANDALONE_CLOCK_MARGIN
            catch_up(self.client, self.cols, self.config, sinks=self.sinks, on_batch=self._log_batch,
                     commit=commit_batch_journaled, lease=self.lease)
            _, after = recheck_counted(self.client, self.cols, self.config, sinks=self.sinks, after=after,
                                       limit=self.settings.recheck_per_poll, on_batch=self._log_rechecked,
                                       commit=commit_batch_journaled, lease=self.lease)
            self.when_idle()
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
