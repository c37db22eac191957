"""Rollup periods: the length of time one rollup document covers, chosen so local days are exact.

Rollups are keyed by the UTC start of their period. A local day of the configured zone is a union of
whole periods only when every UTC offset the zone uses is a multiple of the period, so the period is
the longest of 60, 30 and 15 minutes that divides them all: an hour for Europe/Madrid, half an hour for
Asia/Kolkata or Australia/Adelaide, a quarter of an hour for Asia/Kathmandu. Offsets are read from
2000 to 2100, the years a production prediction can carry (Liberia's -00:44:30 ended in 1972); a zone
with an offset that no quarter hour divides in that time (none in today's tz database) is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
CHOICES = (dt.timedelta(minutes=60), dt.timedelta(minutes=30), dt.timedelta(minutes=15))
FIRST_YEAR, LAST_YEAR = 2000, 2100


@functools.cache
def rollup_period(zone: ZoneInfo) -> dt.timedelta:
    """The longest period in CHOICES that divides every UTC offset of `zone`; ValueError if none does."""
    offsets = zone_offsets(zone)
    for period in CHOICES:
        if all(offset % period == dt.timedelta(0) for offset in offsets):
            return period
    odd = sorted(offset for offset in offsets if offset % CHOICES[-1])
    raise ValueError(f"its UTC offset {_offset_text(odd[0])} is not a whole number of quarter hours, "
                     f"so no rollup period makes its days exact")


def zone_offsets(zone: ZoneInfo) -> frozenset[dt.timedelta]:
    """Every UTC offset `zone` uses from FIRST_YEAR to LAST_YEAR, sampled daily (no offset in the tz
    database since 2000 lasts less than a day)."""
    moment, end = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=UTC), dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
    step, offsets = dt.timedelta(days=1), set()
    while moment < end:
        offsets.add(moment.astimezone(zone).utcoffset())
        moment += step
    return frozenset(offsets)


def period_start(moment: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """The UTC start of the period a moment falls in (rollups are keyed by it)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment - (moment - EPOCH) % period


def periods_between(start: dt.datetime, end: dt.datetime, period: dt.timedelta) -> list[dt.datetime]:
    """The starts of the periods in [start, end), both on period boundaries."""
    return [start + n * period for n in range((end - start) // period)]


def _offset_text(offset: dt.timedelta) -> str:
    sign, seconds = ("-", -offset.total_seconds()) if offset < dt.timedelta(0) else ("+", offset.total_seconds())
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
