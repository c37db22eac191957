"""One batch, committed exactly once: claim documents, $inc rollups, queue profiles, checkpoint.

`plan_batch` is pure: from the documents as they are now, it decides what every effect is.
`commit_batch` re-reads the documents and applies the plan inside one MongoDB transaction
(majority write concern), so a crash or a retry either applies all of it or none. What each review
added is kept in CLARA's counted collection (keyed by the source _id, written in the same
transaction), so a replay, a writer's replace or a lost marker counts nothing twice.
Nothing here talks HTTP: sinks drain the outbox afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo import DeleteOne, InsertOne, MongoClient, ReplaceOne, UpdateMany, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config
from clara.db import CONSUMER_STATE_ID, Collections
from clara.errors import ClaraError
from clara.records import Record, Rejection, parse_document
from clara.rollups import Counted, RollupDelta
from clara.segment_pending import Folding, SegmentWrites, commit_segment_writes
from clara.segment_rollups import write_segment_rollups
from clara.segments import Admission, read_admission, save_admission
from consumer.lease import Lease
from consumer.predictions import Inserted, apply_inserts
from consumer.outbox_queue import queue_profiles

if TYPE_CHECKING:
    from consumer.prefetch import Prefetched

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
# Longer than MongoDB's 60 s transaction lifetime, so a batch waiting on locks that a killed process's
# transaction still holds gets through once MongoDB aborts it.
COMMIT_TIMEOUT_SECONDS = 90.0


@dataclasses.dataclass
class BatchPlan:
    """Every write one batch makes, decided from the documents and what was counted for them."""

    batch_id: str
    claims: list[tuple[Any, Counted]] = dataclasses.field(default_factory=list)   # newly counted or corrected
    unclaims: list[Any] = dataclasses.field(default_factory=list)                 # counted, now pending or bad
    marks: list[Any] = dataclasses.field(default_factory=list)                    # source needs `logged: true`
    rejects: list[tuple[Rejection, Mapping]] = dataclasses.field(default_factory=list)
    cleared_rejects: list[Any] = dataclasses.field(default_factory=list)
    delta: RollupDelta = dataclasses.field(default_factory=RollupDelta)
    new_records: list[Record] = dataclasses.field(default_factory=list)
    counts: Counter = dataclasses.field(default_factory=Counter)
    fresh: set = dataclasses.field(default_factory=set)   # claims with no counted entry yet: inserted, not replaced
    admission: Admission | None = None   # segments.fields configured: the segment values admitted so far
    segments: dict = dataclasses.field(default_factory=dict)   # new_records' segments by id (with an admission)


def plan_batch(docs: Sequence[Mapping], n_classes: int, period: dt.timedelta, batch_id: str, *,
               counted: Mapping[Any, Counted] | None = None, recount: bool = False,
               admission: Admission | None = None,
               parsed: Mapping[Any, Record | Rejection] | None = None) -> BatchPlan:
    """Decide claims, corrections, rejections and rollup increments for the documents as read.

    Reviews are filed under rollup periods of length `period` (config.model.rollup_period).
    `counted` is what CLARA's counted collection holds for these documents (by _id): the only record of
    what they added to the rollups, which no writer can overwrite. recount plans every document as if it
    had never been counted (replay --rebuild counts an hour afresh). With an `admission` (segments.fields
    configured) each review is counted under its segment too, admitting new values while the cap allows.
    `parsed` holds what parse_document made of some of the documents already (consumer.prefetch), by _id.
    """
    counted = {} if counted is None or recount else counted
    plan = BatchPlan(batch_id, admission=admission)
    parsed_ahead = parsed or {}
    for doc in docs:
        parsed = parsed_ahead.get(doc.get("_id")) or parse_document(doc, n_classes)
        previous = counted.get(doc.get("_id"))
        if isinstance(parsed, Rejection):
            plan.rejects.append((parsed, doc))
            plan.counts["rejected"] += 1
            if previous is not None:
                plan.delta.add(previous, -1)
                plan.unclaims.append(doc["_id"])
            continue
        plan.cleared_rejects.append(parsed.id)
        if not parsed.reviewed:
            plan.counts["pending"] += 1
            if previous is not None:
                plan.delta.add(previous, -1)
                plan.unclaims.append(parsed.id)
                plan.counts["unreviewed"] += 1
            continue
        if parsed.logged and previous is None and not recount:
            plan.counts["logged_elsewhere"] += 1  # marked by an older logger: replay --rebuild counts it
            continue
        now_counted = Counted.of(parsed, period, admission.segment_of(doc) if admission is not None else ())
        if previous is None:
            plan.delta.add(now_counted)
            plan.claims.append((parsed.id, now_counted))
            plan.new_records.append(parsed)
            if admission is not None:
                plan.segments[parsed.id] = now_counted.segment
            plan.counts["claimed"] += 1
            if not recount:   # a recount ignores the entries it was given: one may exist
                plan.fresh.add(parsed.id)
        elif previous != now_counted:
            plan.delta.add(previous, -1)
            plan.delta.add(now_counted)
            plan.claims.append((parsed.id, now_counted))
            plan.counts["corrected"] += 1
        else:
            plan.counts["already_logged"] += 1
            if not parsed.logged or "logged_as" in doc:
                plan.marks.append(parsed.id)   # a writer's replace dropped the marker: put it back
    return plan


def admission_of(cols: Collections, config: Config, session: ClientSession | None) -> Admission | None:
    """The segment values admitted so far, read in the caller's transaction; None without segments.fields."""
    return read_admission(cols.state, config.segments, session) if config.segments.enabled else None


