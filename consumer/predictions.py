"""Every prediction counted once, at insert, with no write to the model's documents.

Exactly-once comes from the stream and its checkpoint: each batch's insert events are counted in the
batch's transaction, which also saves the resume token, so a crash redoes exactly the uncounted ones.
When there is no history to follow — a collection new to CLARA, a resume token gone from the oplog —
the affected UTC hours (each a union of whole rollup periods) are recounted from the source instead,
never $inc'ed twice:

1. `begin_recount` pins a snapshot time S (MongoDB's own `atClusterTime`), and in one transaction
   empties the hours to recount, records S as the cut and the recount as under way, and checkpoints
   the stream opened just before (so a crash resumes from there).
2. From then on the consumer counts only insert events after S; those at or before S are in the
   recount (each batch reads the cut inside its transaction). The recount itself (`Recount.run`,
   beside the consumer or in replay) reads the source as it was at S, a day at a time, and adds each
   day's counts in a transaction that first checks the recount is still the current one (a later
   recount that took its hours over supersedes it) and that no other runner did the day already.

A recount begins only while no consumer batch can be in flight: in the consumer, at start or between
batches (a `recount_request` from `python -m replay --rebuild` is taken up there); in replay, only
while it holds the consumer lease itself, which every batch renews inside its transaction.

Standalone servers have neither change streams nor snapshots: each poll recounts recent hours whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from bson import ObjectId, Timestamp
from pymongo import MongoClient, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara import prediction_counts
from clara.db import CONSUMER_STATE_ID, PREDICTIONS_STATE_ID, Collections
from clara.predictions import PredictionDelta, classify
from clara.records import Rejection
from clara.rollups import by_field, hour_of
from clara.segment_pending import SegmentWrites, fold_every
from clara.segment_rollups import hours_filter, write_segment_rollups
from clara.segments import Admission, canonical, read_admission, save_admission
from clara.settings import SegmentSettings

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
STATE_ID = PREDICTIONS_STATE_ID
# Every counter of a prediction rollup (clara/predictions.py): a recount empties them all before adding again.
COUNTERS = ("predictions", "classes", "confidence", "no_confidence", "bad", "calibration", "calibration_micros")
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
# A lost stream whose inserts touched more hours than this is recounted whole.
MAX_RECOUNT_HOURS = 5000
# Dates Python can hold (the rest are set aside by the record parser and belong to no hour).
EARLIEST = dt.datetime(1, 1, 2, tzinfo=UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Inserted:
    """A prediction as its insert event carried it, and the cluster time of the insert."""

    doc: Mapping[str, Any]
    at: Timestamp


@dataclasses.dataclass(frozen=True)
class InsertCount:
    """What a batch's insert events add to the prediction rollups: counted in the transaction, or ahead of it
    (consumer.prefetch) as if no recount cut held any and under the values admitted as read then."""

    items: Sequence[Inserted]
    counted: Counter                      # by predicted class, "bad" for documents that break the contract
    rejections: list[Rejection]           # unreviewed documents that break it, to set aside
    admitted: Mapping[str, frozenset] | None   # Admission.stored it was counted under (None: no segments)
    # The $incs per period and (with segments) per period and value: made with the count, so a count made
    # ahead leaves the transaction only its writes.
    updates: list
    segment_updates: list

    def holds(self, inserted: Sequence[Inserted], admission: Admission | None, cut: Timestamp | None) -> bool:
        """True when it is what counting `inserted` in a transaction that reads `admission` and `cut` gives:
        the same events (a split batch holds fewer), the very values admitted, and every insert after the cut
        (the cut stays after its recount: events at or before it are the recount's, whenever they arrive)."""
        same_values = self.admitted is None if admission is None else self.admitted == admission.stored
        return same_values and (cut is None or all(item.at > cut for item in inserted)) \
            and len(self.items) == len(inserted) and all(a is b for a, b in zip(self.items, inserted))


def count_inserts(inserted: Sequence[Inserted], n_classes: int, period: dt.timedelta,
                  admission: Admission | None = None, cut: Timestamp | None = None,
                  cut_hours: frozenset | None = None) -> InsertCount:
    """The prediction increments of `inserted` (periods of length `period`), except inserts a recount holds
    (at or before its `cut`, in one of its UTC hours); with an `admission`, by segment too, admitting new
    values into it."""
    delta = PredictionDelta()
    counted: Counter = Counter()
    rejections = []
    for item in inserted:
        key, rejection = classify(item.doc, n_classes, period)
        if cut is not None and item.at <= cut and key is not None and (cut_hours is None
                                                                       or hour_of(key[0]) in cut_hours):
            continue   # already in the recount read at the cut
        if key is not None:
            delta.add(*key, admission.segment_of(item.doc) if admission is not None else ())
            counted["bad" if rejection is not None else str(item.doc["output_prediction"])] += 1
        if rejection is not None and item.doc.get("output_validated") is None:
            rejections.append(rejection)
    return InsertCount(tuple(inserted), counted, rejections, admission.stored if admission is not None else None,
                       delta.updates(), delta.segment_updates() if admission is not None else [])


def apply_inserts(session: ClientSession, cols: Collections, n_classes: int, period: dt.timedelta,
                  inserted: Sequence[Inserted], now: dt.datetime, admission: Admission | None = None,
                  segment_writes: SegmentWrites | None = None, ahead: InsertCount | None = None) -> Counter:
    """$inc the prediction rollups (periods of length `period`) in the caller's transaction, except for
    inserts a recount holds (at or before its cut, in one of its UTC hours); returns what was counted,
    by predicted class ("bad" for documents that break the contract). With an `admission` (segments.fields),
    the segment rollups too (or their increments into `segment_writes`, for the caller to apply or put off),
    admitting new values in the same transaction. `ahead` (counted ahead, admitting nothing) is used when it
    holds these events, all after the cut, under this transaction's admitted values: the same count."""
    cut, cut_hours = cut_of(cols.state.find_one({"_id": STATE_ID}, session=session) or {})
    if ahead is not None and ahead.holds(inserted, admission, cut):
        count = ahead
    else:
        count = count_inserts(inserted, n_classes, period, admission, cut, cut_hours)
    writes = [UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
              for hour, inc in count.updates]
    if writes:
        cols.predictions.bulk_write(writes, ordered=False, session=session)
    if admission is not None:
        if segment_writes is not None:
            segment_writes.add("predictions", count.segment_updates)
        else:
            write_segment_rollups(session, cols.segment_predictions, count.segment_updates, now)
        save_admission(cols.state, admission, session)
    if count.rejections:   # reviewed ones are set aside by the review path, with the document
        cols.rejects.bulk_write([reject_write(rejection, now) for rejection in count.rejections], ordered=False,
                                session=session)
    return count.counted


def admitted(delta: PredictionDelta, admission: Admission) -> list[tuple[tuple[dt.datetime, str, str], dict]]:
    """A delta's segment increments keyed by canonical value, merged under the values `admission` gives them
    (a value beyond the cap joins `other`)."""
    merged: dict[tuple[dt.datetime, str, str], Counter] = {}
    for (hour, field, value), inc in sorted(by_field(delta.by_segment).items()):
        merged.setdefault((hour, field, admission.value(field, value)), Counter()).update(inc)
    return [(key, dict(inc)) for key, inc in merged.items()]


def reject_write(rejection: Rejection, now: dt.datetime) -> UpdateOne:
    """Set an unreviewed prediction that breaks the contract aside, with the reason."""
    return UpdateOne({"_id": rejection.id}, {"$set": {"field": rejection.field, "reason": str(rejection), "at": now}},
                     upsert=True)


# -- snapshots at a known cluster time -------------------------------------------------------------

def snapshot_time(cols: Collections) -> Timestamp:
    """The cluster time MongoDB picks for a snapshot read now (its `atClusterTime`)."""
    reply = cols.db.command("find", cols.source.name, filter={}, projection={"_id": 1}, limit=1, singleBatch=True,
                            readConcern={"level": "snapshot"})
    return reply["cursor"]["atClusterTime"]


def groups_at(cols: Collections, selector: Mapping, at: Timestamp, n_classes: int, period: dt.timedelta,
              segment_fields: Sequence[str] = ()) -> Iterator[Mapping]:
    """The documents matching `selector` as they were at `at`, counted by the server where it can: the groups
    of clara.prediction_counts.pipeline (countable ones grouped, every other document whole)."""
    return _cursor_at(cols, {"aggregate": cols.source.name,
                             "pipeline": prediction_counts.pipeline(selector, n_classes, period, segment_fields),
                             "cursor": {"batchSize": 5000}, "allowDiskUse": True}, at, 5000)


def counted_groups(groups: Iterable[Mapping], n_classes: int, period: dt.timedelta,
                   segment_fields: Sequence[str] = ()) -> Iterator[tuple[tuple | None, Rejection | None, Mapping, int]]:
    """Each group of clara.prediction_counts.pipeline as (hour and $inc, or None; the Rejection, if any; the
    values its segment fields and review field hold; documents): a group of countable documents as the server
    counted it, a document it left to the parser classified here."""
    for group in groups:
        doc = group.get("document")
        if doc is None:
            hour, inc, raw = prediction_counts.increments(group, segment_fields)
            yield (hour, inc), None, raw, group["n"]
        else:
            key, rejection = classify(doc, n_classes, period)
            yield key, rejection, doc, 1


def _cursor_at(cols: Collections, command: Mapping, at: Timestamp, batch_size: int) -> Iterator[Mapping]:
    name, options = cols.source.name, cols.source.codec_options
    with cols.db.client.start_session() as session:   # a cursor's getMore must come from the session that opened it
        reply = cols.db.command(dict(command) | {"readConcern": {"level": "snapshot", "atClusterTime": at}},
                                codec_options=options, session=session)
        cursor = reply["cursor"]
        yield from cursor["firstBatch"]
        cursor_id = cursor["id"]
        while cursor_id:
            reply = cols.db.command("getMore", cursor_id, collection=name, batchSize=batch_size,
                                    codec_options=options, session=session)
            yield from reply["cursor"]["nextBatch"]
            cursor_id = reply["cursor"]["id"]


# -- recounts ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RecountPlan:
    """A recount under way: its id, the snapshot time it reads at, the UTC hours it covers (None: every
    hour); an hour covers every rollup period in it."""

    id: str
    at: Timestamp
    hours: frozenset[dt.datetime] | None

    def hour_filter(self) -> dict:
        if self.hours is None:
            return {}
        return {"$or": [{"_id": {"$gte": hour, "$lt": hour + HOUR}} for hour in sorted(self.hours)]}


def read_state(cols: Collections) -> dict[str, Any]:
    return cols.state.find_one({"_id": STATE_ID}) or {}


def _hours_of(recount: Mapping[str, Any]) -> frozenset[dt.datetime] | None:
    hours = recount.get("hours")
    return None if hours is None else frozenset(hour_of(hour) for hour in hours)


def cut_of(state: Mapping[str, Any]) -> tuple[Timestamp | None, frozenset | None]:
    """The cut the consumer applies to insert events: (cluster time, hours), from the state document."""
    return state.get("cut"), _hours_of(state.get("recount") or {})


def unfinished_recount(state: Mapping[str, Any]) -> RecountPlan | None:
    recount = state.get("recount")
    if not recount or recount.get("done_at"):
        return None
    return RecountPlan(recount["id"], recount["at"], _hours_of(recount))


def hours_inserted_since(cols: Collections, since: dt.datetime | None) -> frozenset[dt.datetime] | None:
    """The prediction hours of the documents inserted since `since` (read from their ObjectIds): the hours
    a lost stream may have missed. None (every hour) when that cannot be told."""
    newest = cols.source.find_one({}, {"_id": 1}, sort=[("_id", -1)])
    if since is None or newest is None or not isinstance(newest["_id"], ObjectId):
        return None
    pipeline = [{"$match": {"_id": {"$gte": ObjectId.from_datetime(since)}, "timestamp": {"$type": "date"}}},
                {"$group": {"_id": {"$dateTrunc": {"date": "$timestamp", "unit": "hour"}}}},
                {"$limit": MAX_RECOUNT_HOURS + 1}]
    hours = frozenset(hour_of(doc["_id"]) for doc in cols.source.aggregate(pipeline)
                      if isinstance(doc["_id"], dt.datetime))
    return None if len(hours) > MAX_RECOUNT_HOURS else hours


def request_recount(cols: Collections, hours: frozenset[dt.datetime] | None, reason: str) -> str:
    """Ask the running consumer to begin a recount of `hours` between two batches; returns the request's id
    (the recount that answers it carries it as `request_id`). A later request replaces an unanswered one."""
    request_id = uuid.uuid4().hex[:12]
    cols.state.update_one({"_id": STATE_ID}, {"$set": {"recount_request": {
        "id": request_id, "hours": None if hours is None else sorted(hours), "reason": reason,
        "at": dt.datetime.now(UTC)}}}, upsert=True)
    return request_id


def recount_request(state: Mapping[str, Any]) -> tuple[str, frozenset[dt.datetime] | None, str] | None:
    """(id, hours, reason) of an unanswered recount request, or None."""
    request = state.get("recount_request")
    return None if not request else (request["id"], _hours_of(request), request.get("reason", "requested"))


def begin_recount(client: MongoClient, cols: Collections, hours: frozenset[dt.datetime] | None,
                  checkpoint: Mapping | None, opened_at: Timestamp | None, reason: str,
                  request_id: str | None = None) -> RecountPlan:
    """Pin the cut, empty the hours to recount and checkpoint the stream, in one transaction.

    Only while no consumer batch can commit (see the module's docstring). An unfinished earlier recount
    is folded in (its hours are recounted too). A stream that has no resume token yet is checkpointed by
    the time it started at (`resume_at`). `request_id` names the recount request this answers.
    """
    earlier = unfinished_recount(read_state(cols))
    if earlier is not None:
        hours = None if hours is None or earlier.hours is None else hours | earlier.hours
    plan = RecountPlan(uuid.uuid4().hex[:12], snapshot_time(cols), hours)
    now = dt.datetime.now(UTC)

    def transaction(session: ClientSession) -> None:
        cols.predictions.update_many(plan.hour_filter(), {"$unset": dict.fromkeys(COUNTERS, ""),
                                                          "$set": {"updated_at": now}}, session=session)
        # Pending segment increments are of inserts before the cut, which the recount counts again: applied
        # now, they are emptied with the rest.
        fold_every(session, cols, now)
        cols.segment_predictions.delete_many({} if hours is None else hours_filter(hours), session=session)
        cols.state.update_one({"_id": STATE_ID}, {"$set": {
            "cut": plan.at, "recount": {"id": plan.id, "at": plan.at, "hours": None if hours is None else sorted(hours),
                                        "reason": reason, "started_at": now, "done_through": None,
                                        "request_id": request_id}},
            "$unset": {"recount_request": ""}}, upsert=True, session=session)
        position = {"resume_token": checkpoint} if checkpoint is not None else {"resume_at": opened_at}
        if checkpoint is not None or opened_at is not None:
            cols.state.update_one({"_id": CONSUMER_STATE_ID}, {"$set": position | {"checkpoint_at": now}},
                                  upsert=True, session=session)

    with client.start_session() as session:
        session.with_transaction(transaction, read_concern=ReadConcern("snapshot"),
                                 write_concern=WriteConcern("majority"))
    log.info("recounting predictions of %s (%s) from the source as of cluster time %s",
             "every hour" if hours is None else f"{len(hours)} hours", reason, plan.at)
    return plan


class Recount:
    """Reads the source at the plan's snapshot a day at a time and adds each hour's counts once (and, with
    `segments` configured, each hour's segment counts: the values are admitted in the day's transaction)."""

    def __init__(self, cols: Collections, n_classes: int, period: dt.timedelta, plan: RecountPlan,
                 stop: threading.Event, progress_seconds: float = 10.0, segments: SegmentSettings | None = None):
        self.cols, self.n_classes, self.period, self.plan, self.stop = cols, n_classes, period, plan, stop
        self.progress_seconds = progress_seconds
        self.segments = segments if segments is not None and segments.enabled else None
        self.documents = 0

    def run(self) -> bool:
        """True when every day is counted; False when stopped or superseded (a later start resumes)."""
        started = last_report = time.monotonic()
        state = read_state(self.cols).get("recount") or {}
        done_through = state.get("done_through") if state.get("id") == self.plan.id else None
        for day_start, day_end in self._days(done_through):
            if self.stop.is_set():
                return False
            delta = PredictionDelta()
            rejects = []
            fields = self.segments.fields if self.segments is not None else ()
            groups = groups_at(self.cols, self._between(day_start, day_end), self.plan.at, self.n_classes, self.period,
                               fields)
            for key, rejection, values, n in counted_groups(groups, self.n_classes, self.period, fields):
                if key is not None:   # segments by canonical value, admitted (or capped) in the day's transaction
                    delta.add(*key, tuple(sorted((field, canonical(values.get(field))) for field in fields)))
                if rejection is not None and rejection.id is not None and values.get("output_validated") is None:
                    rejects.append(reject_write(rejection, dt.datetime.now(UTC)))
                self.documents += n
            if not self._commit_day(delta, rejects, day_end):
                log.info("recount %s superseded by a later recount of its hours; it stops here", self.plan.id)
                return False
            if time.monotonic() - last_report >= self.progress_seconds:
                log.info("recounting predictions: %d documents, through %s UTC", self.documents,
                         f"{day_end:%Y-%m-%d}")
                last_report = time.monotonic()
        self.cols.state.update_one({"_id": STATE_ID, "recount.id": self.plan.id},
                                   {"$set": {"recount.done_at": dt.datetime.now(UTC), "recount.documents": self.documents}})
        log.info("recounted %d predictions in %.1f s", self.documents, time.monotonic() - started)
        return True

    def _commit_day(self, delta: PredictionDelta, rejects: list[UpdateOne], day_end: dt.datetime) -> bool:
        """Add one day's counts and record the day done, in one transaction, unless another runner of the
        same recount did the day already; False when a later recount has taken over."""
        outcome = {}

        def transaction(session: ClientSession) -> None:
            recount = (self.cols.state.find_one({"_id": STATE_ID}, session=session) or {}).get("recount") or {}
            outcome["current"] = recount.get("id") == self.plan.id
            done = recount.get("done_through")
            if not outcome["current"] or (done is not None and day_end <= done):
                return
            now = dt.datetime.now(UTC)
            writes = [UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"recount_id": self.plan.id, "updated_at": now}},
                                upsert=True) for hour, inc in delta.updates()]
            if writes:
                self.cols.predictions.bulk_write(writes, ordered=False, session=session)
            if self.segments is not None:
                admission = read_admission(self.cols.state, self.segments, session)
                write_segment_rollups(session, self.cols.segment_predictions, admitted(delta, admission), now)
                save_admission(self.cols.state, admission, session)
            if rejects:
                self.cols.rejects.bulk_write(rejects, ordered=False, session=session)
            self.cols.state.update_one({"_id": STATE_ID}, {"$set": {"recount.done_through": day_end}}, session=session)

        with self.cols.db.client.start_session() as session:
            session.with_transaction(transaction, read_concern=ReadConcern("snapshot"),
                                     write_concern=WriteConcern("majority"))
        return outcome["current"]

    def _between(self, start: dt.datetime, end: dt.datetime) -> dict:
        if self.plan.hours is None:
            return {"timestamp": {"$type": "date", "$gte": start, "$lt": end}}
        return {"$or": [{"timestamp": {"$type": "date", "$gte": hour, "$lt": hour + HOUR}}
                        for hour in sorted(self.plan.hours) if start <= hour < end]}

    def _days(self, done_through: dt.datetime | None) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """UTC days of the plan that hold predictions at the snapshot, jumping over empty ones."""
        if self.plan.hours is not None:
            days = sorted({hour.replace(hour=0) for hour in self.plan.hours})
            yield from ((day, day + DAY) for day in days if done_through is None or day >= done_through)
            return
        cursor = max(filter(None, (done_through, EARLIEST)))
        while (found := self._next_timestamp(cursor)) is not None:
            day = max(cursor, found.replace(hour=0, minute=0, second=0, microsecond=0))
            yield day, day + DAY
            cursor = day + DAY

    def _next_timestamp(self, after: dt.datetime) -> dt.datetime | None:
        if after >= LATEST:
            return None
        reply = self.cols.db.command("find", self.cols.source.name,
                                     filter={"timestamp": {"$type": "date", "$gte": after, "$lt": LATEST}},
                                     projection={"timestamp": 1}, sort={"timestamp": 1}, limit=1, singleBatch=True,
                                     readConcern={"level": "snapshot", "atClusterTime": self.plan.at},
                                     codec_options=self.cols.source.codec_options)
        batch = reply["cursor"]["firstBatch"]
        return batch[0]["timestamp"] if batch else None

