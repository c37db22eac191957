"""Prediction rollups: every prediction counted once, by the rollup period of its prediction time, at insert.

Label-free and known at once, unlike the review rollups (clara/rollups.py), which wait for reviewers.
One document per rollup period (an hour, or less where the zone needs it: clara/periods.py; called the
"hour" here as in the review rollups), integer counters only, so increments and recounts add up exactly:

    {_id: <hour>, predictions: n, classes: {"<pred>": n}, confidence: {"<pred>": {"<bin>": n}},
     calibration: {"<pred>": {"<cbin>": n}}, calibration_micros: {"<pred>": {"<cbin>": micros}},
     no_confidence: {"<pred>": n}, bad: n, updated_at: <date>, recount_id: <id>}

`confidence` bins are clara.rollups.confidence_bin's (kept as they were); `calibration` and
`calibration_micros` (the confidence sum, in integer micros) are keyed by scikit-learn's calibration bins
(clara.rollups.calibration_bin_micros), the bins of the review rollups' calibration maps, so that a
bin's unreviewed count is its prediction count less its reviews.

`bad` counts documents with a prediction time but a broken contract (unknown class, confidence out of
range...); a document without a usable prediction time belongs to no hour and is only set aside.
`recount_id` names the last recount (consumer/predictions.py) that added to the hour. With segments.fields
configured, the same counters are kept per period and segment value in a collection of their own
(clara/segment_rollups.py); these documents stay as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from clara.periods import period_start
from clara.records import Rejection, parse_document
from clara.rollups import CONFIDENCE_BINS, PeriodDelta, add_into, calibration_bin_micros, confidence_bin, local_day
from clara.segments import Segment

UTC = dt.timezone.utc

FLAT = ("classes", "no_confidence")                            # {"<pred>": n}
NESTED = ("confidence", "calibration", "calibration_micros")   # {"<pred>": {"<bin>": n}}
# Rejections that leave no prediction time to file the document under.
TIMELESS = {"_id", "document", "timestamp"}


def prediction_key(doc: Mapping[str, Any], n_classes: int,
                   period: dt.timedelta) -> tuple[dt.datetime, dict[str, int]] | None:
    """The hour a source document's prediction counts in and its $inc, or None when it has no hour."""
    return classify(doc, n_classes, period)[0]


def classify(doc: Mapping[str, Any], n_classes: int,
             period: dt.timedelta) -> tuple[tuple[dt.datetime, dict[str, int]] | None, Rejection | None]:
    """(hour and $inc, or None) and, for a document that breaks the contract, the Rejection; the hour is
    the start of the rollup period of length `period` (config.model.rollup_period)."""
    parsed = parse_document(doc, n_classes)
    if isinstance(parsed, Rejection):
        # The parser names the first broken field; the prediction time may be broken too, after it.
        moment = doc.get("timestamp")
        if parsed.field in TIMELESS or not isinstance(moment, dt.datetime):
            return None, parsed
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return (period_start(moment, period), {"predictions": 1, "bad": 1}), parsed
    predicted = parsed.predicted
    inc = {"predictions": 1, f"classes.{predicted}": 1}
    if parsed.confidence is None:
        inc[f"no_confidence.{predicted}"] = 1
    else:
        inc[f"confidence.{predicted}.{confidence_bin(parsed.confidence)}"] = 1
        micros = round(parsed.confidence * 1_000_000)   # as clara.rollups.Counted.of rounds a review's
        cal = calibration_bin_micros(micros)
        inc[f"calibration.{predicted}.{cal}"] = 1
        if micros:
            inc[f"calibration_micros.{predicted}.{cal}"] = micros
    return (period_start(parsed.timestamp, period), inc), None


class PredictionDelta(PeriodDelta):
    """The prediction rollups' increments, merged: one $inc per hour (and per hour and segment value)."""

    def add(self, hour: dt.datetime, inc: Mapping[str, int], segment: Segment = ()) -> None:
        add_into(self.by_segment[(hour, segment)], inc)

    def add_doc(self, doc: Mapping[str, Any], n_classes: int, period: dt.timedelta) -> bool:
        """Count one source document; False when it has no hour."""
        key = prediction_key(doc, n_classes, period)
        if key is None:
            return False
        self.add(*key)
        return True

    def documents(self) -> dict[dt.datetime, dict[str, Any]]:
        """Each hour's counters as a stored document (nested maps), for a recount that replaces the hour."""
        return {hour: nest(inc) | {"_id": hour} for hour, inc in self.updates()}