def new_batch_id() -> str:
    return uuid.uuid4().hex[:16]


def read_counted(cols: Collections, ids: Sequence[Any], session: ClientSession | None = None) -> dict[Any, Counted]:
    """What the counted collection holds for these source documents."""
    return {doc["_id"]: Counted.from_doc(doc) for doc in cols.counted.find({"_id": {"$in": list(ids)}}, session=session)}


@dataclasses.dataclass(frozen=True)
class BatchResult:
    batch_id: str
    documents: int
    counts: Counter
    hours: int
    profiles: int
    duration_seconds: float
    # Newly counted, by predicted class: "predictions.<class>" (and "predictions.bad"), "reviews.<class>".
    by_class: Counter = dataclasses.field(default_factory=Counter)


class BatchTooSlow(ClaraError):
    """A batch's transaction ran longer than consumer.transaction_max_seconds: it is split, not retried whole."""


def commit_batch(client: MongoClient, cols: Collections, config: Config, ids: Sequence[Any], *,
                 sinks: Sequence[str], checkpoint: Mapping | None = None,
                 lag_seconds: float | None = None, lease: Lease | None = None,
                 inserted: Sequence[Inserted] = (), prefetched: Prefetched | None = None,
                 folding: Folding | None = None, full: bool = False,
                 more_waiting: Callable[[], bool] | None = None) -> BatchResult:
    """Apply one batch of source documents (by _id) in a single transaction, exactly once.

    `inserted` are the batch's insert events: their predictions are counted here (those after the cut of
    a recount, read in the transaction), with the checkpoint that moves past them. With a lease, the
    transaction also renews it, and commits nothing when another consumer holds it. `prefetched` holds
    documents read ahead and the inserts counted ahead (consumer.prefetch); the others are read, and the
    inserts counted, in the transaction. With segments, the
    batch's segment increments are put off when `folding` says so for a `full` batch, and otherwise applied
    with every pending one (clara.segment_pending).
    """
    started = time.perf_counter()
    unique_ids = list(dict.fromkeys(ids))
    holder: dict[str, Any] = {}
    limit = config.consumer.transaction_max_seconds

    def transaction(session: ClientSession) -> None:
        attempt_started = time.monotonic()
        if lease is not None:
            lease.renew(session)
        counted = read_counted(cols, unique_ids, session) if unique_ids else {}
        admission = admission_of(cols, config, session)
        # The plan made ahead is what plan_batch makes of these documents with nothing counted and, with
        # segments, the values admitted as read then; it admitted none, so this transaction's admission
        # (fresh on every attempt) takes its place.
        planned = prefetched.uncounted_plan if prefetched is not None else None
        if planned is not None and not counted and prefetched.asked == frozenset(unique_ids) \
                and (admission is None) == (planned.admission is None) \
                and (admission is None or admission.stored == planned.admission.stored):
            plan = planned if admission is None else dataclasses.replace(planned, admission=admission)
        else:
            ahead = prefetched.docs if prefetched is not None else {}
            docs = [ahead[doc_id] for doc_id in unique_ids if doc_id in ahead]
            unread = [doc_id for doc_id in unique_ids if prefetched is None or doc_id not in prefetched.asked]
            if unread:
                docs += cols.source.find({"_id": {"$in": unread}}, session=session)
            plan = plan_batch(docs, config.n_classes, config.model.rollup_period, new_batch_id(), counted=counted,
                              admission=admission, parsed=prefetched.parsed if prefetched is not None else None)
        holder["plan"] = plan
        segment_writes = SegmentWrites() if plan.admission is not None else None
        holder["profiles"] = apply_plan(session, cols, config, plan, sinks, segment_writes)
        holder["predicted"] = Counter()
        if inserted:
            holder["predicted"] = apply_inserts(session, cols, config.n_classes, config.model.rollup_period,
                                                inserted, dt.datetime.now(UTC), plan.admission, segment_writes,
                                                prefetched.inserts if prefetched is not None else None)
            plan.counts["predictions"] = sum(holder["predicted"].values())
        if segment_writes is not None:
            holder["defer"] = defer = folding is not None and folding.defer(
                full and (more_waiting is None or more_waiting()))
            holder["pending"] = commit_segment_writes(session, cols, segment_writes, dt.datetime.now(UTC), defer,
                                                      folding is None or folding.pending)
        if checkpoint is not None or lag_seconds is not None:
            _record_state(session, cols, plan, checkpoint, lag_seconds, len(unique_ids))
        if len(unique_ids) + len(inserted) > 1 and time.monotonic() - attempt_started > limit:
            raise BatchTooSlow(f"{len(unique_ids)} documents took {time.monotonic() - attempt_started:.1f} s "
                               f"in one transaction (consumer.transaction_max_seconds = {limit:g})")

    # Bounded: while MongoDB is away, give the batch up after COMMIT_TIMEOUT_SECONDS (it is redone from the
    # stream's checkpoint) instead of retrying for pymongo's 120 s, so a stop request is honoured promptly.
    with pymongo.timeout(COMMIT_TIMEOUT_SECONDS), client.start_session() as session:
        session.with_transaction(transaction, read_concern=ReadConcern("snapshot"),
                                 write_concern=WriteConcern("majority"))
    plan: BatchPlan = holder["plan"]
    if folding is not None and plan.admission is not None:
        folding.committed(holder["defer"], holder["pending"])
    documents = len(set(unique_ids) | {item.doc.get("_id") for item in inserted})
    by_class = Counter({f"predictions.{key}": n for key, n in holder["predicted"].items()})
    by_class.update(f"reviews.{record.predicted}" for record in plan.new_records)
    return BatchResult(plan.batch_id, documents, Counter(plan.counts), len(plan.delta.hours()),
                       holder["profiles"], time.perf_counter() - started, by_class)


