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
from collections.abc import Mapping
from typing import Any

from clara.predictions import PredictionTotals
from clara.rollups import Totals, local_day
from web.hours import HourRange, Span, grouped

HOURLY_UP_TO_DAYS = 2     # date ranges of up to this many days are shown per hour by default
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


def volume_body(span: Span, predictions: Mapping[Any, Any], reviews: Mapping[Any, Any],
                today: tuple[PredictionTotals | None, Totals | None], now: dt.datetime, recounting: bool) -> dict:
    """The /api/volume body. `predictions` and `reviews` map each period (a local day to its totals, or for an
    HourRange a rollup period's UTC start to its stored document) to what the rollups hold; `today` is today's
    totals of both kinds."""
    if isinstance(span, HourRange):
        held = grouped(span, predictions), grouped(span, reviews)
        volumes = [None if hour > now else Volume.of(_summed(PredictionTotals, held[0].get(hour)),
                                                     _summed(Totals, held[1].get(hour)))
                   for hour in span.periods]
    else:
        last_day = local_day(now, span.zone)
        volumes = [None if day > last_day else Volume.of(predictions.get(day), reviews.get(day))
                   for day in span.days]
    labels = [span.label(period) for period in span.periods]
    body: dict[str, Any] = {"range": span.to_json(), "by": span.unit, "periods": labels}
    for name in FIELDS:
        body[name] = [None if volume is None else getattr(volume, name) for volume in volumes]
    body["total"] = sum((volume for volume in volumes if volume is not None), Volume()).to_json()
    body["today"] = {"day": local_day(now, span.zone).isoformat(), "as_of": now.isoformat(),
                     **Volume.of(*today).to_json()}
    body["recounting"] = recounting
    return body


def _summed(kind, docs: list | None):
    return None if docs is None else kind.of(docs)
