"""Hour-precise ranges (`from=2026-11-30T19:00&to=2026-12-01T19:00`) and series per local hour.

A value with a time is an instant: local time in the configured zone, or with its own offset (`Z`, `+05:30`);
it must start a local hour of the zone. Such a range is [from, to): `to` is where it ends, not its last
hour, and it spans at most MAX_HOURLY_DAYS days. A series per hour (`by=hour`) is allowed for such ranges
and for date ranges of up to MAX_HOURLY_DAYS days, which are then read as the hours of those whole days.

Rollups are keyed by the UTC start of their period (clara.periods: 60, 30 or 15 minutes, dividing every
offset of the zone), so a local hour is a union of whole periods and its totals are their sum: exact. An
hour range is read from the rollup documents themselves, straight from MongoDB on every request (at most
MAX_HOURLY_DAYS × 96 documents of each kind): what a request reads is what was stored when it was made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from clara.config import Config
from clara.db import Collections
from clara.rollups import UTC
from web.errors import BadParameter
from web.params import DATE, EARLIEST, LATEST, DateRange, range_of

MAX_HOURLY_DAYS = 7
HOUR = dt.timedelta(hours=1)
GRANULARITIES = ("day", "hour")
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?", re.ASCII)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class HourRange:
    """The local hours from `start` (UTC, a local hour's start) up to `end` (excluded)."""

    start: dt.datetime
    end: dt.datetime
    zone: ZoneInfo
    unit = "hour"

    @classmethod
    def of_days(cls, days: DateRange) -> HourRange:
        return cls(*days.bounds, days.zone)

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start, self.end

    @property
    def periods(self) -> list[dt.datetime]:
        """The UTC start of each local hour (an offset of the zone is a whole number of quarter hours, so
        whole hours from a local hour's start are local hours)."""
        return [self.start + n * HOUR for n in range((self.end - self.start) // HOUR)]

    @property
    def first(self) -> dt.date:
        """The local day the range starts on (a reference period of whole days ends the day before)."""
        return self.start.astimezone(self.zone).date()

    def whole_days(self) -> DateRange | None:
        """The local days the range is exactly made of, if it is."""
        first, last = self.first, (self.end - HOUR).astimezone(self.zone).date()
        days = DateRange(first, last, self.zone)
        return days if days.bounds == self.bounds else None

    def label(self, hour: dt.datetime) -> str:
        return hour.isoformat()

    def hour_of(self, moment: dt.datetime) -> dt.datetime:
        return self.start + (moment - self.start) // HOUR * HOUR

    def to_json(self) -> dict:
        """As DateRange's, `from` and `to` written as the local times they were given as."""
        return {"from": self._local(self.start), "to": self._local(self.end), "timezone": self.zone.key,
                "start": self.start.isoformat(), "end": self.end.isoformat()}

    def _local(self, moment: dt.datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")


Span = DateRange | HourRange


def span_of(values: Mapping[str, str], config: Config) -> Span:
    """The range named by checked query values: whole local days, or hour-precise when `from` has a time."""
    if not any(MOMENT.fullmatch(values.get(name, "")) for name in ("from", "to")):
        return range_of(values, config)
    zone = config.model.zone
    for name in ("from", "to"):
        if name not in values:
            raise BadParameter(name, "missing: an hour-precise range needs both from and to (YYYY-MM-DDTHH:MM)")
        if DATE.fullmatch(values[name]):
            raise BadParameter(name, f"{values[name]} is a date while the other end has a time; give both as "
                                     "dates (YYYY-MM-DD) or both as times (YYYY-MM-DDTHH:MM)")
    start, end = _moment("from", values["from"], zone), _moment("to", values["to"], zone)
    if end <= start:
        raise BadParameter("to", f"{values['to']} is not after from ({values['from']}); to ends the range, excluded")
    if end - start > MAX_HOURLY_DAYS * dt.timedelta(days=1):
        raise BadParameter("to", f"the hour-precise range {values['from']}..{values['to']} spans "
                                 f"{(end - start) / HOUR:g} hours; at most {MAX_HOURLY_DAYS * 24} "
                                 f"({MAX_HOURLY_DAYS} days)")
    return HourRange(start, end, zone)


def series_span(values: Mapping[str, str], config: Config, hourly_up_to: int = 0) -> Span:
    """`span_of` with the `by` parameter applied: a series per local day (the default for date ranges longer
    than `hourly_up_to` days) or per local hour (the only choice for hour-precise ranges)."""
    span = span_of(values, config)
    hourly = isinstance(span, HourRange)
    by = values.get("by", "hour" if hourly or len(span.days) <= hourly_up_to else "day")
    if by not in GRANULARITIES:
        raise BadParameter("by", f"{by!r} is not a granularity; expected one of: {', '.join(GRANULARITIES)}")
    if hourly and by == "day":
        raise BadParameter("by", "an hour-precise range is shown per hour; give from and to as dates "
                                 "(YYYY-MM-DD) for a series per day")
    if by == "hour" and not hourly:
        if len(span.days) > MAX_HOURLY_DAYS:
            raise BadParameter("by", f"a series per hour covers at most {MAX_HOURLY_DAYS} days; "
                                     f"{span.first}..{span.last} spans {len(span.days)}")
        return HourRange.of_days(span)
    return span


def _moment(name: str, text: str, zone: ZoneInfo) -> dt.datetime:
    if not MOMENT.fullmatch(text):
        raise BadParameter(name, f"{text!r} is neither a date nor a time; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                                 "(local, or with an offset such as +01:00)")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadParameter(name, f"{text!r} is not a calendar time: {exc}") from exc
    if not EARLIEST <= moment.date() <= LATEST:
        raise BadParameter(name, f"{text} is outside {EARLIEST.isoformat()}..{LATEST.isoformat()}")
    if moment.tzinfo is None:
        local = moment.replace(tzinfo=zone)   # an hour given twice (clocks going back): the first
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
            raise BadParameter(name, f"{text} does not exist in {zone.key} (the clocks skip it)")
        moment = local
    moment = moment.astimezone(UTC)
    if moment.astimezone(zone).minute:
        raise BadParameter(name, f"{text} does not start a local hour in {zone.key}; an hour range runs "
                                 "from one local hour to another")
    return moment


async def documents(collection, hours: HourRange) -> dict[dt.datetime, dict[str, Any]]:
    """The stored rollup document of every period of the range, by its UTC start, as stored now."""
    start, end = hours.bounds
    return {doc["_id"]: doc
            for doc in await collection.find({"_id": {"$gte": start, "$lt": end}}).to_list(None)}


def grouped(hours: HourRange, docs: Mapping[dt.datetime, Any]) -> dict[dt.datetime, list]:
    """Rollup documents (one per period) grouped by the local hour of the range they fall in."""
    by_hour: dict[dt.datetime, list] = defaultdict(list)
    for period, doc in sorted(docs.items()):
        by_hour[hours.hour_of(period)].append(doc)
    return by_hour


def summed(hours: HourRange, docs: Mapping[dt.datetime, Any],
           summing: Callable[[Iterable[dict]], T]) -> dict[dt.datetime, T]:
    """The totals of each local hour that has rollups (an hour without any is absent, like a day)."""
    return {hour: summing(group) for hour, group in grouped(hours, docs).items()}


async def per_hour(collections: Collections, role: str, hours: HourRange,
                   summing: Callable[[Iterable[dict]], T]) -> dict[dt.datetime, T]:
    """The totals per local hour of one kind of rollup (`role`: a clara.db.Collections field), summed in
    the executor."""
    docs = await documents(getattr(collections, role), hours)
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(summed, hours, docs, summing))


async def by_period(cache, collections: Collections, span: Span) -> tuple[dict, int | None]:
    """The totals per local day of a web.rollup_cache.RollupCache and their version, or per local hour of an
    HourRange, read from MongoDB with no version (None: nothing to keep an answer by)."""
    if isinstance(span, HourRange):
        return await per_hour(collections, cache.role, span, cache.summed), None
    return await cache.by_day_versioned(collections, span)