def source_marks(plan: BatchPlan, now: dt.datetime) -> list[tuple[dict, dict]]:
    """(filter, update) of the `logged` markers on the model's documents (informational; consumer.mark_source)."""
    marked = [doc_id for doc_id, _ in plan.claims] + plan.marks
    writes = [({"_id": doc_id}, {"$set": {"logged": True, "logged_at": now}, "$unset": {"logged_as": ""}})
              for doc_id in marked]
    writes += [({"_id": doc_id}, {"$set": {"logged": False}, "$unset": {"logged_as": ""}}) for doc_id in plan.unclaims]
    return writes


def mark_writes(plan: BatchPlan, now: dt.datetime) -> list[UpdateMany]:
    """source_marks as one update per kind of mark (4x fewer server-side statements than one per document)."""
    marked = [doc_id for doc_id, _ in plan.claims] + plan.marks
    writes = [UpdateMany({"_id": {"$in": marked}}, {"$set": {"logged": True, "logged_at": now},
                                                      "$unset": {"logged_as": ""}})] if marked else []
    if plan.unclaims:
        writes.append(UpdateMany({"_id": {"$in": plan.unclaims}}, {"$set": {"logged": False},
                                                                    "$unset": {"logged_as": ""}}))
    return writes


def counted_writes(plan: BatchPlan, now: dt.datetime) -> list[InsertOne | ReplaceOne | DeleteOne]:
    """What the counted collection must hold after the batch: one document per counted review. A review
    with no entry yet (read in the same transaction) gets an insert, about 4x cheaper than an upsert."""
    writes: list[InsertOne | ReplaceOne | DeleteOne] = [
        InsertOne(counted.to_doc() | {"_id": doc_id, "at": now}) if doc_id in plan.fresh else
        ReplaceOne({"_id": doc_id}, counted.to_doc() | {"_id": doc_id, "at": now}, upsert=True)
        for doc_id, counted in plan.claims]
    writes += [DeleteOne({"_id": doc_id}) for doc_id in plan.unclaims]
    return writes


