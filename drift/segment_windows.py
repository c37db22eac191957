"""Each segment value's live windows and reference periods, from one read of a field's segment rollups per kind.

A field's segment rollups of one kind (reviews or predictions: clara/segment_rollups.py) hold every value's
counters in one document per period, so a walk back from now's hour over that field's documents gives every
value's hours at once. The walk goes back until every value it met holds its last N (or the walk runs out of
documents) and every period a window of one of them needs is behind it: each value's rolling reference period,
today's and today's reference (drift.day_window), and `back_to` (the label-shift check's reference reviews,
which follow the prediction windows). With fixed reference dates, the part of that period the walk did not
reach is read once more, as one range. So each segment rollup document is read at most once per kind and
evaluation, whatever the number of values; a value without data in the span read (quiet since before every
other value's reference period) is not checked, and an alert of it stays as it is.

At most segments.max_values named values per field are checked, the busiest in the span read (by what the
kind counts), beside `unknown` and `other`; values admitted under an earlier, higher cap fold into `other`,
hour by hour, so a field's values still add up to the overall counts (as /metrics does: web/segment_metrics.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Set as AbstractSet
from typing import Any

from pymongo.collection import Collection

from clara.config import Config
from clara.predictions import PredictionTotals
from clara.rollups import Totals, hour_of
from clara.segments import BUCKETS, OTHER, field_range, key_value
from drift.windows import HOUR, Window, reference_bounds, today_so_far, valid_predictions

UTC = dt.timezone.utc
Counters = Mapping[str, Any]
_WALKED = {Totals: "reviews", PredictionTotals: "predictions"}   # what drift/windows.py's last-N walks need


def count_of(counters: Counters, kind: type) -> int:
    """What one period's counters hold: valid predictions, or reviews."""
    if kind is PredictionTotals:
        return counters.get("predictions", 0) - counters.get("bad", 0)
    return counters.get("reviews", 0)


@dataclasses.dataclass(frozen=True)
class FieldHours:
    """One field's segment rollups of one kind, as read: each value's (period, counters), newest first."""

    field: str
    kind: type                                  # Totals or PredictionTotals
    end: dt.datetime                            # the end of now's hour: every window ends here
    by_value: dict[str, list[tuple[dt.datetime, Counters]]]

    @property
    def named(self) -> set[str]:
        """The values checked on their own, buckets aside."""
        return set(self.by_value) - set(BUCKETS)

    def between(self, value: str, start: dt.datetime, end: dt.datetime) -> Totals | PredictionTotals:
        return self.kind.of(counters for hour, counters in self.by_value.get(value, ()) if start <= hour < end)

    def last_n_start(self, value: str, n: int) -> dt.datetime:
        """The start of the fewest whole periods, back from now, holding at least n (or all the value has)."""
        held, start = 0, self.end
        for hour, counters in self.by_value[value]:
            if not counters.get(_WALKED[self.kind], 0):   # as the overall walk: periods with none are skipped
                continue
            held += count_of(counters, self.kind)
            start = hour
            if held >= n:
                break
        return start


def read_field(collection: Collection, field: str, kind: type, n: int, now: dt.datetime, config: Config,
               back_to: dt.datetime | None = None, keep: AbstractSet[str] | None = None) -> FieldHours:
    """`field`'s segment rollups of one kind, walked back from now's hour as far as its values' windows need
    (see the module docstring), then capped at segments.max_values named values: the busiest, those in `keep`
    first (the ones the other kind kept, so that both kinds check the same values)."""
    end = hour_of(now) + HOUR
    floor = _day_floor(config, now) if config.drift.day_window else end
    floor = min(floor, back_to or floor)
    by_value: dict[str, list[tuple[dt.datetime, Counters]]] = defaultdict(list)
    held: dict[str, int] = defaultdict(int)
    filling: set[str] = set()
    lowest = end
    with collection.find(field_range(field, None, end)).sort("_id.hour", -1).batch_size(100) as cursor:
        for doc in cursor:
            hour = _utc(doc["_id"]["hour"])
            if not filling and hour < floor and by_value:
                break
            lowest = hour
            for key, counters in (doc.get("values") or {}).items():
                value = key_value(key)
                if value not in held:
                    filling.add(value)
                by_value[value].append((hour, counters))
                held[value] += count_of(counters, kind)
                if value in filling and held[value] >= n:
                    filling.discard(value)
                    floor = min(floor, _reference_floor(config, hour))
    if config.drift.reference_start:
        start, fixed_end, _ = reference_bounds(config, end)
        if start < lowest:
            for doc in collection.find(field_range(field, start, min(fixed_end, lowest))).sort("_id.hour", -1):
                for key, counters in (doc.get("values") or {}).items():
                    by_value[key_value(key)].append((_utc(doc["_id"]["hour"]), counters))
    return FieldHours(field, kind, end, capped(by_value, kind, config.segments.max_values, keep))


