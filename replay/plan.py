"""What a replay selects, read-only: the documents, hours, days and sinks each phase will touch.

The same selection drives `--dry-run` (printed, nothing written) and the real run (progress totals).
Phases, in order: a rebuild first moves documents counted in an hour of the range but predicted
outside it (`moved`); then unlogged reviews are backfilled through the consumer's batches (the
whole range, or only the parts of a rebuild's range outside whole hours); then each hour is one
transaction: rebuilt (rollup replaced) and/or its profile re-sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Sequence

from clara.config import Config
from clara.db import Collections
from clara.rollups import local_day
from consumer.outbox_queue import sink_names
from consumer.catchup import ALL_REVIEWS, UNLOGGED_REVIEWS
from replay.options import Options, TimeRange, floor_hour

DAYS_SHOWN = 31


def backfill_filter(options: Options) -> dict | None:
    """The `query` given to catch_up (which adds "reviewed, not logged"); None: nothing to backfill."""
    if not options.rebuild:
        return options.range.query()
    edges = options.range.edges()
    return {"$or": [edge.query() for edge in edges]} if edges else None


def moved_filter(options: Options) -> dict | None:
    """Documents counted (logged_as) in a rebuilt hour but predicted outside the rebuilt hours."""
    full = options.range.full_hours() if options.rebuild else None
    if full is None or not full.query():
        return None
    return {"logged": True, "logged_as.hour": full.query()["timestamp"], "$nor": [full.query()]}


def hour_phase(options: Options) -> TimeRange | None:
    """The range whose hours get one transaction each (rebuild and/or profile re-send)."""
    if options.rebuild:
        return options.range.full_hours()
    return options.range if options.profiles else None


def dated(query: dict) -> dict:
    return query if "timestamp" in query else query | {"timestamp": {"$type": "date"}}


def by_hour(cols: Collections, match: dict) -> dict[dt.datetime, int]:
    """Matching documents per UTC prediction hour (one server-side pass)."""
    pipeline = [{"$match": dated(match)},
                {"$group": {"_id": {"$dateTrunc": {"date": "$timestamp", "unit": "hour"}}, "n": {"$sum": 1}}},
                {"$sort": {"_id": 1}}]
    return {doc["_id"]: doc["n"] for doc in cols.source.aggregate(pipeline)}


@dataclasses.dataclass
class Selection:
    options: Options
    backfill_sinks: tuple[str, ...]
    backfill: dict[dt.datetime, int] = dataclasses.field(default_factory=dict)
    hours: dict[dt.datetime, int] = dataclasses.field(default_factory=dict)   # hour phase: reviews per hour
    moved: int = 0
    unparseable: int = 0   # backfill documents whose timestamp is not a date (set aside)

    @property
    def total(self) -> int:
        return sum(self.backfill.values()) + self.unparseable + sum(self.hours.values()) + self.moved


def select(cols: Collections, config: Config, options: Options) -> Selection:
    """Count what each phase will touch; reads only."""
    configured = sink_names(config)
    selection = Selection(options, tuple(s for s in configured if s not in options.profiles))
    backfill = backfill_filter(options)
    if backfill is not None:
        selection.backfill = by_hour(cols, UNLOGGED_REVIEWS | backfill)
        if not backfill:
            selection.unparseable = cols.source.count_documents(
                UNLOGGED_REVIEWS | {"timestamp": {"$not": {"$type": "date"}}})
    moved = moved_filter(options)
    if moved is not None:
        selection.moved = cols.source.count_documents(moved)
    phase = hour_phase(options)
    if phase is not None:
        selection.hours = by_hour(cols, ALL_REVIEWS | phase.query())
        if options.rebuild:
            for doc in cols.rollups.find(_id_range(phase), {"_id": 1}):
                if doc["_id"] == floor_hour(doc["_id"]):   # anything else is not an hourly rollup
                    selection.hours.setdefault(doc["_id"], 0)
            selection.hours = dict(sorted(selection.hours.items()))
    return selection


def _id_range(phase: TimeRange) -> dict:
    query = phase.query()
    return {"_id": query["timestamp"]} if query else {}


def describe(selection: Selection, config: Config) -> list[str]:
    """The dry-run report: documents, hours and days, sinks, per phase."""
    options, zone = selection.options, config.model.zone
    lines = [f"range: {options.range.describe(zone)} ({config.model.timezone})"]
    if selection.moved:
        lines.append(f"move: {selection.moved} documents counted in a rebuilt hour but predicted outside it")
    if options.rebuild or selection.backfill or selection.unparseable:
        where = " (the range's partial hours)" if options.rebuild else ""
        lines.append(f"backfill{where}: {sum(selection.backfill.values()) + selection.unparseable} reviewed "
                     f"documents not yet logged, {_span(selection.backfill)}; profiles to: "
                     f"{_names(selection.backfill_sinks)}")
    if options.rebuild:
        lines.append(f"rebuild: {len(selection.hours)} rollup hours replaced, {_span(selection.hours)}, "
                     f"from {sum(selection.hours.values())} reviewed documents; new reviews' profiles to: "
                     f"{_names(selection.backfill_sinks)}")
    if options.profiles:
        lines.append(f"re-send: one profile per hour with reviews ({sum(1 for n in selection.hours.values() if n)} "
                     f"hours) to: {_names(options.profiles)}")
    days = Counter()
    for hours in (selection.backfill, selection.hours):
        for hour, n in hours.items():
            days[local_day(hour, zone)] += n
    lines.append(f"days ({config.model.timezone}): {len(days)}")
    for day in sorted(days)[:DAYS_SHOWN]:
        lines.append(f"  {day}: {days[day]} documents")
    if len(days) > DAYS_SHOWN:
        lines.append(f"  ... and {len(days) - DAYS_SHOWN} more days, to {max(days)}")
    return lines


def _span(hours: dict[dt.datetime, int]) -> str:
    if not hours:
        return "no hours"
    return f"{len(hours)} hours from {min(hours):%Y-%m-%d %H:00} to {max(hours):%Y-%m-%d %H:00} UTC"


def _names(sinks: Sequence[str]) -> str:
    return ", ".join(sinks) or "none"
