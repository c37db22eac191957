"""Review rollups: what one review adds to its prediction period, and how periods add up again.

A rollup document is keyed by the UTC start of the rollup period of prediction time (an hour, or half
or a quarter of one in zones whose offsets need it: clara/periods.py; code and stored fields call it
the "hour") and holds integer counters only, so that increments, corrections (a decrement plus an
increment) and sums are exact in any order:

    {_id: <hour>, reviews: n, cells: {"<true>_<pred>": n}, rejected: {"<pred>": n},
     confidence_hist: {"<bin>": n}, confidence_count: n, confidence_micros: n,
     latency_hist: {"<bin>": n}, latency_count: n, latency_ms: n,
     calibration_cells: {"<cbin>_<true>_<pred>": n}, calibration_rejected: {"<cbin>_<pred>": n},
     calibration_micros: {"<cbin>_<pred>": micros}}

`confidence_hist` bins are `confidence_bin`'s (kept as they were); the `calibration_*` maps are keyed by
scikit-learn's calibration bins (`calibration_bin_micros`, estimates.calibration), for the reliability diagram,
post-stratified estimates and bin-weighted BBSE. They hold only what cannot be derived: a calibration
bin's reviewed and correct counts, per predicted class or not, are sums of its cells and rejected
counts (`Totals.calibration`). A review without a confidence is in none of them.

The counted snapshot of a review (`Counted`) is kept in CLARA's counted collection when it is counted,
so that a later correction can take back exactly what was added, from the period it was added to, and,
with `segments.fields` configured, from the segments it was added to (its `segment` map; absent without
segments, so the entries are as before). Segment rollups: clara/segment_rollups.py.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from clara.periods import period_start
from clara.records import Record, Review
from clara.segments import Segment

UTC = dt.timezone.utc
CONFIDENCE_BINS = 20
CALIBRATION_MAPS = ("calibration_cells", "calibration_rejected", "calibration_micros")
# Upper edges, in seconds, of the review-latency histogram bins; the last bin is open-ended.
LATENCY_EDGES = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The UTC hour a moment falls in (whylogs profiles are per UTC hour; rollups per period_start)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def confidence_bin(confidence: float) -> int:
    return min(int(confidence * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)


def calibration_bin_micros(confidence_micros: int) -> int:
    """estimates.bins.calibration_bin_micros: scikit-learn's calibration_curve bin of a confidence in
    micros (an inner edge goes to the lower bin), CONFIDENCE_BINS of them."""
    return _calibration_bin()(confidence_micros, CONFIDENCE_BINS)


@functools.cache
def _calibration_bin():
    # Imported on first use, once: estimates.bins imports CONFIDENCE_BINS from this module.
    from estimates.bins import calibration_bin_micros

    return calibration_bin_micros


def latency_bin(seconds: float) -> int:
    return bisect.bisect_right(LATENCY_EDGES, seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class Counted:
    """What a logged review added to the rollups; kept on the source document as `logged_as`."""

    hour: dt.datetime
    predicted: int
    truth: int | None        # None: rejected without a class
    confidence_micros: int | None
    latency_ms: int | None
    segment: Segment = ()    # (field, value) per segment field, sorted by field; () without segments

    @classmethod
    def of(cls, record: Record, period: dt.timedelta, segment: Segment = ()) -> Counted:
        """What `record` adds, filed under its rollup period of length `period` (config.model.rollup_period)
        and its `segment` (clara.segments.Admission.segment_of)."""
        if record.review is Review.PENDING:
            raise ValueError("a pending prediction is not counted")
        confidence = None if record.confidence is None else round(record.confidence * 1_000_000)
        latency = record.latency_seconds
        return cls(period_start(record.timestamp, period), record.predicted, record.truth,
                   confidence, None if latency is None else round(latency * 1000), segment)

    def to_doc(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies and was a third of a backfill's Python time.
        doc = {"hour": self.hour, "predicted": self.predicted, "truth": self.truth,
               "confidence_micros": self.confidence_micros, "latency_ms": self.latency_ms}
        if self.segment:
            doc["segment"] = dict(self.segment)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Counted:
        hour = doc["hour"]
        segment = tuple(sorted(doc["segment"].items())) if doc.get("segment") else ()
        return cls(hour, doc["predicted"], doc["truth"], doc["confidence_micros"], doc["latency_ms"], segment)

    def increments(self, sign: int = 1) -> dict[str, int]:
        """The $inc this review makes on its hour's rollup (sign -1 takes it back)."""
        inc = {"reviews": sign}
        if self.truth is None:
            inc[f"rejected.{self.predicted}"] = sign
        else:
            inc[f"cells.{self.truth}_{self.predicted}"] = sign
        if self.confidence_micros is not None:
            inc[f"confidence_hist.{confidence_bin(self.confidence_micros / 1_000_000)}"] = sign
            inc["confidence_count"] = sign
            inc["confidence_micros"] = sign * self.confidence_micros
            cal = calibration_bin_micros(self.confidence_micros)
            if self.truth is None:
                inc[f"calibration_rejected.{cal}_{self.predicted}"] = sign
            else:
                inc[f"calibration_cells.{cal}_{self.truth}_{self.predicted}"] = sign
            if self.confidence_micros:
                inc[f"calibration_micros.{cal}_{self.predicted}"] = sign * self.confidence_micros
        if self.latency_ms is not None:
            inc[f"latency_hist.{latency_bin(self.latency_ms / 1000)}"] = sign
            inc["latency_count"] = sign
            inc["latency_ms"] = sign * self.latency_ms
        return inc


