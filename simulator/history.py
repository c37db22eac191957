"""Bulk mode: days of history written fast, reviewed documents already carrying their review.

`history_documents` is pure (same arguments, same documents); `write_history` inserts them in chunks.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from pymongo.collection import Collection

from simulator.generator import PredictionStream, Settings

DAY = dt.timedelta(days=1)


def history_documents(settings: Settings, seed: int | str, end: dt.datetime, days: int,
                      per_day: int) -> Iterator[dict[str, Any]]:
    """`per_day` documents for each of the `days` days before `end`, in timestamp order.

    A review whose time would fall after `end` has not happened yet: that document stays pending.
    Times are whole milliseconds, as MongoDB stores them.
    """
    stream = PredictionStream(settings, seed)
    times = random.Random(f"{seed}/times")
    start = end - days * DAY
    for day in range(days):
        day_start = start + day * DAY
        for seconds in sorted(times.random() * 86400.0 for _ in range(per_day)):
            timestamp = _millis(day_start + dt.timedelta(seconds=seconds))
            simulated = stream.next(timestamp, (timestamp - start).total_seconds())
            document = simulated.document
            if simulated.review is not None:
                reviewed_at = _millis(timestamp + dt.timedelta(seconds=simulated.review_delay))
                if reviewed_at <= end:
                    document |= simulated.review | {"timestamp_validated": reviewed_at}
            yield document


def write_history(source: Collection, documents: Iterable[dict[str, Any]], chunk_size: int = 5000,
                  progress: Callable[[int], None] | None = None) -> int:
    """Insert `documents` with insert_many, `chunk_size` at a time; returns how many were written."""
    written = 0
    iterator = iter(documents)
    while chunk := list(islice(iterator, chunk_size)):
        source.insert_many(chunk, ordered=False)
        written += len(chunk)
        if progress is not None:
            progress(written)
    return written


def _millis(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
