"""Executing a replay: the consumer's own batches for backfill, one transaction per group of hours for the rest.

Rebuild safety beside a running consumer: a group of whole hours is rebuilt in ONE transaction that
reads every document predicted in those hours and what the counted collection holds for them,
deletes the hours' rollups, recounts them from those documents and $incs the fresh counts, writing
counted entries (and, with consumer.mark_source, `logged` markers) only where they do not already say
what the recount counts — on data the consumer processed, none, so a rebuild costs little more than
reading (replay.rebuild). A consumer batch that counts, corrects or takes back a review of those hours
writes the same rollup document (and the same counted entry), so the two transactions conflict and
MongoDB lets only one commit; `with_transaction` retries the other on the new state (the consumer's
retry then finds the review counted as it is and counts nothing). A group the consumer keeps getting
in front of (each of its commits restarts ours) is split in two after GROUP_PATIENCE_SECONDS, down to
single hours, whose transactions are short enough to commit between its batches. Groups are thus
serialized one by one: no lock, no consumer change, and a rebuild killed at any moment leaves every
hour either rebuilt or as it was. The job document in the state collection records the last hour done (in the same
transaction), so a re-run with the same arguments resumes after it and each re-sent profile is
queued exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pymongo
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config
from clara.db import Collections
from clara.records import Record, parse_document
from clara.segments import Segment, read_admission
from consumer.batch import BatchResult, read_counted
from consumer.outbox_queue import queue_profiles
from consumer.catchup import ALL_REVIEWS, CatchUpResult, catch_up
from replay.errors import Interrupted
from replay.options import Options, TimeRange
from replay.plan import Selection, backfill_filter, hour_phase
from replay.predictions import PredictionsDone, rebuild_predictions
from replay.rebuild import HourDone, REBUILD_GROUP_DOCUMENTS, rebuild_hours
from replay.progress import Progress

log = logging.getLogger("replay")
UTC = dt.timezone.utc
GROUP_PATIENCE_SECONDS = 10.0   # a group of hours that has not committed by then is split (Run._group)


@dataclasses.dataclass
class Summary(CatchUpResult):
    """The whole run: the catch-up tally (documents, batches, profiles, counts) plus the hour phase's."""

    hours_rebuilt: int = 0
    hours_resent: int = 0
    predictions: PredictionsDone | None = None   # a rebuild: the prediction rollups' recount
    seconds: float = 0.0
    interrupted: bool = False

    def lines(self) -> list[str]:
        rate = self.documents / self.seconds if self.seconds else 0.0
        status = "interrupted: run the same command again to finish" if self.interrupted else "done"
        rebuilt = [f"  counted entries rewritten: {self.counts['rewritten']}; moved to another hour: "
                   f"{self.counts['moved']}; documents gone: {self.counts['kept']} counts kept, "
                   f"{self.counts['dropped']} dropped"] if self.hours_rebuilt else []
        return [f"replay {status}",
                f"  documents: {self.documents} ({rate:,.0f}/s), batches: {self.batches}",
                f"  counted: {self.counts['claimed']} new, {self.counts['corrected']} corrected, "
                f"{self.counts['recounted']} recounted in {self.hours_rebuilt} rebuilt hours",
                *rebuilt,
                *([] if self.predictions is None else [self.predictions.line()]),
                f"  profiles queued in the outbox: {self.profiles} ({self.hours_resent} hours re-sent)",
                f"  set aside (bad documents): {self.counts['rejected']}",
                f"  duration: {self.seconds:.1f} s"]


@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    run_id: str
    done_through: dt.datetime | None


