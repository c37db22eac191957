"""One bad document never stops the consumer: a failing batch is split until the culprit stands alone.

`commit_isolating` wraps a batch commit. MongoDB being away (connection errors, timeouts, elections)
is not the documents' fault: it propagates, and the follower reconnects and redoes the batch. Anything
else — a document the driver cannot decode, a batch too large or too slow for one transaction, an
unexpected error — splits the batch in halves, each committed on its own (the checkpoint goes with the
last part only, so a crash in between redoes the rest, and what was committed counts nothing twice).
A single document that still fails is set aside in the rejects collection with the reason, and the
stream moves on: never a crash loop.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bson.errors import BSONError
from pymongo.errors import ConnectionFailure, DocumentTooLarge, OperationFailure, PyMongoError

from clara.db import Collections
from consumer.batch import BatchResult, BatchTooSlow
from consumer.lease import LeaseLost

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
# Server answers that say "this batch is too big or too slow for one transaction", not "MongoDB is away".
# BSONObjectTooLarge, TransactionTooLarge, TransactionExceededLifetimeLimitSeconds, MaxTimeMSExpired,
# ExceededTimeLimit.
TOO_LARGE_CODES = {10334, 257, 290, 50, 262}


def is_batch_fault(exc: BaseException) -> bool:
    """True when splitting the batch can help: the failure comes from what is in it, not from the server."""
    if isinstance(exc, (LeaseLost, KeyboardInterrupt, SystemExit)):
        return False
    if isinstance(exc, (BatchTooSlow, DocumentTooLarge, BSONError)):
        return True
    if isinstance(exc, ConnectionFailure):
        return False
    if isinstance(exc, OperationFailure):
        return exc.code in TOO_LARGE_CODES
    return not isinstance(exc, PyMongoError)


def commit_isolating(commit: Callable[..., BatchResult], cols: Collections, ids: Sequence[Any],
                     **kwargs: Any) -> BatchResult:
    """`commit(ids, **kwargs)`, splitting on batch faults; a lone failing document is set aside.

    A batch's insert events (`inserted=`) are split with it.
    """
    inserted = list(kwargs.pop("inserted", ()))
    try:
        return commit(ids, inserted=inserted, **kwargs)
    except Exception as exc:  # noqa: BLE001 - classified right below; server trouble is re-raised
        if not is_batch_fault(exc):
            raise
        if len(ids) + len(inserted) == 1:
            set_aside(cols, ids[0] if ids else inserted[0].doc.get("_id"), exc)
            return BatchResult("set-aside", 1, Counter(rejected=1, set_aside=1), 0, 0, 0.0)
        log.warning("batch of %d documents failed (%s: %s); splitting it to isolate the cause",
                    len(ids) + len(inserted), type(exc).__name__, exc)
    half_ids, half_inserted = (len(ids) + 1) // 2, len(inserted) // 2
    if not half_ids and not half_inserted:
        half_inserted = 1
    first = commit_isolating(commit, cols, ids[:half_ids], **(kwargs | {"checkpoint": None,
                                                                         "inserted": inserted[:half_inserted]}))
    second = commit_isolating(commit, cols, ids[half_ids:], **(kwargs | {"inserted": inserted[half_inserted:]}))
    return BatchResult(second.batch_id, first.documents + second.documents, first.counts + second.counts,
                       first.hours + second.hours, first.profiles + second.profiles,
                       first.duration_seconds + second.duration_seconds, first.by_class + second.by_class)


def set_aside(cols: Collections, doc_id: Any, exc: BaseException) -> None:
    """Keep a document that cannot be processed in the rejects collection, with the reason."""
    reason = f"document: cannot be processed ({type(exc).__name__}: {str(exc)[:500]})"
    log.error("source document %r set aside: %s", doc_id, reason)
    cols.rejects.update_one({"_id": doc_id}, {"$set": {"field": "document", "reason": reason,
                                                       "at": dt.datetime.now(UTC)}}, upsert=True)
