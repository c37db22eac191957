"""--rebuild of a group of whole UTC hours, inside the caller's transaction: one read of the documents, one
of what was counted for them, one write of each kind for the whole group.

Each hour's rollups (one per rollup period in it: clara/periods.py) are replaced by a recount of the
documents predicted in it, and the counted collection
is made to agree, writing an entry (and, with consumer.mark_source, the document's `logged` flag) only
where it differs from the recount. Whatever changes in an entry changes in the rollups as the consumer
would change it; only increments to the group's own hours are left out, since the recount replaces them:

- a document counted in the group but now predicted outside it gets the consumer's own correction
  (counted in its new hour, taken back from the old one);
- a document predicted in the group but counted outside it is taken back there (one counted in
  another hour of the group is simply recounted where it is now);
- an entry whose document is gone keeps its count (history), or is dropped with allow_shrink.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.client_session import ClientSession

from clara.config import Config
from clara.db import Collections
from clara.periods import periods_between
from clara.records import Record
from clara.rollups import Counted, RollupDelta
from clara.segment_pending import fold_every
from clara.segment_rollups import hours_filter
from clara.segments import Admission
from consumer.batch import BatchPlan, admission_of, apply_plan, plan_batch, read_counted
from consumer.outbox_queue import queue_profiles
from replay.options import HOUR, TimeRange, floor_hour

READ_BATCH = 10_000   # documents per round trip: a group is read in one or two
# Documents per rebuild transaction unless --batch-size says otherwise: at 100k documents a rebuild ran 11%
# faster than with the backfill's 1,000 (fewer commits, each hour's reads in one round trip). A consumer
# writing to the same hours is handled by splitting a group that cannot commit (replay.run.Replay._group).
REBUILD_GROUP_DOCUMENTS = 10_000


@dataclasses.dataclass
class HourDone:
    documents: int = 0
    profiles: int = 0
    counts: Counter = dataclasses.field(default_factory=Counter)
    hours: int = 0

    def add(self, other: HourDone) -> None:
        self.documents += other.documents
        self.profiles += other.profiles
        self.counts.update(other.counts)
        self.hours += other.hours


def rebuild_hours(session: ClientSession, cols: Collections, config: Config, hours: Sequence[dt.datetime],
                  batch_id: str, resend_sinks: tuple[str, ...], new_sinks: tuple[str, ...], now: dt.datetime, *,
                  allow_shrink: bool = False) -> HourDone:
    """Replace the rollups of `hours` by a recount of their documents; make the counted collection agree."""
    group = Group(hours, batch_id, admission_of(cols, config, session))
    docs = list(cols.source.find(span_query(hours), session=session, batch_size=READ_BATCH))
    for doc in docs:
        if (hour := floor_hour(doc["timestamp"])) in group.hours:
            group.docs[hour].append(doc)
    ids = [doc["_id"] for hour_docs in group.docs.values() for doc in hour_docs]
    periods = periods_of(hours, config.model.rollup_period)
    counted = {entry["_id"]: Counted.from_doc(entry) for entry in cols.counted.find(
        {"hour": {"$in": periods}}, session=session, batch_size=READ_BATCH)}
    # Counted in the group but predicted outside it (a document moved within the group is recounted).
    away = {doc_id: counted[doc_id] for doc_id in counted.keys() - set(ids)}
    if rest := [doc_id for doc_id in ids if doc_id not in counted]:
        counted |= read_counted(cols, rest, session)
    group.counted = counted
    if away:
        present = list(cols.source.find({"_id": {"$in": list(away)}}, session=session))
        group.moved(present, away, config.n_classes, config.model.rollup_period)
        group.gone({doc_id: was for doc_id, was in away.items()
                    if doc_id not in {doc["_id"] for doc in present}}, allow_shrink)
    for hour in hours:
        group.recount(hour, config.n_classes, config.model.rollup_period)
    cols.rollups.delete_many({"_id": {"$in": periods}}, session=session)
    if group.whole.admission is not None:
        fold_every(session, cols, now)   # pending increments of these hours are in the entries recounted
        cols.segment_rollups.delete_many(hours_filter(hours), session=session)
    if group.dropped:
        cols.counted.delete_many({"_id": {"$in": group.dropped}}, session=session)
    plan = group.plan()
    profiles = apply_plan(session, cols, config, plan, resend_sinks)
    profiles += queue_profiles(session, cols, config, f"{batch_id}-new", group.fresh, new_sinks, now,
                               plan.segments if plan.admission is not None else None)
    return HourDone(sum(len(hour_docs) for hour_docs in group.docs.values()), profiles, group.counts, len(hours))


def periods_of(hours: Sequence[dt.datetime], period: dt.timedelta) -> list[dt.datetime]:
    """The rollup periods (their starts) that make up these UTC hours."""
    return [start for hour in hours for start in periods_between(hour, hour + HOUR, period)]


def span_query(hours: Sequence[dt.datetime]) -> dict:
    """The documents predicted in these hours (ascending): one range per run of consecutive hours."""
    runs: list[list[dt.datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1][1] = hour + HOUR
        else:
            runs.append([hour, hour + HOUR])
    ranges = [TimeRange(start, end).query() for start, end in runs]
    return ranges[0] if len(ranges) == 1 else {"$or": ranges}


class Group:
    """What rebuilding a group of hours changes, decided from what was read, then written as one plan."""

    def __init__(self, hours: Sequence[dt.datetime], batch_id: str, admission: Admission | None = None):
        self.hours = set(hours)
        self.batch_id = batch_id
        self.docs: dict[dt.datetime, list[Mapping]] = defaultdict(list)
        self.counted: dict[Any, Counted] = {}          # what the counted collection holds for the documents
        self.changes: dict[Any, Counted | None] = {}   # entries to write (None: delete)
        self.marks: set = set()
        self.dropped: list = []
        self.fresh: list[Record] = []
        self.counts: Counter = Counter()
        self.whole = BatchPlan(batch_id, admission=admission)

    def moved(self, present: list[Mapping], away: Mapping[Any, Counted], n_classes: int,
              period: dt.timedelta) -> None:
        """The consumer's own plan for documents now predicted elsewhere (pending or set aside included)."""
        if not present:
            return
        plan = plan_batch(present, n_classes, period, f"{self.batch_id}-moved",
                          counted={doc["_id"]: away[doc["_id"]] for doc in present}, admission=self.whole.admission)
        self.changes |= dict(plan.claims) | dict.fromkeys(plan.unclaims)
        self.marks.update(plan.marks)
        self._keep(plan)
        self._outside(plan.delta)
        self.counts["moved"] += len(present)

    def gone(self, gone: Mapping[Any, Counted], allow_shrink: bool) -> None:
        """Entries whose document no longer exists: their reviews happened (kept) unless allow_shrink."""
        if allow_shrink:
            self.dropped += list(gone)
            self.counts["dropped"] += len(gone)
            return
        for was in gone.values():
            self.whole.delta.add(was)
        self.counts["kept"] += len(gone)

    def recount(self, hour: dt.datetime, n_classes: int, period: dt.timedelta) -> None:
        """Count the hour afresh; write entries (and markers) only where they say something else."""
        plan = plan_batch(self.docs[hour], n_classes, period, self.batch_id, recount=True,
                          admission=self.whole.admission)
        recounted = dict(plan.claims)
        records = {record.id: record for record in plan.new_records}
        for doc in self.docs[hour]:
            doc_id = doc["_id"]
            was, now_counted = self.counted.get(doc_id), recounted.get(doc_id)
            if was is not None and floor_hour(was.hour) not in self.hours:
                self.whole.delta.add(was, -1)   # counted outside the group: taken back there
            if now_counted is None:
                if was is not None:
                    self.changes[doc_id] = None   # counted, now pending or set aside
                    self.counts["rewritten"] += 1
                continue
            if was is None:
                self.fresh.append(records[doc_id])
            if was != now_counted:
                self.changes[doc_id] = now_counted
                self.counts["rewritten"] += was is not None
            elif doc.get("logged") is not True or "logged_as" in doc:
                self.marks.add(doc_id)   # counted as it is; only the informational marker is off
        self._keep(plan)
        self.whole.delta.merge(plan.delta)   # this hour's recount, whole
        self.counts["recounted"] += plan.counts["claimed"]
        self.counts["rejected"] += plan.counts["rejected"]

    def plan(self) -> BatchPlan:
        """One plan of every write, for consumer.batch.apply_plan; the group's hours are replaced, not
        incremented, so the caller deletes their rollups first."""
        whole = self.whole
        whole.claims = [(doc_id, c) for doc_id, c in self.changes.items() if c is not None]
        whole.fresh = {doc_id for doc_id, _ in whole.claims if doc_id not in self.counted}   # read in this transaction
        whole.unclaims = [doc_id for doc_id, c in self.changes.items() if c is None]
        whole.marks = list(self.marks - self.changes.keys())
        self.counts["claimed"] = len(self.fresh)
        return whole

    def _keep(self, plan: BatchPlan) -> None:
        self.whole.rejects += plan.rejects
        self.whole.cleared_rejects += plan.cleared_rejects
        self.whole.new_records += plan.new_records
        self.whole.segments |= plan.segments

    def _outside(self, delta: RollupDelta) -> None:
        """Increments to hours outside the group (those inside are replaced by their recount)."""
        self.whole.delta.merge(delta, keep=lambda period: floor_hour(period) not in self.hours)
