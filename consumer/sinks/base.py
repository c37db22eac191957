"""What every sink shares: the outbox entry it delivers, the protocol it follows, the errors it raises."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from whylogs.core import DatasetProfileView

from clara.errors import ClaraError


class SinkError(ClaraError):
    """A sink could not deliver outbox entries."""


class TransientSinkError(SinkError):
    """Delivery failed for now (outage, timeout, throttling); the entry stays pending and is retried."""

    def __init__(self, reason: str, *, retry_after: float | None = None, maybe_delivered: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class PermanentSinkError(SinkError):
    """The sink refused for good (a 4xx, an unreadable profile); the entries go to dead-letter state."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """One outbox entry: a batch's reviews of one dataset hour, as profile rows (or, in entries written
    before rows, as serialized profile bytes)."""

    id: str
    batch_id: str
    hour: dt.datetime
    rows: int
    columns: Mapping[str, Any] | None = None
    profile: bytes | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OutboxEntry:
        hour = doc["hour"]
        profile = doc.get("profile")
        return cls(str(doc["_id"]), str(doc.get("batch_id", "")), hour, int(doc.get("rows", 0)), doc.get("columns"),
                   None if profile is None else bytes(profile))


@dataclasses.dataclass(frozen=True)
class Delivered:
    """What a successful delivery reports back."""

    possible_duplicate: bool = False  # an earlier attempt may have arrived too (its answer was lost)
    detail: str = ""


class Sink(Protocol):
    """A destination for profiles, which the drain hands one merged profile per prediction hour."""

    name: str
    performance: bool         # whether the profiles it gets need model performance metrics
    interval_seconds: float   # entries wait until the oldest is this old, then all go at once
    exclusive: bool           # one drainer at a time (consumer.sinks.drain_lease)

    def held(self, hour: dt.datetime) -> frozenset[str]:
        """Ids of entries the sink already holds for `hour` whose acknowledgement may have been lost."""
        ...

    def deliver(self, hour: dt.datetime, view: DatasetProfileView, entry_ids: Sequence[str],
                segments: Mapping[tuple[str, str], DatasetProfileView] | None = None) -> Delivered:
        """Deliver the hour's profile of `entry_ids` (and, with segments.fields, one profile per segment field
        and value); raise TransientSinkError or PermanentSinkError when it cannot."""
        ...

    def retry_delay(self, attempts: int) -> float:
        """Seconds before entries that failed `attempts` times in a row are tried again."""
        ...
