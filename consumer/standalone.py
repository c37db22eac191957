"""Exactly-once batches on a standalone server, which has no transactions.

The batch's plan is first written whole as a journal entry; then each effect is applied so that
applying it twice changes nothing (a rollup hour remembers the last batches it took, outbox
entries have fixed ids, counted entries and document marks are plain sets); then the journal entry
goes. After a crash, `recover_journals` re-applies whatever entries are left. One processor at a time:
a standalone server cannot isolate two of them, so the consumer lease is checked before each batch.

With segments.fields, the plan is made with the segment values admitted so far (clara.segments) and the
journal holds the values it admits and its segment rollup increments: the values are added to the admitted
set with `$addToSet` (a second application finds them there), and a segment rollup, like an hour's rollup,
remembers the last batches it took. One processor at a time is also what keeps the cap exact here.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import DeleteOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from clara.config import Config
from clara.db import Collections
from clara.segment_rollups import segment_increments
from clara.segments import SEGMENTS_STATE_ID, segment_id
from consumer.batch import BatchResult, admission_of, plan_batch, read_counted, source_marks
from consumer.lease import Lease
from consumer.outbox_queue import outbox_documents

UTC = dt.timezone.utc
JOURNAL_PREFIX = "journal:"
REMEMBERED_BATCHES = 64


def commit_batch_journaled(client: MongoClient, cols: Collections, config: Config, ids: Sequence[Any], *,
                           sinks: Sequence[str], lease: Lease | None = None, **_: Any) -> BatchResult:
    """commit_batch for servers without transactions: journal the plan, apply idempotently, drop the journal."""
    started = time.perf_counter()
    if lease is not None:
        lease.renew()   # the closest a server without transactions gets to fencing: check just before
    plan = plan_batch(list(cols.source.find({"_id": {"$in": list(ids)}})), config.n_classes,
                      config.model.rollup_period, uuid.uuid4().hex[:16], counted=read_counted(cols, ids),
                      admission=admission_of(cols, config, None))
    now = dt.datetime.now(UTC)
    segmented = plan.admission is not None
    marks = source_marks(plan, now) if config.consumer.mark_source else []
    journal = {
        "_id": JOURNAL_PREFIX + plan.batch_id, "batch_id": plan.batch_id, "at": now,
        "claims": [{"id": doc_id, "counted": counted.to_doc()} for doc_id, counted in plan.claims],
        "unclaims": plan.unclaims,
        "marks": [{"filter": selector, "update": update} for selector, update in marks],
        "rollups": [{"hour": hour, "inc": inc} for hour, inc in plan.delta.updates()],
        "rejects": [{"id": r.id, "field": r.field, "reason": str(r)} for r, _ in plan.rejects],
        "cleared_rejects": plan.cleared_rejects,
        "outbox": outbox_documents(config, plan.batch_id, plan.new_records, sinks, now,
                                   plan.segments if segmented else None),
    }
    if segmented:
        journal["admitted"] = plan.admission.pending()
        journal["segment_rollups"] = [{"hour": hour, "field": field, "inc": inc} for (hour, field), inc
                                      in segment_increments(plan.delta.segment_updates()).items()]
    cols.state.insert_one(journal)
    _apply_journal(cols, journal)
    return BatchResult(plan.batch_id, len(ids), Counter(plan.counts), len(journal["rollups"]), len(journal["outbox"]),
                       time.perf_counter() - started)


def recover_journals(cols: Collections) -> int:
    """Finish batches a crash interrupted; returns how many."""
    entries = list(cols.state.find({"_id": {"$regex": f"^{JOURNAL_PREFIX}"}}))
    for journal in entries:
        _apply_journal(cols, journal)
    return len(entries)


def _apply_journal(cols: Collections, journal: dict) -> None:
    batch_id, now = journal["batch_id"], journal["at"]
    for entry in journal["rollups"]:
        _inc_once(cols.rollups, entry["hour"], entry["inc"], batch_id, now)
    admitted = journal.get("admitted") or {}
    if admitted:
        added = {f"values.{field}": {"$each": values} for field, values in admitted.items()}
        cols.state.update_one({"_id": SEGMENTS_STATE_ID}, {"$addToSet": added, "$set": {"updated_at": now}},
                              upsert=True)
    for entry in journal.get("segment_rollups", []):
        _inc_once(cols.segment_rollups, segment_id(entry["hour"], entry["field"]), entry["inc"], batch_id, now)
    counted = [ReplaceOne({"_id": c["id"]}, c["counted"] | {"_id": c["id"], "at": now}, upsert=True)
               for c in journal["claims"]]
    counted += [DeleteOne({"_id": doc_id}) for doc_id in journal["unclaims"]]
    if counted:
        cols.counted.bulk_write(counted, ordered=False)
    marks = [UpdateOne(mark["filter"], mark["update"]) for mark in journal.get("marks", [])]
    if marks:
        cols.source.bulk_write(marks, ordered=False)
    for reject in journal["rejects"]:
        cols.rejects.update_one({"_id": reject["id"]}, {"$set": {"field": reject["field"], "reason": reject["reason"],
                                                                 "at": now}}, upsert=True)
    if journal["cleared_rejects"]:
        cols.rejects.delete_many({"_id": {"$in": journal["cleared_rejects"]}})
    for entry in journal["outbox"]:
        try:
            cols.outbox.insert_one(entry)
        except DuplicateKeyError:
            pass
    cols.state.delete_one({"_id": journal["_id"]})


def _inc_once(collection, doc_id: Any, inc: dict, batch_id: str, now: dt.datetime) -> None:
    """$inc a rollup document unless it already took this batch (it remembers the last REMEMBERED_BATCHES)."""
    try:
        collection.update_one({"_id": doc_id, "batches": {"$ne": batch_id}},
                              {"$inc": inc, "$set": {"updated_at": now},
                               "$push": {"batches": {"$each": [batch_id], "$slice": -REMEMBERED_BATCHES}}}, upsert=True)
    except DuplicateKeyError:
        pass  # the document exists and already took this batch
