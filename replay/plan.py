"""What a replay selects, read-only: the documents, hours, days and sinks each phase will touch.

The same selection drives `--dry-run` (printed, nothing written) and the real run (progress totals).
Phases, in order: reviews not yet counted are backfilled through the consumer's batches (the whole
range, or only the parts of a rebuild's range outside whole hours); then whole hours, a group of them
per transaction, are rebuilt (rollups replaced, the counted collection made to agree) and/or their
profiles re-sent.
Without source markers (consumer.mark_source = false) "not yet counted" means "not in the counted
collection", as for the consumer's catch-up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Sequence

from clara.config import Config
from clara.db import Collections
from clara.rollups import local_day
from consumer.outbox_queue import sink_names
from consumer.catchup import ALL_REVIEWS, UNLOGGED_REVIEWS
from consumer.migrate import MIGRATIONS_ID, STEP
from replay.counted import CHUNK, CountedInRange, check_counted, gone_text
from replay.options import Options, TimeRange, floor_hour
from replay.predictions import PredictionsInRange, predictions_in_range

DAYS_SHOWN = 31


def backfill_filter(options: Options) -> dict | None:
    """The `query` given to catch_up (which adds "reviewed, not logged"); None: nothing to backfill."""
    if not options.rebuild:
        return options.range.query()
    edges = options.range.edges()
    return {"$or": [edge.query() for edge in edges]} if edges else None


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


def uncounted_by_hour(cols: Collections, match: dict) -> dict[dt.datetime, int]:
    """Matching documents the counted collection does not hold, per UTC prediction hour."""
    hours: Counter = Counter()
    docs: list[dict] = []
    for doc in itertools.chain(cols.source.find(dated(match), {"timestamp": 1}, batch_size=CHUNK), [None]):
        if doc is not None:
            docs.append(doc)
        if docs and (doc is None or len(docs) == CHUNK):
            counted = set(cols.counted.distinct("_id", {"_id": {"$in": [d["_id"] for d in docs]}}))
            hours.update(floor_hour(d["timestamp"]) for d in docs if d["_id"] not in counted)
            docs = []
    return dict(sorted(hours.items()))


@dataclasses.dataclass
class Selection:
    options: Options
    backfill_sinks: tuple[str, ...]
    backfill: dict[dt.datetime, int] = dataclasses.field(default_factory=dict)
    hours: dict[dt.datetime, int] = dataclasses.field(default_factory=dict)   # hour phase: reviews per hour
    counted: CountedInRange | None = None   # a rebuild: the counted entries of its hours
    unparseable: int = 0   # backfill documents whose timestamp is not a date (set aside)
    unmigrated: int = 0    # documents still carrying the previous version's logged_as (migrated first)
    predictions: PredictionsInRange | None = None   # a rebuild: its whole hours' predictions, recounted
    segments: tuple[int, int] | None = None   # a rebuild with segments: (review, prediction) segment rollups

    @property
    def total(self) -> int:
        return sum(self.backfill.values()) + self.unparseable + sum(self.hours.values())


def select(cols: Collections, config: Config, options: Options, counted: CountedInRange | None = None,
           predictions: PredictionsInRange | None = None) -> Selection:
    """Count what each phase will touch; reads only (`counted`, `predictions`: check_counted and
    predictions_in_range of the rebuilt hours, if done)."""
    configured = sink_names(config)
    selection = Selection(options, tuple(s for s in configured if s not in options.profiles))
    if not (cols.state.find_one({"_id": MIGRATIONS_ID}) or {}).get(STEP):
        selection.unmigrated = cols.source.count_documents({"logged_as": {"$exists": True}})
    backfill = backfill_filter(options)
    if backfill is not None:
        marked = config.consumer.mark_source
        base = UNLOGGED_REVIEWS if marked else ALL_REVIEWS
        selection.backfill = by_hour(cols, base | backfill) if marked else uncounted_by_hour(cols, base | backfill)
        if not backfill:   # never counted: they are set aside
            selection.unparseable = cols.source.count_documents(base | {"timestamp": {"$not": {"$type": "date"}}})
    phase = hour_phase(options)
    if phase is not None:
        selection.hours = by_hour(cols, ALL_REVIEWS | phase.query())
        if options.rebuild:
            for doc in cols.rollups.find(_id_range(phase), {"_id": 1}):   # rollup periods, by their UTC hour
                selection.hours.setdefault(floor_hour(doc["_id"]), 0)
            selection.counted = check_counted(cols, phase, moved=options.dry_run) if counted is None else counted
            for period in selection.counted.hours:   # counted there, whether or not a document is left
                selection.hours.setdefault(floor_hour(period), 0)
            selection.hours = dict(sorted(selection.hours.items()))
            selection.predictions = predictions or predictions_in_range(cols, phase)
            if config.segments.enabled:
                selection.segments = (segment_rollups_in(cols, config, ALL_REVIEWS | phase.query()),
                                      segment_rollups_in(cols, config, phase.query()))
    return selection


def segment_rollups_in(cols: Collections, config: Config, match: dict) -> int:
    """How many segment rollups (one per period and field) the matching documents fill."""
    minutes = max(int(config.model.rollup_period.total_seconds() // 60), 1)
    pipeline = [{"$match": dated(match)},
                {"$group": {"_id": {"$dateTrunc": {"date": "$timestamp", "unit": "minute", "binSize": minutes}}}},
                {"$count": "periods"}]
    periods = next(cols.source.aggregate(pipeline), {"periods": 0})["periods"]
    return periods * len(config.segments.fields)


def _id_range(phase: TimeRange) -> dict:
    query = phase.query()
    return {"_id": query["timestamp"]} if query else {}


def describe(selection: Selection, config: Config) -> list[str]:
    """The dry-run report: documents, hours and days, sinks, per phase."""
    options, zone = selection.options, config.model.zone
    lines = [f"range: {options.range.describe(zone)} ({config.model.timezone})"]
    if selection.unmigrated:
        lines.append(f"migrate first: {selection.unmigrated} documents carry the previous version's logged_as "
                     f"snapshot; it is copied into {config.mongodb.counted_collection} (once)")
    if options.rebuild or selection.backfill or selection.unparseable:
        where = " (the range's partial hours)" if options.rebuild else ""
        lines.append(f"backfill{where}: {sum(selection.backfill.values()) + selection.unparseable} reviewed "
                     f"documents not yet logged, {_span(selection.backfill)}; profiles to: "
                     f"{_names(selection.backfill_sinks)}")
    if options.rebuild:
        lines.append(f"rebuild: {len(selection.hours)} rollup hours replaced, {_span(selection.hours)}, "
                     f"from {sum(selection.hours.values())} reviewed documents; new reviews' profiles to: "
                     f"{_names(selection.backfill_sinks)}")
        lines += _counted_lines(selection.counted, options, config)
        predictions = selection.predictions
        hours = "every hour" if predictions.hours is None else f"{len(predictions.hours)} hours"
        lines.append(f"predictions: {predictions.present} in {hours} recounted into the prediction rollups "
                     f"(by the running consumer if there is one)")
        if predictions.lost:
            outcome = ("dropped (--allow-shrink)" if options.allow_shrink else
                       "the rebuild refuses to drop them (exit code 2) unless --allow-shrink is given")
            lines.append(f"predictions gone: {predictions.lost} counted in the range are no longer in "
                         f"the source there: {outcome}")
        if selection.segments is not None:
            lines.append(f"segments ({', '.join(config.segments.fields)}; at most {config.segments.max_values} "
                         f"values each): at most {selection.segments[0]} review and {selection.segments[1]} "
                         f"prediction segment rollups written (one per period and field)")
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


def _counted_lines(counted: CountedInRange | None, options: Options, config: Config) -> list[str]:
    if counted is None:
        return []
    lines = []
    if counted.moved:
        lines.append(f"move: {counted.moved} documents counted in a rebuilt hour but now predicted outside the "
                     f"rebuilt hours: counted in their new hour, taken back from the old one")
    if counted.gone_reviews:
        outcome = ("dropped, with their counted entries (--allow-shrink)" if options.allow_shrink else
                   "the rebuild refuses to remove them (exit code 2) unless --allow-shrink is given")
        lines.append(f"gone: {gone_text(counted.gone, config)} whose documents no longer exist (deleted, e.g. "
                     f"by a TTL index): {outcome}")
    else:
        lines.append("gone: no counted review of the rebuilt hours has lost its document")
    return lines


def _span(hours: dict[dt.datetime, int]) -> str:
    if not hours:
        return "no hours"
    return f"{len(hours)} hours from {min(hours):%Y-%m-%d %H:00} to {max(hours):%Y-%m-%d %H:00} UTC"


def _names(sinks: Sequence[str]) -> str:
    return ", ".join(sinks) or "none"
