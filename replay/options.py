"""What a replay was asked to do: the time range (UTC, half-open) and the mode, validated."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from replay.errors import UsageError

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)


def parse_moment(option: str, text: str, zone: ZoneInfo, *, end: bool) -> dt.datetime:
    """A date or datetime from the command line as an aware UTC datetime.

    Without an offset it is read in `zone`. A date means the start of that local day; as an end
    (`end=True`) it means the end of it, so `--to 2026-03-01` includes the whole day.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), zone)
        else:
            moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: expected a date (2026-03-01) or a datetime (2026-03-01T14:30, "
                         f"optionally with an offset such as +01:00 or Z)") from exc
    return moment.astimezone(UTC)


def ceil_hour(moment: dt.datetime) -> dt.datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """[start, end) of prediction time in UTC; None is open on that side."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def query(self) -> dict:
        """The source filter on `timestamp`; {} when the range is open on both sides."""
        bounds = {}
        if self.start is not None:
            bounds["$gte"] = self.start
        if self.end is not None:
            bounds["$lt"] = self.end
        return {"timestamp": bounds} if bounds else {}

    def full_hours(self) -> TimeRange | None:
        """The part made of whole UTC hours (a rollup hour is replaced only when wholly inside)."""
        start = None if self.start is None else ceil_hour(self.start)
        end = None if self.end is None else floor_hour(self.end)
        if start is not None and end is not None and start >= end:
            return None
        return TimeRange(start, end)

    def edges(self) -> list[TimeRange]:
        """The parts outside whole hours: a rebuild only backfills them."""
        full = self.full_hours()
        if full is None:
            return [self]
        parts = []
        if self.start is not None and full.start != self.start:
            parts.append(TimeRange(self.start, full.start))
        if self.end is not None and full.end != self.end:
            parts.append(TimeRange(full.end, self.end))
        return parts

    def contains(self, moment: dt.datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)

    def clip(self, hour: dt.datetime) -> TimeRange:
        """This range's part of one hour."""
        start = hour if self.start is None else max(hour, self.start)
        end = hour + HOUR if self.end is None else min(hour + HOUR, self.end)
        return TimeRange(start, end)

    def describe(self, zone: ZoneInfo) -> str:
        def show(moment: dt.datetime | None, open_text: str) -> str:
            return open_text if moment is None else moment.astimezone(zone).isoformat()
        return f"[{show(self.start, 'the beginning')}, {show(self.end, 'the end')})"


@dataclasses.dataclass(frozen=True)
class Options:
    """A validated replay request."""

    range: TimeRange
    rebuild: bool = False
    profiles: tuple[str, ...] = ()        # sinks to re-send the range's profiles to
    dry_run: bool = False
    log_interval: float = 10.0
    allow_shrink: bool = False            # a rebuild may drop the counts of reviews whose document is gone
    batch_size: int | None = None         # --batch-size: documents per backfill batch and per hours transaction

    def job_id(self) -> str:
        """Same arguments, same job: an interrupted run is resumed by running it again (--allow-shrink aside)."""
        key = repr((self.rebuild, self.range.start, self.range.end, sorted(self.profiles)))
        return "replay:" + hashlib.sha1(key.encode()).hexdigest()[:16]