def capped(by_value: Mapping[str, list[tuple[dt.datetime, Counters]]], kind: type, cap: int,
           keep: AbstractSet[str] | None = None) -> dict[str, list[tuple[dt.datetime, Counters]]]:
    """At most `cap` named values (those in `keep` first, then the busiest) beside unknown and other; the rest
    folded into other."""
    def size(value: str) -> tuple[int, str]:
        return -sum(count_of(counters, kind) for _, counters in by_value[value]), value

    named = sorted((value for value in by_value if value not in BUCKETS), key=size)
    chosen = [value for value in named if value in (keep or ())][:cap]
    chosen += [value for value in named if value not in chosen][:cap - len(chosen)]
    if len(chosen) == len(named):
        return dict(by_value)
    kept = {value: list(by_value[value]) for value in [*chosen, *BUCKETS] if value in by_value}
    # Folded as they are: several counters of one period are summed wherever they are used (FieldHours.between).
    into_other = [value for value in named if value not in kept] + ([OTHER] if OTHER in by_value else [])
    folded = [pair for value in into_other for pair in by_value[value]]
    kept[OTHER] = sorted(folded, key=lambda pair: pair[0], reverse=True)
    return kept


def live_windows(hours: FieldHours, n: int, now: dt.datetime, config: Config) -> dict[str, list[tuple[Window, Window]]]:
    """Each value's live windows (its last N; today so far when drift.day_window and it has any) with their
    reference windows, of the kind read."""
    found: dict[str, list[tuple[Window, Window]]] = {}
    day, day_start, day_end = today_so_far(config, now)
    for value in hours.by_value:
        start = hours.last_n_start(value, n)
        last_n = hours.between(value, start, hours.end)
        if not _count(last_n):
            continue
        windows = [Window("last_n", f"the last {_count(last_n):,} {_unit(last_n)}", start, hours.end, last_n)]
        today = hours.between(value, day_start, day_end) if config.drift.day_window else None
        if today is not None and _count(today):
            windows.append(Window("day", day.isoformat(), day_start, day_end, today))
        found[value] = [(window, reference_of(hours, value, window, config)) for window in windows]
    return found


def reference_of(hours: FieldHours, value: str, window: Window, config: Config) -> Window:
    """The window's reference period, of the same value and kind."""
    start, end, label = reference_bounds(config, window.start)
    return Window("reference", label, start, end, hours.between(value, start, end))


def _count(totals: Totals | PredictionTotals) -> int:
    return valid_predictions(totals) if isinstance(totals, PredictionTotals) else totals.reviews


def _unit(totals: Totals | PredictionTotals) -> str:
    return "predictions" if isinstance(totals, PredictionTotals) else "reviews"


def _reference_floor(config: Config, window_start: dt.datetime) -> dt.datetime:
    """The earliest period a window starting at window_start needs: its rolling reference's start (a fixed
    reference is read on its own)."""
    return window_start if config.drift.reference_start else reference_bounds(config, window_start)[0]


def _day_floor(config: Config, now: dt.datetime) -> dt.datetime:
    return _reference_floor(config, today_so_far(config, now)[1])


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
