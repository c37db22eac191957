"""Query parameters: unknown or repeated ones are refused, dates are local days in the configured zone.

Every failure is a BadParameter naming the parameter, which the error middleware turns into a 400.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from aiohttp import web

from clara.config import Config
from clara.rollups import day_bounds
from web.errors import BadParameter

DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(9998, 12, 31)
RANGE_PARAMETERS = ("from", "to")


@dataclasses.dataclass(frozen=True)
class DateRange:
    """Local days first..last inclusive, and the UTC instants [start, end) they cover."""

    first: dt.date
    last: dt.date
    zone: ZoneInfo
    unit = "day"

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return day_bounds(self.first, self.last, self.zone)

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def periods(self) -> list[dt.date]:
        """What a series over the range has one value for (web.hours.HourRange: its local hours)."""
        return self.days

    def label(self, day: dt.date) -> str:
        return day.isoformat()

    def to_json(self) -> dict:
        start, end = self.bounds
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "timezone": self.zone.key,
                "start": start.isoformat(), "end": end.isoformat()}


def query(request: web.Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters as a dict, refusing unknown and repeated ones."""
    allowed = tuple(allowed)
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            expected = f"expected one of: {', '.join(allowed)}" if allowed else "this endpoint takes none"
            raise BadParameter(name, f"unknown query parameter; {expected}")
        if name in values:
            raise BadParameter(name, "given more than once")
        values[name] = value
    return values


def default_range(config: Config, today: dt.date | None = None) -> DateRange:
    """The last web.default_range_days days, today included, in the configured zone."""
    zone = config.model.zone
    today = today or dt.datetime.now(zone).date()
    return DateRange(today - dt.timedelta(days=config.web.default_range_days - 1), today, zone)


def date_range(request: web.Request, config: Config) -> DateRange:
    """The from/to parameters (YYYY-MM-DD, inclusive), defaulting to the configured recent days."""
    return range_of(query(request, RANGE_PARAMETERS), config)


def range_of(values: dict[str, str], config: Config) -> DateRange:
    """The date range named by already-checked query values (see `query`); `date_range` for the rest."""
    default = default_range(config)
    given_first = _date("from", values["from"]) if "from" in values else None
    if "to" in values:
        last = _date("to", values["to"])
    elif given_first is not None:  # from alone: up to today, within the longest range, never before from
        longest = given_first + dt.timedelta(days=min(config.web.max_range_days - 1, (LATEST - given_first).days))
        last = max(given_first, min(default.last, longest))
    else:
        last = default.last
    first = given_first or max(last - dt.timedelta(days=config.web.default_range_days - 1), EARLIEST)
    if last < first:
        raise BadParameter("to", f"{last.isoformat()} is before from ({first.isoformat()})")
    span = (last - first).days + 1
    if span > config.web.max_range_days:
        raise BadParameter("to", f"the range {first.isoformat()}..{last.isoformat()} spans {span} days; "
                                 f"at most {config.web.max_range_days} (web.max_range_days)")
    return DateRange(first, last, config.model.zone)


def _date(name: str, text: str) -> dt.date:
    if not DATE.fullmatch(text):
        raise BadParameter(name, f"{text!r} is not a date; expected YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise BadParameter(name, f"{text!r} is not a calendar date: {exc}") from exc
    if not EARLIEST <= day <= LATEST:
        raise BadParameter(name, f"{text} is outside {EARLIEST.isoformat()}..{LATEST.isoformat()}")
    return day


def integer(values: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """An optional whole-number parameter within low..high."""
    if name not in values:
        return default
    text = values[name]
    if not re.fullmatch(r"\d{1,9}", text, re.ASCII):
        raise BadParameter(name, f"{text!r} is not a whole number; expected {low}..{high}")
    number = int(text)
    if not low <= number <= high:
        raise BadParameter(name, f"{number} is outside {low}..{high}")
    return number
