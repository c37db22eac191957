"""Catch-up: process every reviewed document not yet logged, in bounded batches, through commit_batch."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import MongoClient

from clara.config import Config
from clara.db import Collections
from consumer.batch import BatchResult, commit_batch
from consumer.outbox_queue import sink_names

log = logging.getLogger(__name__)
UNLOGGED_REVIEWS = {"logged": {"$ne": True}, "output_validated": {"$exists": True, "$ne": None}}
ALL_REVIEWS = {"output_validated": {"$exists": True, "$ne": None}}


@dataclasses.dataclass
class CatchUpResult:
    documents: int = 0
    batches: int = 0
    profiles: int = 0
    counts: Counter = dataclasses.field(default_factory=Counter)

    def add(self, result: BatchResult) -> None:
        self.documents += result.documents
        self.batches += 1
        self.profiles += result.profiles
        self.counts.update(result.counts)


def catch_up(client: MongoClient, cols: Collections, config: Config, *, sinks: Sequence[str] | None = None,
             query: dict | None = None, include_logged: bool = False,
             on_batch: Callable[[BatchResult], None] | None = None,
             commit: Callable[..., BatchResult] = commit_batch) -> CatchUpResult:
    """Scan the source in _id order, `catchup_batch_size` at a time, committing each slice exactly once.

    include_logged also re-checks logged documents, to find corrections made while change events were lost.
    The scan stops at the largest _id that matched when it began: whatever is written later reaches the
    consumer through its change stream (opened before the scan), so the scan never chases the writers.
    """
    sinks = sink_names(config) if sinks is None else sinks
    base = dict(ALL_REVIEWS if include_logged else UNLOGGED_REVIEWS) | (query or {})
    result = CatchUpResult()
    newest = cols.source.find_one(base, {"_id": 1}, sort=[("_id", -1)])
    if newest is None:
        return result
    base = {"$and": [base, {"_id": {"$lte": newest["_id"]}}]}
    last_id: Any = None
    while True:
        selector = base if last_id is None else {"$and": [base, {"_id": {"$gt": last_id}}]}
        ids = [doc["_id"] for doc in cols.source.find(selector, {"_id": 1}).sort("_id", 1)
               .limit(config.consumer.catchup_batch_size)]
        if not ids:
            return result
        batch = commit(client, cols, config, ids, sinks=sinks)
        result.add(batch)
        if on_batch is not None:
            on_batch(batch)
        last_id = ids[-1]
