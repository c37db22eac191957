"""Prediction rollups for web tests, counted by the consumer's own batch as if each document's insert
event had just arrived (consumer.batch.commit_batch with `inserted`), and counts from the raw documents."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping

from bson import Timestamp

from clara.config import Config
from clara.db import Collections
from consumer.batch import commit_batch
from consumer.predictions import Inserted

UTC = dt.timezone.utc


def count_inserts(client, cols: Collections, config: Config, docs: Iterable[Mapping]) -> None:
    """Count `docs` (already in the source collection, with their _id) into the prediction rollups."""
    inserted = [Inserted(doc, Timestamp(1, 1)) for doc in docs]
    if inserted:
        commit_batch(client, cols, config, [], sinks=(), inserted=inserted)


def is_bad(doc: Mapping, n_classes: int) -> bool:
    """The contract, checked independently of clara.records: what makes a document with a timestamp bad."""
    def class_id(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n_classes
    confidence = doc.get("output_confidence")
    validated = doc.get("output_validated")
    return (not class_id(doc.get("output_prediction"))
            or (confidence is not None and not 0 <= confidence <= 1)
            or (validated is not None and not isinstance(validated, bool) and not class_id(validated)))


def expected_volume(docs: Iterable[Mapping], n_classes: int) -> Counter:
    """What the volume figures of a set of raw documents are: predictions, bad, reviewed, rejected, pending."""
    counts: Counter = Counter()
    for doc in docs:
        counts["predictions"] += 1
        if is_bad(doc, n_classes):
            counts["bad"] += 1
        elif doc.get("output_validated") is False:
            counts["rejected"] += 1
        elif doc.get("output_validated") is None:
            counts["pending"] += 1
        else:
            counts["reviewed"] += 1
    return counts


def utc_hour(doc: Mapping) -> dt.datetime:
    timestamp = doc["timestamp"]
    timestamp = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    return timestamp.replace(minute=0, second=0, microsecond=0)
