"""Segment increments put off while the consumer is behind, and their folding into the segment rollups.

Why. A batch's segment increments cost MongoDB several times its overall ones: every counter is applied once
more per field, for every value the batch holds (bench/segments_bench.py timed the prediction path's writes
alone at about 0.37x of their rate without segments). Under bulk traffic consecutive batches land in the
same few periods and values, so their summed increments touch the same counters as one batch's: applied
once every segments.fold_seconds instead of once a batch, they cost a small fraction.

How. A full batch (the consumer is behind) whose last fold is younger than segments.fold_seconds inserts
its segment increments here as one document, in its own transaction, so they are exactly as durable as its
overall counts; the last batch of a burst (full, but no event waiting behind it) does not. Any other batch
folds: in its transaction it reads the pending documents (at most
FOLD_LIMIT), adds their increments to its own, applies the sums to the segment rollups and deletes them.
An idle consumer folds what is left in a transaction of its own. A rebuild or recount folds first, in the
transaction that empties the periods it recounts. So each increment is applied once: the transaction that
applies it deletes the document that held it.

What readers see: while the consumer is behind, segment figures trail the overall ones by at most
segments.fold_seconds and a batch; once it has caught up (a batch that is not full, a burst's last batch,
or an idle wait) a field's segments sum to the overall figures again. Readers never read the increments: Data health
(`/api/health`'s `segments_pending`) only counts the documents and says since when, so the trailing is shown.

    {_id: <ObjectId>, at: <date>,
     rollups: {names: ["<counter>", ...],
               rows: [{hour: <period start>, field, value, names: <uint32 indexes into names>, counts: <int64s>}]},
     predictions: <the same, for the prediction rollups>}

The arrays are little-endian whatever the machine, so a consumer moved to another one reads them alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bson import Binary
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.db import Collections
from clara.rollups import add_into
from clara.segment_rollups import write_segment_rollups

UTC = dt.timezone.utc
KINDS = ("rollups", "predictions")   # the segment collections' Collections roles: segment_<kind>
FOLD_LIMIT = 500   # pending documents folded per transaction (about fold_seconds' worth of full batches)

BIG_ENDIAN = sys.byteorder == "big"
if array("I").itemsize != 4 or array("q").itemsize != 8:
    raise ImportError("clara.segment_pending needs 4-byte unsigned and 8-byte signed array items")
Update = tuple[tuple[dt.datetime, str, str], Mapping[str, int]]   # ((period, field, value), $inc)


@dataclasses.dataclass
class SegmentWrites:
    """One transaction's segment increments, per kind, applied or put off together at its end."""

    rollups: list[Update] = dataclasses.field(default_factory=list)
    predictions: list[Update] = dataclasses.field(default_factory=list)

    def add(self, kind: str, updates: Iterable[Update]) -> None:
        getattr(self, kind).extend(updates)

    def __bool__(self) -> bool:
        return bool(self.rollups or self.predictions)


class Folding:
    """When a batch may put its segment increments off: while batches come full (the consumer is behind)
    and the last fold is younger than `seconds` (segments.fold_seconds; 0: never)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.folded_at = time.monotonic()
        self.pending = True   # unknown at start: a consumer that stopped may have left some

    def defer(self, full: bool) -> bool:
        return self.seconds > 0 and full and time.monotonic() - self.folded_at < self.seconds

    def committed(self, deferred: bool, pending_left: bool) -> None:
        """After a commit that put its increments off or folded (leaving `pending_left` or not)."""
        if not deferred:
            self.folded_at = time.monotonic()
        self.pending = pending_left


def commit_segment_writes(session: ClientSession, cols: Collections, writes: SegmentWrites, now: dt.datetime,
                          defer: bool, pending: bool = True) -> bool:
    """At the end of a batch's transaction: put its increments off (defer), or apply them, folding in the
    pending documents unless there are none (`pending` false). Returns whether pending documents remain."""
    if defer:
        if writes:
            cols.segment_pending.insert_one({"at": now} | {kind: _packed(getattr(writes, kind)) for kind in KINDS},
                                            session=session)
        return True
    return fold(session, cols, now, writes, read_pending=pending)


def fold(session: ClientSession | None, cols: Collections, now: dt.datetime,
         writes: SegmentWrites | None = None, read_pending: bool = True) -> bool:
    """Apply the pending increments (at most FOLD_LIMIT documents; none read unless `read_pending`) with
    `writes` to the segment rollups and delete them, in the caller's transaction. Returns whether more remain."""
    docs = list(cols.segment_pending.find({}, session=session).sort("_id", 1).limit(FOLD_LIMIT)) \
        if read_pending else []
    for kind in KINDS:
        sums = _summed([*(getattr(writes, kind) if writes else ()),
                        *(update for doc in docs if kind in doc for update in _unpacked(doc[kind]))])
        if sums:
            write_segment_rollups(session, getattr(cols, f"segment_{kind}"), sums, now)
    if docs:
        cols.segment_pending.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}}, session=session)
    return len(docs) == FOLD_LIMIT


def fold_every(session: ClientSession | None, cols: Collections, now: dt.datetime) -> None:
    """Fold every pending document in the caller's transaction: what a rebuild or recount does before it
    empties the periods it recounts, whose pending increments it counts again."""
    while fold(session, cols, now):
        pass


def fold_all(client: MongoClient, cols: Collections) -> int:
    """Fold every pending document, FOLD_LIMIT per transaction (an idle consumer's last step); returns the
    number of transactions that folded some."""
    transactions = 0
    while cols.segment_pending.find_one({}, {"_id": 1}) is not None:
        with client.start_session() as session:
            session.with_transaction(lambda s: fold(s, cols, dt.datetime.now(UTC)),
                                     read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))
        transactions += 1
    return transactions


def _summed(updates: Iterable[Update]) -> list[Update]:
    """Increments of the same (period, field, value) added up, zeros kept (a correction's +1 and -1 leave
    the counter at 0, as applying them one by one does)."""
    sums: dict[tuple[dt.datetime, str, str], dict[str, int]] = {}
    for key, inc in updates:
        add_into(sums.setdefault(key, {}), inc)
    return list(sums.items())


def _packed(updates: Sequence[Update]) -> dict:
    """A kind's increments as stored: the counter names once, and per (period, field, value) the indexes of
    its names and its counts as packed arrays (a batch's ~2,000 counters in a third of the bytes a document
    of names and numbers takes, and as many times faster to write)."""
    names: dict[str, int] = {}
    rows = []
    for (hour, field, value), inc in updates:
        rows.append({"hour": hour, "field": field, "value": value,
                     "names": _bytes(array("I", [names.setdefault(name, len(names)) for name in inc])),
                     "counts": _bytes(array("q", inc.values()))})
    return {"names": list(names), "rows": rows}


def _unpacked(stored: Mapping) -> Iterator[Update]:
    names: Sequence[str] = stored["names"]
    for row in stored["rows"]:
        indexes, counts = _array("I", row["names"]), _array("q", row["counts"])
        yield (row["hour"], row["field"], row["value"]), {names[i]: n for i, n in zip(indexes, counts)}


def _bytes(values: array) -> Binary:
    if BIG_ENDIAN:
        values.byteswap()
    return Binary(values.tobytes())


def _array(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    if BIG_ENDIAN:
        values.byteswap()
    return values