class PeriodDelta:
    """Increments per period and whole segment (every field's value; () without segments), merged, ready to
    become one $inc per period and one per period and segment value. The overall counters of a period are
    the sum of its segments', folded at the end (by_hour), not kept beside them: a second sum per document
    was most of what segments cost the consumer."""

    def __init__(self) -> None:
        self.by_segment: dict[tuple[dt.datetime, Segment], Counter[str]] = defaultdict(Counter)

    @property
    def by_hour(self) -> dict[dt.datetime, Counter[str]]:
        return fold_by_hour(self.by_segment)

    def hours(self) -> set[dt.datetime]:
        """The periods with increments (without folding them)."""
        return {hour for hour, _ in self.by_segment}

    def updates(self) -> list[tuple[dt.datetime, dict[str, int]]]:
        """(hour, $inc) pairs with zero entries dropped, in hour order."""
        return _nonzero(self.by_hour)

    def segment_updates(self) -> list[tuple[tuple[dt.datetime, str, str], dict[str, int]]]:
        """((hour, field, value), $inc) pairs with zero entries dropped, in order."""
        return _nonzero(by_field(self.by_segment))


class RollupDelta(PeriodDelta):
    """The review rollups' increments: a review counted (or, sign -1, taken back) in its period and segment."""

    def add(self, counted: Counted, sign: int = 1) -> None:
        add_into(self.by_segment[(counted.hour, counted.segment)], counted.increments(sign))

    def merge(self, other: RollupDelta, keep: Callable[[dt.datetime], bool] = lambda hour: True) -> None:
        """Add `other`'s increments to the periods `keep` accepts, segments included."""
        for key, counter in other.by_segment.items():
            if keep(key[0]):
                add_into(self.by_segment[key], counter)


def add_into(counter: dict[str, int], inc: Mapping[str, int]) -> None:
    """`inc` added to `counter` in place: Counter.update without its per-call checks, once per document."""
    get = counter.get
    for key, value in inc.items():
        counter[key] = get(key, 0) + value


def fold_by_hour(by_segment: Mapping[tuple[dt.datetime, Segment], Mapping[str, int]]) -> dict[dt.datetime,
                                                                                               Counter[str]]:
    """Counters per (period, whole segment) summed per period: the overall counters."""
    folded: dict[dt.datetime, Counter[str]] = defaultdict(Counter)
    for (hour, _), counter in by_segment.items():
        add_into(folded[hour], counter)
    return folded


def by_field(by_segment: Mapping[tuple[dt.datetime, Segment], Mapping[str, int]]) -> dict[tuple[dt.datetime, str, str],
                                                                                          dict[str, int]]:
    """Counters per (period, whole segment) as counters per (period, field, value)."""
    split: dict[tuple[dt.datetime, str, str], dict[str, int]] = defaultdict(dict)
    for (hour, segment), counter in by_segment.items():
        for field, value in segment:
            add_into(split[(hour, field, value)], counter)
    return split


def _nonzero(counters: Mapping[Any, Counter[str]]) -> list[tuple[Any, dict[str, int]]]:
    result = []
    for key in sorted(counters):
        inc = {name: value for name, value in counters[key].items() if value}
        if inc:
            result.append((key, inc))
    return result