class Replay:
    """One replay run; `stop` (set by a signal) ends it after the current batch or hour."""

    def __init__(self, client: MongoClient, cols: Collections, config: Config, options: Options,
                 selection: Selection, stop: threading.Event, progress: Progress):
        self.client, self.cols, self.config, self.options = client, cols, config, options
        self.selection, self.stop, self.progress = selection, stop, progress
        self.summary = Summary()

    def run(self) -> Summary:
        started = time.perf_counter()
        try:
            self._phases()
        except Interrupted:
            self.summary.interrupted = True
        finally:
            self.summary.seconds = time.perf_counter() - started
            self.progress.close()
        return self.summary

    def _phases(self) -> None:
        sinks = self.selection.backfill_sinks
        backfill = backfill_filter(self.options)
        if backfill is not None:
            catch_up(self.client, self.cols, self.config, sinks=sinks, query=backfill, on_batch=self._batch_done)
        phase = hour_phase(self.options)
        if phase is not None and self.selection.hours:
            self._hours(phase)
        if phase is not None and self.options.rebuild:
            self.summary.predictions = rebuild_predictions(self.client, self.cols, self.config,
                                                           self.selection.predictions.hours, self.stop)

    def _batch_done(self, result: BatchResult) -> None:
        self.summary.add(result)
        self.progress.advance(result.documents)
        if self.stop.is_set():
            raise Interrupted("stopped after a committed batch")

    def _hours(self, phase: TimeRange) -> None:
        job = open_job(self.client, self.cols, self.options)
        if job.done_through is not None:
            log.info("resuming %s after %s", job.id, job.done_through.isoformat())
        with self.client.start_session() as session:
            self.cols.state.update_one({"_id": job.id}, {"$addToSet": {"sessions": session.session_id}})
            self._each_hour(session, job, phase)
        self.cols.state.update_one({"_id": job.id}, {"$set": {"finished_at": dt.datetime.now(UTC), "sessions": []}})

    def _each_hour(self, session: ClientSession, job: Job, phase: TimeRange) -> None:
        todo = {hour: n for hour, n in self.selection.hours.items()
                if job.done_through is None or hour > job.done_through}
        self.progress.advance(sum(self.selection.hours.values()) - sum(todo.values()))
        size = self.options.batch_size or (REBUILD_GROUP_DOCUMENTS if self.options.rebuild
                                           else self.config.consumer.catchup_batch_size)
        for hours in hour_groups(todo, size):
            self._group(session, job, hours, phase)

    def _group(self, session: ClientSession, job: Job, hours: Sequence[dt.datetime], phase: TimeRange) -> None:
        """One group of hours in one transaction. A group of several that has not committed within
        GROUP_PATIENCE_SECONDS (a running consumer keeps writing to its hours, and each of its commits makes
        ours conflict and start again) is split in two, each half in a transaction of its own: a shorter
        transaction leaves the consumer less time to get in between. A single hour retries as long as
        MongoDB's with_transaction lets it."""
        if self.stop.is_set():
            raise Interrupted("stopped between hours")
        try:
            with pymongo.timeout(GROUP_PATIENCE_SECONDS) if len(hours) > 1 else contextlib.nullcontext():
                done = hours_transaction(session, self.cols, self.config, self.options, job, hours, phase,
                                         self.selection.backfill_sinks)
        except PyMongoError as exc:
            if len(hours) == 1 or not exc.timeout:
                raise
            log.warning("%d hours from %s did not commit in %g s (%s: a consumer writing to them?); "
                        "splitting them in two", len(hours), hours[0].isoformat(), GROUP_PATIENCE_SECONDS,
                        type(exc.__cause__ or exc).__name__)
            half = len(hours) // 2
            self._group(session, job, hours[:half], phase)
            self._group(session, job, hours[half:], phase)
            return
        self.summary.add(done)
        self.summary.hours_rebuilt += done.hours if self.options.rebuild else 0
        self.summary.hours_resent += done.hours if self.options.profiles else 0
        self.progress.advance(done.documents)


def hour_groups(hours: Mapping[dt.datetime, int], documents: int) -> Iterator[list[dt.datetime]]:
    """Consecutive hours, grouped until a group holds about `documents` documents (an hour is never split).

    A commit waits for MongoDB's journal (a few milliseconds): one per hour of sparse data would cost
    more than recounting it.
    """
    group: list[dt.datetime] = []
    size = 0
    for hour, n in hours.items():
        if group and n and size + n > documents:
            yield group
            group, size = [], 0
        group.append(hour)
        size += n
    if group:
        yield group