def recount_replacing(cols: Collections, n_classes: int, period: dt.timedelta,
                      hours: frozenset[dt.datetime] | None, segments: SegmentSettings | None = None) -> int:
    """Standalone servers: replace the prediction rollups of UTC `hours` (None: every hour) by a count of the
    source; with `segments` configured, their segment prediction rollups too."""
    if hours is not None and not hours:
        return 0
    selector = ({"timestamp": {"$type": "date"}} if hours is None else
                {"$or": [{"timestamp": {"$type": "date", "$gte": hour, "$lt": hour + HOUR}} for hour in sorted(hours)]})
    admission = read_admission(cols.state, segments) if segments is not None and segments.enabled else None
    delta = PredictionDelta()
    documents = 0
    fields = admission.fields if admission is not None else ()
    groups = cols.source.aggregate(prediction_counts.pipeline(selector, n_classes, period, fields), allowDiskUse=True)
    for key, _, values, n in counted_groups(groups, n_classes, period, fields):
        if key is not None:
            delta.add(*key, admission.segment_of(values) if admission is not None else ())
        documents += n
    now = dt.datetime.now(UTC)
    if admission is not None:
        # Admitted first: a crash before the rollups are written leaves a value admitted early, never a rollup
        # of a value the admitted set lacks. A crash in between leaves the hours short until a recount of them
        # (every hour at the next start).
        save_admission(cols.state, admission)
        cols.segment_predictions.delete_many({} if hours is None else hours_filter(hours))
        write_segment_rollups(None, cols.segment_predictions, delta.segment_updates(), now)
    fresh = delta.documents()
    for hour, doc in fresh.items():
        cols.predictions.replace_one({"_id": hour}, doc | {"updated_at": now}, upsert=True)
    within = {} if hours is None else {"$or": [{"_id": {"$gte": hour, "$lt": hour + HOUR}} for hour in sorted(hours)]}
    stale = {"_id": {"$nin": list(fresh)}} | within
    cols.predictions.update_many(stale, {"$unset": dict.fromkeys(COUNTERS, ""), "$set": {"updated_at": now}})
    return documents


def recount_thread(recount: Recount) -> threading.Thread:
    """The recount in a thread of its own, beside the follower; a failure is logged, and resumed at the next start."""
    def target() -> None:
        try:
            recount.run()
        except Exception:  # noqa: BLE001 - logged; the next start resumes the recount
            log.exception("recounting predictions failed; it resumes at the next start")

    return threading.Thread(target=target, name="prediction-recount", daemon=True)
