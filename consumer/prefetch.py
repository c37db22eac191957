"""The next batch's documents, read and parsed while the current batch's transaction commits.

A batch's transaction spends most of its time waiting on the server; reading and parsing the next batch's
source documents is most of the Python time. Done one batch ahead on a thread of its own, the two overlap.

Why a document read outside the transaction is still counted exactly once: it is read after the event
or scan that put it in the batch, with majority read concern (never a write that a failover can roll
back), and whatever a writer changes after the read reaches the consumer as a later change event (the
stream is opened before any scan), whose batch compares the document with what the counted collection
says it added and corrects the difference. What was counted is always read inside the transaction: only
the documents are read ahead. A document the previous batch (still committing) also holds is not read
ahead: its `logged` mark and counted entry are in flux until that batch commits, so its batch reads it
in the transaction, as without prefetching. Anything that goes wrong ahead (a document the driver
cannot decode, the server away) only means the batch reads its documents in the transaction.

The batch is also planned ahead as if none of its documents had been counted yet, the common case of new
reviews, and with segments under the values admitted as read ahead. The transaction uses that plan only
when what it reads says so: no counted entry for any of them, and the very values admitted that the plan
was made under (a plan that would admit new ones is not made ahead); that makes it the plan it would have
made. Otherwise it plans again.

The batch's insert events are counted ahead too (consumer.predictions.count_inserts), as if no recount cut
held any and admitting no value; the transaction uses that count when every insert is after the cut it
reads and it reads the same admitted values, else counts them itself.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from clara.config import Config
from clara.db import Collections
from clara.records import Record, Rejection, parse_document
from clara.segments import Admission, read_admission
from consumer.batch import BatchPlan, new_batch_id, plan_batch
from consumer.predictions import InsertCount, Inserted, count_inserts

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Prefetched:
    """Source documents by _id as read ahead (those of `asked` that exist), what parse_document made of each,
    the plan for exactly the documents of `asked` if none of them had been counted, and the count of the
    batch's insert events if no recount cut held any."""

    asked: frozenset = frozenset()
    docs: Mapping[Any, Mapping] = dataclasses.field(default_factory=dict)
    parsed: Mapping[Any, Record | Rejection] = dataclasses.field(default_factory=dict)
    uncounted_plan: BatchPlan | None = None
    inserts: InsertCount | None = None


NOTHING = Prefetched()


def prefetch(cols: Collections, config: Config, ids: Sequence[Any], *, skip: Collection[Any] = (),
             inserted: Sequence[Inserted] = ()) -> Prefetched:
    """Read, parse and plan the documents of `ids` not in `skip` (majority read concern, no transaction), and
    count the insert events `inserted`; the admitted segment values are read once for both."""
    wanted = [doc_id for doc_id in ids if doc_id not in skip]
    if not wanted and not inserted:
        return NOTHING
    try:
        admitted = read_admission(cols.state, config.segments).stored if config.segments.enabled else None
    except Exception as exc:  # noqa: BLE001 - the transaction plans and counts the batch itself
        log.debug("read ahead of the admitted segment values failed (%s: %s)", type(exc).__name__, exc)
        admitted = UNREAD
    reviews = _reviews_ahead(cols, config, wanted, admitted) if wanted else NOTHING
    return dataclasses.replace(reviews, inserts=_inserts_ahead(config, inserted, admitted)) if inserted else reviews


UNREAD = object()   # the admitted values could not be read ahead


def _admission(config: Config, admitted: Mapping[str, frozenset] | None) -> Admission | None:
    """An Admission of the values read ahead, its own for each plan or count (each may admit into it)."""
    return None if admitted is None else Admission(config.segments, admitted)


def _inserts_ahead(config: Config, inserted: Sequence[Inserted], admitted: Any) -> InsertCount | None:
    """The inserts' count made ahead, or None: whatever fails here (the values unread, a document no one
    foresaw) is met again by the transaction, which sets a failing document aside (consumer.isolation)."""
    if admitted is UNREAD:
        return None
    admission = _admission(config, admitted)
    try:
        count = count_inserts(inserted, config.n_classes, config.model.rollup_period, admission)
    except Exception as exc:  # noqa: BLE001 - the transaction counts them itself
        log.debug("counting %d inserts ahead failed (%s: %s); the batch counts them itself", len(inserted),
                  type(exc).__name__, exc)
        return None
    return None if admission is not None and admission.pending() else count   # admitting is the transaction's


def _reviews_ahead(cols: Collections, config: Config, wanted: Sequence[Any], admitted: Any) -> Prefetched:
    try:
        docs = {doc["_id"]: doc for doc in cols.source.find({"_id": {"$in": list(wanted)}})}
    except Exception as exc:  # noqa: BLE001 - the transaction reads them again and meets the cause itself
        log.debug("read ahead of %d documents failed (%s: %s); the batch reads them itself",
                  len(wanted), type(exc).__name__, exc)
        return NOTHING
    parsed = {doc_id: parse_document(doc, config.n_classes) for doc_id, doc in docs.items()}
    if admitted is UNREAD:   # the transaction plans the batch itself
        return Prefetched(frozenset(wanted), docs, parsed)
    admission = _admission(config, admitted)
    plan = plan_batch(list(docs.values()), config.n_classes, config.model.rollup_period, new_batch_id(),
                      parsed=parsed, admission=admission)
    if admission is not None and admission.pending():
        plan = None   # it admits values: only the transaction may, from what it reads
    return Prefetched(frozenset(wanted), docs, parsed, plan)


class Ahead:
    """One task at a time on a thread of its own: the next batch's preparation beside the current commit."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")

    def submit(self, task: Callable[[], T]) -> concurrent.futures.Future[T]:
        return self._pool.submit(task)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

