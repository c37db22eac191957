"""Volume and review coverage: all predictions against the reviewed ones, per local day or per hour.

Both kinds of rollups are keyed by the rollup period of prediction (clara/periods.py: an hour, or a half
or quarter of one where the zone's offsets need it), so a day's or an hour's figures add up:

- all predictions (prediction rollups, counted at insert): `predictions`, of which `bad` broke the contract
  (set aside, never reviewable);
- reviewed predictions (review rollups, counted when reviewed): `reviews`, of which `rejected` were rejected
  without a class.

For a period, reviewed = reviews − rejected (a true class is known), pending = predictions − bad − reviews and
coverage = reviews / (reviews + pending). Pending never goes below zero: a review can be counted for a
prediction the prediction rollups hold as bad or in another hour (its writer fixed or moved the document
after the insert), and a recount empties hours before it fills them again (`recounting` says so). A period
after now has no value (null), never a zero; a period without valid predictions has no coverage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from clara.predictions import PredictionTotals
from clara.periods import periods_between
from clara.rollups import Totals, local_day
from web.errors import BadParameter
from web.params import DateRange

MAX_HOURLY_DAYS = 2       # ranges of up to this many days are shown per hour by default
GRANULARITIES = ("day", "hour")
HOUR = dt.timedelta(hours=1)
FIELDS = ("predictions", "bad", "reviewed", "rejected", "pending", "reviews", "coverage")


@dataclasses.dataclass(frozen=True)
class Volume:
    """One period's counts: predictions (bad ones included) and reviews (rejected-without-class included)."""

    predictions: int = 0
    bad: int = 0
    reviews: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, predictions: PredictionTotals | None, reviews: Totals | None) -> Volume:
        predictions = predictions or PredictionTotals()
        reviews = reviews or Totals()
        return cls(predictions.predictions, predictions.bad, reviews.reviews, sum(reviews.rejected.values()))

    def __add__(self, other: Volume) -> Volume:
        return Volume(self.predictions + other.predictions, self.bad + other.bad, self.reviews + other.reviews,
                      self.rejected + other.rejected)

    @property
    def reviewed(self) -> int:
        return self.reviews - self.rejected

    @property
    def pending(self) -> int:
        return max(self.predictions - self.bad - self.reviews, 0)

    @property
    def coverage(self) -> float | None:
        known = self.reviews + self.pending
        return self.reviews / known if known else None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def granularity(values: Mapping[str, str], days: DateRange) -> str:
    """The `by` parameter: "day" or "hour"; by default "hour" for ranges of up to MAX_HOURLY_DAYS days."""
    by = values.get("by", "hour" if len(days.days) <= MAX_HOURLY_DAYS else "day")
    if by not in GRANULARITIES:
        raise BadParameter("by", f"{by!r} is not a granularity; expected one of: {', '.join(GRANULARITIES)}")
    return by


def volume_body(days: DateRange, by: str, predictions: Mapping[Any, Any], reviews: Mapping[Any, Any],
                today: tuple[PredictionTotals | None, Totals | None], now: dt.datetime, recounting: bool) -> dict:
    """The /api/volume body. `predictions` and `reviews` map each period (a local day to its totals, or a UTC
    hour to its stored document) to what the rollups hold; `today` is today's totals of both kinds."""
    if by == "hour":
        start, end = days.bounds
        hours = periods_between(start, end, HOUR)
        held = _by_hour(start, predictions), _by_hour(start, reviews)
        volumes = [None if hour > now else Volume.of(_summed(PredictionTotals, held[0].get(hour)),
                                                     _summed(Totals, held[1].get(hour)))
                   for hour in hours]
        labels = [hour.isoformat() for hour in hours]
    else:
        last_day = local_day(now, days.zone)
        volumes = [None if day > last_day else Volume.of(predictions.get(day), reviews.get(day))
                   for day in days.days]
        labels = [day.isoformat() for day in days.days]
    body: dict[str, Any] = {"range": days.to_json(), "by": by, "periods": labels}
    for name in FIELDS:
        body[name] = [None if volume is None else getattr(volume, name) for volume in volumes]
    body["total"] = sum((volume for volume in volumes if volume is not None), Volume()).to_json()
    body["today"] = {"day": local_day(now, days.zone).isoformat(), "as_of": now.isoformat(),
                     **Volume.of(*today).to_json()}
    body["recounting"] = recounting
    return body


def _by_hour(start: dt.datetime, docs: Mapping[dt.datetime, Mapping[str, Any]]) -> dict[dt.datetime, list]:
    """Rollup documents (one per rollup period) grouped by the hour of the range they fall in; the range
    starts at a local midnight, so in a zone with half-hour offsets these are its local hours."""
    grouped: dict[dt.datetime, list] = defaultdict(list)
    for period, doc in docs.items():
        grouped[start + (period - start) // HOUR * HOUR].append(doc)
    return grouped


def _summed(kind, docs: list | None):
    return None if docs is None else kind.of(docs)
