"""Catch-up: process every reviewed document not yet counted, in bounded batches, through commit_batch;
and the re-check of what was counted, for changes no event reported."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import MongoClient

from clara.config import Config
from clara.db import Collections
from clara.segment_pending import Folding
from consumer.batch import BatchResult, commit_batch
from consumer.isolation import commit_isolating
from consumer.lease import Lease
from consumer.outbox_queue import sink_names
from consumer.prefetch import Ahead, Prefetched, prefetch

log = logging.getLogger(__name__)
UNLOGGED_REVIEWS = {"logged": {"$ne": True}, "output_validated": {"$exists": True, "$ne": None}}
ALL_REVIEWS = {"output_validated": {"$exists": True, "$ne": None}}


@dataclasses.dataclass
class CatchUpResult:
    documents: int = 0
    batches: int = 0
    profiles: int = 0
    counts: Counter = dataclasses.field(default_factory=Counter)

    def merge(self, other: CatchUpResult) -> None:
        self.documents += other.documents
        self.batches += other.batches
        self.profiles += other.profiles
        self.counts.update(other.counts)

    def add(self, result: BatchResult) -> None:
        self.documents += result.documents
        self.batches += 1
        self.profiles += result.profiles
        self.counts.update(result.counts)


def catch_up(client: MongoClient, cols: Collections, config: Config, *, sinks: Sequence[str] | None = None,
             query: dict | None = None, include_logged: bool = False,
             on_batch: Callable[[BatchResult], None] | None = None,
             commit: Callable[..., BatchResult] = commit_batch, lease: Lease | None = None,
             folding: Folding | None = None) -> CatchUpResult:
    """Scan the source in _id order, `catchup_batch_size` at a time, committing each slice exactly once
    (full slices may put their segment increments off, as `folding` says: clara.segment_pending).

    include_logged also re-checks counted documents, to find corrections made while change events were lost.
    Without source markers (consumer.mark_source = false) every review is scanned and those the counted
    collection already holds are skipped. The scan stops at the largest _id that matched when it began:
    whatever is written later reaches the consumer through its change stream (opened before the scan), so
    the scan never chases the writers.
    """
    sinks = sink_names(config) if sinks is None else sinks
    skip_counted = not include_logged and not config.consumer.mark_source
    base = dict(ALL_REVIEWS if include_logged or skip_counted else UNLOGGED_REVIEWS) | (query or {})
    result = CatchUpResult()
    newest = cols.source.find_one(base, {"_id": 1}, sort=[("_id", -1)])
    if newest is None:
        return result
    base = {"$and": [base, {"_id": {"$lte": newest["_id"]}}]}
    read_ahead = commit is commit_batch

    def next_slice(last_id: Any) -> tuple[list, Prefetched | None]:
        """The next slice's ids after `last_id` (all counted ones skipped: [] at the end) and its documents."""
        while True:
            selector = base if last_id is None else {"$and": [base, {"_id": {"$gt": last_id}}]}
            ids = [doc["_id"] for doc in cols.source.find(selector, {"_id": 1}).sort("_id", 1)
                   .limit(config.consumer.catchup_batch_size)]
            if not ids:
                return [], None
            last_id = ids[-1]
            if skip_counted:
                counted = set(cols.counted.distinct("_id", {"_id": {"$in": ids}}))
                ids = [doc_id for doc_id in ids if doc_id not in counted]
            if ids:
                return ids, prefetch(cols, config, ids) if read_ahead else None

    # Slices are disjoint and in _id order, so the next one is read and parsed while this one commits.
    with Ahead() as ahead:
        upcoming = ahead.submit(functools.partial(next_slice, None))
        while True:
            ids, prefetched = upcoming.result()
            if not ids:
                return result
            upcoming = ahead.submit(functools.partial(next_slice, ids[-1]))
            extra = {"folding": folding, "full": len(ids) >= config.consumer.catchup_batch_size} if folding else {}
            _commit(client, cols, config, ids, commit, sinks, lease, result, on_batch, prefetched=prefetched, **extra)


def recheck_counted(client: MongoClient, cols: Collections, config: Config, *, sinks: Sequence[str] | None = None,
                    after: Any = None, limit: int | None = None, on_batch: Callable[[BatchResult], None] | None = None,
                    commit: Callable[..., BatchResult] = commit_batch,
                    lease: Lease | None = None) -> tuple[CatchUpResult, Any]:
    """Re-check counted reviews in _id order (after `after`, at most `limit`): withdrawals, corrections and
    changes no event reported are applied. Returns the tally and the last _id checked (None: reached the end)."""
    sinks = sink_names(config) if sinks is None else sinks
    result = CatchUpResult()
    checked = 0
    while limit is None or checked < limit:
        size = config.consumer.catchup_batch_size if limit is None else min(config.consumer.catchup_batch_size,
                                                                             limit - checked)
        selector = {} if after is None else {"_id": {"$gt": after}}
        ids = [doc["_id"] for doc in cols.counted.find(selector, {"_id": 1}).sort("_id", 1).limit(size)]
        if not ids:
            return result, None
        _commit(client, cols, config, ids, commit, sinks, lease, result, on_batch)
        checked += len(ids)
        after = ids[-1]
    return result, after


def _commit(client: MongoClient, cols: Collections, config: Config, ids: list, commit: Callable[..., BatchResult],
            sinks: Sequence[str], lease: Lease | None, result: CatchUpResult,
            on_batch: Callable[[BatchResult], None] | None, prefetched: Prefetched | None = None,
            **extra: Any) -> None:
    batch = commit_isolating(functools.partial(commit, client, cols, config), cols, ids, sinks=sinks, lease=lease,
                             **({"prefetched": prefetched} if prefetched is not None else {}), **extra)
    result.add(batch)
    if on_batch is not None:
        on_batch(batch)
