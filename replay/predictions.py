"""--rebuild of the prediction rollups: the range's whole UTC hours recounted from the source, exactly once.

The consumer's own recount does it (consumer/predictions.py): the hours are emptied at a snapshot time S,
insert events at or before S in them are left to the recount, which reads the source as it was at S.
Such a recount may begin only while no consumer batch can commit. So:

- with a consumer running (it holds the consumer lease), replay leaves a recount request in the state
  collection; the consumer begins the recount between two batches and runs it beside its stream, and
  replay waits for it, logging progress;
- otherwise replay holds the consumer lease itself while it begins the recount (every consumer batch
  renews the lease in its transaction, so none can commit meanwhile), releases it, and runs the recount.
  A consumer started meanwhile resumes the same recount beside it; the two never add a day twice.

An interrupted recount is finished by the consumer's next start or by running the replay again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time

from pymongo import MongoClient

from clara.config import Config
from clara.db import Collections
from consumer.lease import Lease
from consumer.predictions import MAX_RECOUNT_HOURS, STATE_ID, Recount, begin_recount, read_state, request_recount
from replay.errors import Interrupted, ReplayError
from replay.options import TimeRange, floor_hour

log = logging.getLogger("replay")
REASON = "replay --rebuild"
POLL_SECONDS = 0.5


@dataclasses.dataclass
class PredictionsDone:
    documents: int = 0        # predictions in the recounted hours (as the source held them at the snapshot)
    hours: int | None = 0     # None: every hour
    by_consumer: bool = False

    def line(self) -> str:
        who = "by the running consumer" if self.by_consumer else "by this replay"
        hours = "every hour" if self.hours is None else f"{self.hours} hours"
        return f"  predictions recounted {who}: {self.documents} in {hours}"


@dataclasses.dataclass(frozen=True)
class PredictionsInRange:
    """What a rebuild's whole hours hold, read once: the hours to recount (None: every hour), the source's
    predictions there now, and what the prediction rollups hold there."""

    hours: frozenset[dt.datetime] | None
    present: int
    stored: int

    @property
    def lost(self) -> int:
        """Counted but no longer in the source there: deleted since (a TTL index) or moved out of the range,
        which a recount would erase. Moves within the range cancel out (a prediction counts in its hour as
        inserted; a recount moves it)."""
        return max(self.stored - self.present, 0)


def predictions_in_range(cols: Collections, phase: TimeRange) -> PredictionsInRange:
    """The whole UTC hours of `phase` that hold predictions or prediction rollups, and the two totals."""
    query = phase.query()
    dated = {"timestamp": (query.get("timestamp") or {}) | {"$type": "date"}}
    rollups = {"_id": query["timestamp"]} if query else {}
    totals = cols.predictions.aggregate([{"$match": rollups}, {"$group": {"_id": None, "n": {"$sum": "$predictions"}}}])
    stored = next(totals, {"n": 0})["n"]
    if not query:
        return PredictionsInRange(None, cols.source.count_documents(dated), stored)
    pipeline = [{"$match": dated},
                {"$group": {"_id": {"$dateTrunc": {"date": "$timestamp", "unit": "hour"}}, "n": {"$sum": 1}}}]
    by_hour = {floor_hour(doc["_id"]): doc["n"] for doc in cols.source.aggregate(pipeline)}
    hours = set(by_hour) | {floor_hour(doc["_id"]) for doc in cols.predictions.find(rollups, {"_id": 1})}
    return PredictionsInRange(frozenset(hours), sum(by_hour.values()), stored)


def prediction_shrink_refusal(lost: int) -> str:
    """Why a rebuild stops before writing anything when its recount would lower the prediction counts."""
    return (f"rebuild would lower the prediction counts of its range by {lost:,} predictions the source no longer "
            f"holds there (deleted, e.g. by a TTL index, moved out of the range, or counts raised by hand); their "
            f"counts are history. Pass --allow-shrink to rebuild anyway")


def rebuild_predictions(client: MongoClient, cols: Collections, config: Config,
                        hours: frozenset[dt.datetime] | None, stop: threading.Event) -> PredictionsDone:
    """Recount the prediction rollups of a rebuild's whole `hours` (None: every hour), by the running
    consumer or by this process."""
    done = PredictionsDone(hours=None if hours is None else len(hours))
    if hours is not None and not hours:
        return done
    chunks = [None] if hours is None else [frozenset(sorted(hours)[i:i + MAX_RECOUNT_HOURS])
                                           for i in range(0, len(hours), MAX_RECOUNT_HOURS)]
    lease = Lease(cols.state, f"lease:{config.mongodb.source_collection}", config.consumer.lease_seconds)
    for chunk in chunks:
        documents, by_consumer = _recount(client, cols, config, lease, chunk, stop)
        done.documents += documents
        done.by_consumer |= by_consumer
    return done


def _recount(client: MongoClient, cols: Collections, config: Config, lease: Lease,
             hours: frozenset[dt.datetime] | None, stop: threading.Event) -> tuple[int, bool]:
    what = "every hour" if hours is None else f"{len(hours)} hours"
    deadline = time.monotonic() + 3 * config.consumer.lease_seconds + 10
    request_id = None
    while True:
        if lease.try_acquire():
            try:
                plan = begin_recount(client, cols, hours, None, None, REASON)
            finally:
                lease.release()
            log.info("recounting the predictions of %s (no consumer running)", what)
            recount = Recount(cols, config.n_classes, config.model.rollup_period, plan, stop, segments=config.segments)
            if not recount.run():
                if stop.is_set():
                    raise Interrupted("stopped while recounting predictions")
                return _wait(cols, plan.id, stop, what), False   # superseded: a consumer took its hours over
            return recount.documents, False
        if request_id is None:
            request_id = request_recount(cols, hours, REASON)
            log.info("a consumer is running (%s): asked it to recount the predictions of %s",
                     lease.describe_holder(), what)
        recount = (read_state(cols).get("recount") or {})
        if recount.get("request_id") == request_id:
            return _wait(cols, recount["id"], stop, what), True
        if stop.is_set():
            raise Interrupted("stopped while waiting for the consumer to take up the recount")
        if time.monotonic() > deadline:
            cols.state.update_one({"_id": STATE_ID, "recount_request.id": request_id},
                                  {"$unset": {"recount_request": ""}})
            raise ReplayError(f"the running consumer ({lease.describe_holder()}) did not take up the request to "
                              f"recount predictions within {3 * config.consumer.lease_seconds + 10:.0f} s; "
                              f"is it older than this replay? Upgrade or stop it, then run the replay again")
        time.sleep(POLL_SECONDS)


def _wait(cols: Collections, plan_id: str, stop: threading.Event, what: str) -> int:
    """Wait for the recount `plan_id` (or the one that took it over) to finish, logging its progress."""
    last_report = time.monotonic()
    while True:
        recount = read_state(cols).get("recount") or {}
        if recount.get("done_at"):
            return recount.get("documents", 0)
        if stop.is_set():
            raise Interrupted("stopped while the consumer recounts predictions (it goes on)")
        if time.monotonic() - last_report >= 10:
            through = recount.get("done_through")
            log.info("the consumer is recounting the predictions of %s: through %s", what,
                     "no day yet" if through is None else f"{through:%Y-%m-%d} UTC")
            last_report = time.monotonic()
        if recount.get("id") != plan_id:
            plan_id = recount.get("id")   # folded into a later recount: wait for that one
        time.sleep(POLL_SECONDS)
