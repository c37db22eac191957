"""Queueing profile rows in the outbox: what a batch leaves for the sinks, written with the batch's other effects.

The entries are written inside the batch's transaction (or its journal on a standalone server), so a
review's profile rows can never be lost or queued twice; the sinks drain them afterwards. An entry holds
the rows of one prediction hour, column by column and as numbers (class ids, not names): no whylogs
profile is built here, so a batch spanning a thousand hours commits as fast as one spanning one. The
drain builds the profiles from the rows, outside any transaction (consumer.sinks).

    {_id: "<batch id>:<YYYYMMDDTHH>[:<part>]", batch_id, hour, rows: <count>,
     columns: {predicted: [int], truth: [int | null], confidence: [float | null],
               latency_seconds: [float | null], segments: {"<field>": [str]}},
     created_at, pending: [sink], delivered: {sink: at}, attempts: {sink: n}, next_attempt_at: {sink: at},
     dead: {sink: {reason, at}}}

`columns.segments` (only with segments.fields configured) holds each row's segment value per field, as
its review was counted (clara.segments), for the sinks' segmented profiles.
Entries written before this format hold `profile` (serialized whylogs bytes) instead of `columns`; the
sinks still deliver them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pymongo import InsertOne
from pymongo.client_session import ClientSession

from clara.config import Config
from clara.db import Collections
from clara.records import Record
from clara.rollups import hour_of
from clara.segments import UNKNOWN, Segment

# One entry stays far below MongoDB's 16 MiB document limit (about 50 bytes a row): an hour re-sent
# whole by replay is split into parts of this many rows.
MAX_ROWS_PER_ENTRY = 20_000
# The state document where the drain keeps its upkeep time and the count of dead entries it deleted.
OUTBOX_STATE_ID = "outbox"


@dataclasses.dataclass
class HourRows:
    """The profile rows of reviewed predictions, column by column: what the drain profiles."""

    predicted: list[int] = dataclasses.field(default_factory=list)
    truth: list[int | None] = dataclasses.field(default_factory=list)          # None: rejected without a class
    confidence: list[float | None] = dataclasses.field(default_factory=list)
    latency_seconds: list[float | None] = dataclasses.field(default_factory=list)
    segments: dict[str, list[str]] = dataclasses.field(default_factory=dict)   # field -> each row's value

    COLUMNS = ("predicted", "truth", "confidence", "latency_seconds")

    def __len__(self) -> int:
        return len(self.predicted)

    def append(self, record: Record, segment: Mapping[str, str] | None = None) -> None:
        self.predicted.append(record.predicted)
        self.truth.append(record.truth)
        self.confidence.append(record.confidence)
        self.latency_seconds.append(record.latency_seconds)
        for field, value in (segment or {}).items():
            self.segments.setdefault(field, []).append(value)

    def extend(self, other: HourRows) -> None:
        """Add `other`'s rows; segment columns only when both have the same fields (or this has no rows)."""
        if not len(self):
            self.segments = {field: [] for field in other.segments}
        if self.segments.keys() != other.segments.keys():
            raise ValueError("rows with other segment fields cannot share segment columns")
        for name in self.COLUMNS:
            getattr(self, name).extend(getattr(other, name))
        for field, values in other.segments.items():
            self.segments[field] += values

    def parts(self, size: int) -> Iterator[HourRows]:
        for start in range(0, len(self), size):
            yield self.select(range(start, min(start + size, len(self))))

    def select(self, rows: Iterable[int]) -> HourRows:
        """The rows at these positions."""
        rows = list(rows)
        return HourRows(*([getattr(self, name)[i] for i in rows] for name in self.COLUMNS),
                        {field: [values[i] for i in rows] for field, values in self.segments.items()})

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {name: getattr(self, name) for name in self.COLUMNS}
        if self.segments:
            doc["segments"] = self.segments
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> HourRows:
        """The rows of an entry's `columns`; ValueError when they are not four columns (and segment columns)
        of one length."""
        try:
            rows = cls(*(list(doc[name]) for name in cls.COLUMNS),
                       {str(field): list(values) for field, values in (doc.get("segments") or {}).items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the entry's columns are malformed: {exc!r}") from exc
        columns = [getattr(rows, name) for name in cls.COLUMNS] + list(rows.segments.values())
        if len({len(column) for column in columns}) != 1:
            raise ValueError("the entry's columns differ in length")
        return rows


def rows_by_hour(records: Iterable[Record], segments: Mapping[Any, Segment] | None = None,
                 fields: Sequence[str] = ()) -> dict[dt.datetime, HourRows]:
    """The reviewed records' rows per prediction hour, hours in order; with `segments` (by record id, as
    counted), each row's value of every one of `fields` too."""
    by_hour: dict[dt.datetime, HourRows] = {}
    for record in records:
        if record.reviewed:
            segment = None
            if segments is not None and fields:
                counted = dict(segments.get(record.id, ()))
                segment = {field: counted.get(field, UNKNOWN) for field in sorted(fields)}
            by_hour.setdefault(hour_of(record.timestamp), HourRows()).append(record, segment)
    return dict(sorted(by_hour.items()))


def sink_names(config: Config) -> tuple[str, ...]:
    """The sinks every new outbox entry waits for, from configuration."""
    return (("local",) if config.profiles.local_store else ()) + (("whylabs",) if config.whylabs.enabled else ())


def outbox_documents(config: Config, batch_id: str, records: Sequence[Record], sinks: Sequence[str],
                     now: dt.datetime, segments: Mapping[Any, Segment] | None = None) -> list[dict[str, Any]]:
    """The outbox entries for a batch's newly counted records (none when no sink is configured); with
    `segments` (what each record was counted under) and segments.fields, the rows' segment columns."""
    if not sinks:
        return []
    return [outbox_entry(batch_id, hour, part, sinks, now, index)
            for hour, rows in rows_by_hour(records, segments, config.segments.fields).items()
            for index, part in enumerate(rows.parts(MAX_ROWS_PER_ENTRY))]


def queue_profiles(session: ClientSession, cols: Collections, config: Config, batch_id: str,
                   records: Sequence[Record], sinks: Sequence[str], now: dt.datetime,
                   segments: Mapping[Any, Segment] | None = None) -> int:
    """Write the outbox entries for `records` in the caller's transaction; returns how many."""
    documents = outbox_documents(config, batch_id, records, sinks, now, segments)
    if documents:
        cols.outbox.bulk_write([InsertOne(doc) for doc in documents], ordered=False, session=session)
    return len(documents)


def outbox_entry(batch_id: str, hour: dt.datetime, rows: HourRows, sinks: Sequence[str], now: dt.datetime,
                 part: int = 0) -> dict[str, Any]:
    """An outbox document: one hour's rows from one batch, waiting for every sink in `pending`."""
    entry_id = f"{batch_id}:{hour:%Y%m%dT%H}" + (f":{part}" if part else "")
    return {"_id": entry_id, "batch_id": batch_id, "hour": hour, "rows": len(rows), "columns": rows.to_doc(),
            "created_at": now, "pending": list(sinks), "delivered": {}, "attempts": {}, "next_attempt_at": {},
            "dead": {}}
