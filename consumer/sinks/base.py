"""What every sink shares: the outbox entry it delivers, the protocol it follows, the errors it raises."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from clara.errors import ClaraError


class SinkError(ClaraError):
    """A sink could not deliver an outbox entry."""


class TransientSinkError(SinkError):
    """Delivery failed for now (outage, timeout, throttling); the entry stays pending and is retried."""

    def __init__(self, reason: str, *, retry_after: float | None = None, maybe_delivered: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class PermanentSinkError(SinkError):
    """The sink refused the entry for good (a 4xx, an unreadable profile); it goes to dead-letter state."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """One profile waiting in the outbox: a batch's reviews of one dataset hour."""

    id: str
    batch_id: str
    hour: dt.datetime
    profile: bytes
    rows: int

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OutboxEntry:
        hour = doc["hour"]
        hour = hour.replace(tzinfo=dt.timezone.utc) if hour.tzinfo is None else hour.astimezone(dt.timezone.utc)
        return cls(str(doc["_id"]), str(doc["batch_id"]), hour, bytes(doc["profile"]), int(doc.get("rows", 0)))


@dataclasses.dataclass(frozen=True)
class Delivered:
    """What a successful delivery reports back."""

    possible_duplicate: bool = False  # an earlier attempt may have arrived too (its answer was lost)
    detail: str = ""


class Sink(Protocol):
    """A destination for profiles; `deliver` is idempotent per entry or says when it may not be."""

    name: str

    def deliver(self, entry: OutboxEntry) -> Delivered:
        """Deliver one entry; raise TransientSinkError or PermanentSinkError when it cannot."""
        ...

    def retry_delay(self, attempts: int) -> float:
        """Seconds before an entry that failed `attempts` times in a row is tried again."""
        ...