@dataclasses.dataclass
class Totals:
    """Counters summed over some set of hours."""

    reviews: int = 0
    cells: Counter = dataclasses.field(default_factory=Counter)        # (true, pred) -> n
    rejected: Counter = dataclasses.field(default_factory=Counter)     # pred -> n
    confidence_hist: Counter = dataclasses.field(default_factory=Counter)
    confidence_count: int = 0
    confidence_micros: int = 0
    latency_hist: Counter = dataclasses.field(default_factory=Counter)
    latency_count: int = 0
    latency_ms: int = 0
    # Keyed as stored ("<cbin>_<true>_<pred>", "<cbin>_<pred>"), read through `calibration` and
    # `calibration_confusion`: converting ~500 keys a day costs as much as summing them, and only the
    # estimates need them.
    calibration_cells: Counter = dataclasses.field(default_factory=Counter)
    calibration_rejected: Counter = dataclasses.field(default_factory=Counter)
    calibration_micros: Counter = dataclasses.field(default_factory=Counter)

    def add_doc(self, doc: Mapping[str, Any]) -> None:
        self.reviews += doc.get("reviews", 0)
        for key, value in (doc.get("cells") or {}).items():
            true, pred = key.split("_")
            self.cells[(int(true), int(pred))] += value
        for key, value in (doc.get("rejected") or {}).items():
            self.rejected[int(key)] += value
        for key, value in (doc.get("confidence_hist") or {}).items():
            self.confidence_hist[int(key)] += value
        for key, value in (doc.get("latency_hist") or {}).items():
            self.latency_hist[int(key)] += value
        self.confidence_count += doc.get("confidence_count", 0)
        self.confidence_micros += doc.get("confidence_micros", 0)
        self.latency_count += doc.get("latency_count", 0)
        self.latency_ms += doc.get("latency_ms", 0)
        for name in CALIBRATION_MAPS:
            getattr(self, name).update(doc.get(name) or {})

    def calibration(self, predicted: int | None = None,
                    bins: int = CONFIDENCE_BINS) -> tuple[list[int], list[int], list[int]]:
        """Per calibration bin: reviews (rejected ones included), correct ones and their confidence sum in
        micros, of every predicted class or of one."""
        reviewed, correct, micros = [0] * bins, [0] * bins, [0] * bins
        for (b, true, pred), n in _tuple_keys(self.calibration_cells):
            if predicted is None or pred == predicted:
                reviewed[b] += n
                correct[b] += n if true == pred else 0
        for (b, pred), n in _tuple_keys(self.calibration_rejected):
            if predicted is None or pred == predicted:
                reviewed[b] += n
        for (b, pred), n in _tuple_keys(self.calibration_micros):
            if predicted is None or pred == predicted:
                micros[b] += n
        return reviewed, correct, micros

    def calibration_confusion(self, n_classes: int, bins: int = CONFIDENCE_BINS) -> list[list[list[int]]]:
        """Reviewed confusion counts per calibration bin, [bin][true][pred] (rejected reviews have no cell)."""
        cells = [[[0] * n_classes for _ in range(n_classes)] for _ in range(bins)]
        for (b, true, pred), n in _tuple_keys(self.calibration_cells):
            cells[b][true][pred] += n
        return cells

    @classmethod
    def of(cls, docs: Iterable[Mapping[str, Any]]) -> Totals:
        summer = _Summer()
        for doc in docs:
            summer.add(doc)
        return summer.totals()

    @classmethod
    def sum(cls, parts: Iterable[Totals]) -> Totals:
        """Totals of several sets of hours (the days of a range, say) added up."""
        result = cls()
        for part in parts:
            for field in dataclasses.fields(cls):
                value = getattr(part, field.name)
                if isinstance(value, Counter):
                    getattr(result, field.name).update(value)
                else:
                    setattr(result, field.name, getattr(result, field.name) + value)
        return result


class _Summer:
    """Sums rollup documents keyed as stored (strings), converting the keys once at the end.

    The same sums as Totals.add_doc per document, several times faster over thousands of hours.
    """

    SCALARS = ("reviews", "confidence_count", "confidence_micros", "latency_count", "latency_ms")
    MAPS = ("cells", "rejected", "confidence_hist", "latency_hist", *CALIBRATION_MAPS)

    def __init__(self) -> None:
        self.scalars = dict.fromkeys(self.SCALARS, 0)
        self.maps: dict[str, dict[str, int]] = {name: {} for name in self.MAPS}

    def add(self, doc: Mapping[str, Any]) -> None:
        scalars = self.scalars
        for name in self.SCALARS:
            scalars[name] += doc.get(name, 0)
        for name in self.MAPS:
            values = doc.get(name)
            if values:
                acc = self.maps[name]
                get = acc.get
                for key, value in values.items():
                    acc[key] = get(key, 0) + value

    def totals(self) -> Totals:
        cells: Counter = Counter()
        for key, value in self.maps["cells"].items():
            true, pred = key.split("_")
            cells[(int(true), int(pred))] += value
        ints = {name: Counter({int(key): value for key, value in self.maps[name].items()})
                for name in ("rejected", "confidence_hist", "latency_hist")}
        stored = {name: Counter(self.maps[name]) for name in CALIBRATION_MAPS}
        return Totals(cells=cells, **ints, **stored, **self.scalars)


def _tuple_keys(values: Mapping[str, int]) -> Iterator[tuple[tuple[int, ...], int]]:
    """("3_1_2", n) -> ((3, 1, 2), n): a calibration map's stored keys as integers."""
    for key, n in values.items():
        yield tuple(map(int, key.split("_"))), n


def local_day(hour: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The calendar day, in the configured zone, that an hour belongs to."""
    return hour.astimezone(zone).date()


def day_bounds(first: dt.date, last: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC [start, end) covering local days first..last inclusive, across DST changes."""
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(UTC)
    return start, end


def totals_by_day(docs: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> dict[dt.date, Totals]:
    days: dict[dt.date, _Summer] = defaultdict(_Summer)
    for doc in docs:
        days[local_day(doc["_id"], zone)].add(doc)
    return {day: summer.totals() for day, summer in days.items()}
