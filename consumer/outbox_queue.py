"""Queueing profiles in the outbox: what a batch leaves for the sinks, written with the batch's other effects.

The entries are written inside the batch's transaction (or its journal on a standalone server), so a
review's profile rows can never be lost or queued twice; the sinks drain them afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo import InsertOne
from pymongo.client_session import ClientSession

from clara.config import Config
from clara.db import Collections
from clara.records import Record
from consumer.profiles import profiles_by_hour


def sink_names(config: Config) -> tuple[str, ...]:
    """The sinks every new outbox entry waits for, from configuration."""
    return (("local",) if config.profiles.local_store else ()) + (("whylabs",) if config.whylabs.enabled else ())


def outbox_documents(config: Config, batch_id: str, records: Sequence[Record], sinks: Sequence[str],
                     now: dt.datetime) -> list[dict[str, Any]]:
    """The outbox entries for a batch's newly counted records (none when no sink is configured)."""
    profiles = profiles_by_hour(records, config.model.classes) if sinks else {}
    return [outbox_entry(batch_id, hour, data, rows, sinks, now) for hour, (data, rows) in profiles.items()]


def queue_profiles(session: ClientSession, cols: Collections, config: Config, batch_id: str,
                   records: Sequence[Record], sinks: Sequence[str], now: dt.datetime) -> int:
    """Write the outbox entries for `records` in the caller's transaction; returns how many."""
    documents = outbox_documents(config, batch_id, records, sinks, now)
    if documents:
        cols.outbox.bulk_write([InsertOne(doc) for doc in documents], ordered=False, session=session)
    return len(documents)


def outbox_entry(batch_id: str, hour: dt.datetime, profile: bytes, rows: int, sinks: Sequence[str],
                 now: dt.datetime) -> dict[str, Any]:
    """An outbox document: one hour's profile from one batch, waiting for every sink in `pending`."""
    return {"_id": f"{batch_id}:{hour:%Y%m%dT%H}", "batch_id": batch_id, "hour": hour, "profile": Binary(profile),
            "rows": rows, "created_at": now, "pending": list(sinks), "delivered": {}, "attempts": {},
            "next_attempt_at": {}, "dead": {}}
