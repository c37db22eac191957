"""What CLARA's counted collection holds for the hours a rebuild replaces, read-only.

A rebuild recounts each hour from the documents predicted in it. A review whose document is gone (a
TTL index, a user deleting old predictions) happened all the same: the consumer ignores deletes and
keeps its count, and a recount of what is left would silently erase it. So before writing anything,
`--rebuild` counts the range's entries whose document no longer exists and refuses to drop them
unless `--allow-shrink` is given. The same pass counts the hours that hold entries (rebuilt too, even
with no document left in them) and the entries whose document is now predicted outside the range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Mapping

from clara.config import Config
from clara.db import Collections
from clara.rollups import local_day
from replay.options import TimeRange

# Entries checked per look-up of their documents (by _id, in one query).
CHUNK = 10_000


@dataclasses.dataclass
class CountedInRange:
    """Counted entries of a rebuilt range, per hour of the count: all of them, and those whose document is gone."""

    hours: Counter = dataclasses.field(default_factory=Counter)
    gone: Counter = dataclasses.field(default_factory=Counter)
    moved: int = 0   # the document exists but is now predicted outside the range (counted for a dry run)

    @property
    def gone_reviews(self) -> int:
        return sum(self.gone.values())


def hour_filter(phase: TimeRange) -> dict:
    """The counted collection's filter for entries counted in the range's hours."""
    query = phase.query()
    return {"hour": query["timestamp"]} if query else {}


def check_counted(cols: Collections, phase: TimeRange, *, moved: bool = False, chunk: int = CHUNK) -> CountedInRange:
    """One pass over the range's counted entries, looking their documents up by _id `chunk` at a time.

    Without `moved` the look-up reads the _id index only (about twice as fast) and `moved` stays 0.
    """
    result = CountedInRange()
    entries: list[Mapping] = []
    for entry in itertools.chain(cols.counted.find(hour_filter(phase), {"hour": 1}, batch_size=chunk), [None]):
        if entry is not None:
            entries.append(entry)
        if entries and (entry is None or len(entries) == chunk):
            _check(cols, phase, entries, result, moved)
            entries = []
    return result


def _check(cols: Collections, phase: TimeRange, entries: list[Mapping], result: CountedInRange, moved: bool) -> None:
    predicted = {doc["_id"]: doc.get("timestamp") for doc in cols.source.find(
        {"_id": {"$in": [entry["_id"] for entry in entries]}}, {"timestamp": 1} if moved else {"_id": 1})}
    for entry in entries:
        result.hours[entry["hour"]] += 1
        if entry["_id"] not in predicted:
            result.gone[entry["hour"]] += 1
        elif moved and not (isinstance(at := predicted[entry["_id"]], dt.datetime) and phase.contains(at)):
            result.moved += 1


def gone_text(gone: Mapping[dt.datetime, int], config: Config) -> str:
    """'1,234 reviews counted in 56 hours over 4 days (2026-03-01 .. 2026-03-04, Europe/Madrid)'."""
    days = sorted({local_day(hour, config.model.zone) for hour, n in gone.items() if n})
    hours = sum(1 for n in gone.values() if n)
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]} .. {days[-1]}"
    return (f"{sum(gone.values()):,} {_plural(sum(gone.values()), 'review')} counted in {hours:,} "
            f"{_plural(hours, 'hour')} over {len(days)} {_plural(len(days), 'day')} ({span}, {config.model.timezone})")


def shrink_refusal(gone: Mapping[dt.datetime, int], config: Config) -> str:
    """Why a rebuild stops before writing anything, and the way on."""
    return (f"rebuild would remove {gone_text(gone, config)} whose documents are gone (deleted, e.g. by a TTL "
            f"index); their counts are history. Pass --allow-shrink to rebuild anyway")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