def open_job(client: MongoClient, cols: Collections, options: Options) -> Job:
    """Resume the unfinished job with these arguments, or start a new one."""
    job_id = options.job_id()
    doc = cols.state.find_one({"_id": job_id})
    if doc is not None and doc.get("finished_at") is None:
        end_sessions(client, doc.get("sessions") or [])
        return Job(job_id, doc["run_id"], doc.get("done_through"))
    run_id = uuid.uuid4().hex[:12]
    cols.state.replace_one({"_id": job_id}, {
        "_id": job_id, "kind": "replay", "run_id": run_id, "rebuild": options.rebuild,
        "from": options.range.start, "to": options.range.end, "profiles": list(options.profiles),
        "started_at": dt.datetime.now(UTC), "done_through": None, "finished_at": None}, upsert=True)
    return Job(job_id, run_id, None)


def end_sessions(client: MongoClient, sessions: list) -> None:
    """Abort the transaction a killed run left open, now rather than when MongoDB times it out (60 s).

    Its locks on an hour's documents would otherwise hold every write to them, the consumer's too.
    """
    if not sessions:
        return
    try:
        client.admin.command("killSessions", sessions)
    except OperationFailure as exc:
        log.warning("cannot end the interrupted run's sessions (%s); MongoDB aborts its open transaction "
                    "within transactionLifetimeLimitSeconds", exc)


def hours_transaction(session: ClientSession, cols: Collections, config: Config, options: Options, job: Job,
                      hours: Sequence[dt.datetime], phase: TimeRange, new_sinks: tuple[str, ...]) -> HourDone:
    """Rebuild and/or re-send some hours, and record them done, in one transaction."""
    holder: dict[str, HourDone] = {}

    def transaction(session: ClientSession) -> None:
        state = cols.state.find_one({"_id": job.id}, session=session) or {}
        done_through = state.get("done_through") if state.get("run_id") == job.run_id else None
        todo = [hour for hour in hours if done_through is None or hour > done_through]  # else another run did it
        now = dt.datetime.now(UTC)
        done = HourDone()
        if todo and options.rebuild:
            done = rebuild_hours(session, cols, config, todo, f"replay-{job.run_id}-{todo[0]:%Y%m%dT%H}",
                                 options.profiles, new_sinks, now, allow_shrink=options.allow_shrink)
        elif todo:
            for hour in todo:
                done.add(resend_hour(session, cols, config, phase.clip(hour), f"replay-{job.run_id}-{hour:%Y%m%dT%H}",
                                     options.profiles, now))
        if todo:
            cols.state.update_one({"_id": job.id}, {"$set": {"done_through": todo[-1], "updated_at": now}},
                                  session=session)
        holder["done"] = done

    session.with_transaction(transaction, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))
    return holder["done"]


def resend_hour(session: ClientSession, cols: Collections, config: Config, part: TimeRange, batch_id: str,
                sinks: tuple[str, ...], now: dt.datetime) -> HourDone:
    """Queue one profile of the valid reviews predicted in `part` (one hour or less) for `sinks`, with
    segments.fields each review's segment as counted (resent_segments)."""
    records, reviewed = [], {}
    documents = 0
    for doc in cols.source.find(ALL_REVIEWS | part.query(), session=session):
        documents += 1
        parsed = parse_document(doc, config.n_classes)
        if isinstance(parsed, Record) and parsed.reviewed:
            records.append(parsed)
            reviewed[parsed.id] = doc
    segments = resent_segments(session, cols, config, reviewed) if config.segments.enabled and reviewed else None
    return HourDone(documents, queue_profiles(session, cols, config, batch_id, records, sinks, now, segments),
                    hours=1)


def resent_segments(session: ClientSession, cols: Collections, config: Config,
                    docs: Mapping[Any, Mapping]) -> dict[Any, Segment]:
    """Each review's segment as its counted entry holds it, so a re-sent profile agrees with the segment rollups
    and with the profiles first sent; a review not counted yet gets the values admitted so far (none admitted
    here: only a transaction that counts admits)."""
    counted = read_counted(cols, list(docs), session)
    admission = read_admission(cols.state, config.segments, session)
    return {doc_id: counted[doc_id].segment if doc_id in counted else admission.admitted_segment_of(doc)
            for doc_id, doc in docs.items()}