def apply_plan(session: ClientSession, cols: Collections, config: Config, plan: BatchPlan,
               sinks: Sequence[str], segment_writes: SegmentWrites | None = None) -> int:
    """Make every write of a plan in the caller's transaction; returns the outbox entries queued. The segment
    increments go to `segment_writes` when given (the caller applies or puts them off), else straight in."""
    now = dt.datetime.now(UTC)
    counted = counted_writes(plan, now)
    if counted:
        cols.counted.bulk_write(counted, ordered=False, session=session)
    if config.consumer.mark_source and (plan.claims or plan.marks or plan.unclaims):
        cols.source.bulk_write(mark_writes(plan, now), ordered=False, session=session)
    rollup_writes = [UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
                     for hour, inc in plan.delta.updates()]
    if rollup_writes:
        cols.rollups.bulk_write(rollup_writes, ordered=False, session=session)
    if plan.admission is not None:
        if segment_writes is not None:
            segment_writes.add("rollups", plan.delta.segment_updates())
        else:
            write_segment_rollups(session, cols.segment_rollups, plan.delta.segment_updates(), now)
        save_admission(cols.state, plan.admission, session)
    reject_writes = [UpdateOne({"_id": rejection.id}, {"$set": {
        "field": rejection.field, "reason": str(rejection), "at": now, "document": bounded(doc)}}, upsert=True)
        for rejection, doc in plan.rejects if rejection.id is not None]
    if reject_writes:
        cols.rejects.bulk_write(reject_writes, ordered=False, session=session)
    if plan.cleared_rejects:
        cols.rejects.delete_many({"_id": {"$in": plan.cleared_rejects}}, session=session)
    return queue_profiles(session, cols, config, plan.batch_id, plan.new_records, sinks, now,
                          plan.segments if plan.admission is not None else None)


def _record_state(session: ClientSession, cols: Collections, plan: BatchPlan,
                  checkpoint: Mapping | None, lag_seconds: float | None, size: int) -> None:
    now = dt.datetime.now(UTC)
    update: dict[str, Any] = {"last_batch_at": now, "last_batch": {
        "id": plan.batch_id, "size": size, "claimed": plan.counts["claimed"],
        "corrected": plan.counts["corrected"], "rejected": plan.counts["rejected"]}}
    if lag_seconds is not None:
        update["lag_seconds"] = lag_seconds
    if checkpoint is not None:
        update |= {"resume_token": checkpoint, "checkpoint_at": now}
    cols.state.update_one({"_id": CONSUMER_STATE_ID}, {"$set": update}, upsert=True, session=session)


def bounded(doc: Mapping, limit: int = 40) -> dict:
    """A copy of a bad document small enough to keep beside its reason."""
    kept = {}
    for key in list(doc)[:limit]:
        value = doc[key]
        kept[str(key).replace(".", "_").lstrip("$") or "_"] = value if len(repr(value)) <= 2000 else repr(value)[:2000]
    return kept