def nest(flat: Mapping[str, int]) -> dict[str, Any]:
    """{"classes.3": 2} -> {"classes": {"3": 2}}: the shape $inc leaves behind, for a replace."""
    result: dict[str, Any] = {}
    add_paths(result, flat)
    return result


def add_paths(doc: dict[str, Any], inc: Mapping[str, int]) -> None:
    """What {$inc: inc} does to `doc` (dotted paths into nested documents, missing ones made), in place."""
    for path, n in inc.items():
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = node.get(leaf, 0) + n


@dataclasses.dataclass
class PredictionTotals:
    """Prediction counters summed over some set of hours."""

    predictions: int = 0
    bad: int = 0
    classes: Counter = dataclasses.field(default_factory=Counter)             # pred -> n
    confidence: Counter = dataclasses.field(default_factory=Counter)          # (pred, bin) -> n
    no_confidence: Counter = dataclasses.field(default_factory=Counter)       # pred -> n
    calibration: Counter = dataclasses.field(default_factory=Counter)         # (pred, cbin) -> n
    calibration_micros: Counter = dataclasses.field(default_factory=Counter)  # (pred, cbin) -> micros

    def add_doc(self, doc: Mapping[str, Any]) -> None:
        self.predictions += doc.get("predictions", 0)
        self.bad += doc.get("bad", 0)
        for name in FLAT:
            counter = getattr(self, name)
            for key, n in (doc.get(name) or {}).items():
                counter[int(key)] += n
        for name in NESTED:
            counter = getattr(self, name)
            for pred, bins in (doc.get(name) or {}).items():
                for key, n in bins.items():
                    counter[(int(pred), int(key))] += n

    @classmethod
    def of(cls, docs: Iterable[Mapping[str, Any]]) -> PredictionTotals:
        """The documents summed as stored (string keys), then converted once by add_doc: several times faster
        over a day's hours than add_doc on each."""
        summed: dict[str, Any] = {"predictions": 0, "bad": 0, **{name: {} for name in (*FLAT, *NESTED)}}
        for doc in docs:
            summed["predictions"] += doc.get("predictions", 0)
            summed["bad"] += doc.get("bad", 0)
            for name in FLAT:
                _add(summed[name], doc.get(name))
            for name in NESTED:
                acc = summed[name]
                for pred, bins in (doc.get(name) or {}).items():
                    _add(acc.setdefault(pred, {}), bins)
        totals = cls()
        totals.add_doc(summed)
        return totals

    @classmethod
    def sum(cls, parts: Iterable[PredictionTotals]) -> PredictionTotals:
        """Totals of several sets of hours (the days of a range, say) added up, into a new object."""
        result = cls()
        for part in parts:
            result.predictions += part.predictions
            result.bad += part.bad
            result.classes.update(part.classes)
            result.confidence.update(part.confidence)
            result.calibration.update(part.calibration)
            result.calibration_micros.update(part.calibration_micros)
            result.no_confidence.update(part.no_confidence)
        return result

    def confidence_hist(self) -> Counter:
        """Confidence bins over every predicted class."""
        hist: Counter = Counter()
        for (_, key), n in self.confidence.items():
            hist[key] += n
        return hist

    def calibration_counts(self, predicted: int | None = None,
                           bins: int = CONFIDENCE_BINS) -> tuple[list[int], list[int]]:
        """Per calibration bin: predictions and their confidence sum in micros, of every predicted class or of one."""
        counts, micros = [0] * bins, [0] * bins
        for (pred, b), n in self.calibration.items():
            if predicted is None or pred == predicted:
                counts[b] += n
        for (pred, b), n in self.calibration_micros.items():
            if predicted is None or pred == predicted:
                micros[b] += n
        return counts, micros


def _add(acc: dict[str, int], values: Mapping[str, int] | None) -> None:
    if values:
        get = acc.get
        for key, n in values.items():
            acc[key] = get(key, 0) + n


def predictions_by_day(docs: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> dict[dt.date, PredictionTotals]:
    """Prediction counters per calendar day in `zone`, from hour documents."""
    days: dict[dt.date, list] = defaultdict(list)
    for doc in docs:
        days[local_day(doc["_id"], zone)].append(doc)
    return {day: PredictionTotals.of(hours) for day, hours in days.items()}
