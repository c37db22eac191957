"""The volume figures of raw documents, counted without clara's parser, for the web tests to compare with."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping

UTC = dt.timezone.utc


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
