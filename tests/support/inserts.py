"""Count documents into the prediction rollups as the consumer does when their insert events arrive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bson import Timestamp

from clara.config import Config
from clara.db import Collections
from consumer.batch import commit_batch
from consumer.predictions import Inserted


def count_inserts(client, cols: Collections, config: Config, docs: Iterable[Mapping]) -> None:
    """Count `docs` (already in the source collection, with their _id) through consumer.batch.commit_batch, as
    one batch of insert events (no recount under way: every one is counted)."""
    inserted = [Inserted(doc, Timestamp(1, 1)) for doc in docs]
    if inserted:
        commit_batch(client, cols, config, [], sinks=(), inserted=inserted)
