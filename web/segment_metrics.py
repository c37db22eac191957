"""/metrics per segment: gauges of each segment value over the current window, from the segment rollups.

For every configured segment field (segments.fields) and each of its values with predictions or reviews in
the last web.default_range_days days, labelled `field` and `value`: reviews, correct reviews, accuracy,
predictions and pending reviews (web/volume.py's rule), read from clara.segment_rollups like /api/segments.

Gauges, not counters: the segment rollups are exact (written in the batch's transaction) and a correction
moves a review between segments, which a counter cannot follow; counters would also need the consumer to
write per-segment telemetry after every batch. `sum by (field) (clara_segment_reviews)` is clara_reviews
(every field's segments add up to the overall figures), and `clara_segment_correct_reviews /
clara_segment_reviews` can be summed over values before dividing.

Cardinality: at most segments.max_values values per field, plus `unknown` and `other`. The cap admits no
more than that, but values admitted under an earlier, higher cap stay in the rollups; beyond the cap the
busiest values are kept and the rest fold into `other`, so the sums stay exact. Fields no longer configured
are not exposed, and without segments nothing is added.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from clara.db import Collections
from clara.predictions import PredictionTotals
from clara.rollups import Totals
from clara.segment_rollups import segment_prediction_totals, segment_totals
from clara.segments import BUCKETS, OTHER, UNKNOWN
from clara.settings import SegmentSettings
from web.volume import Volume

LABELS = ["field", "value"]


@dataclasses.dataclass(frozen=True)
class SegmentFigures:
    """One segment value's review and prediction totals over the window."""

    field: str
    value: str
    reviews: Totals
    predictions: PredictionTotals

    @property
    def correct(self) -> int:
        return sum(n for (truth, predicted), n in self.reviews.cells.items() if truth == predicted)


def window_figures(cols: Collections, settings: SegmentSettings, start: dt.datetime,
                   end: dt.datetime) -> list[SegmentFigures]:
    """Every configured field's segment figures over [start, end), at most max_values + 2 values a field."""
    return [one for field in settings.fields
            for one in capped(field, segment_totals(cols, field, start, end),
                              segment_prediction_totals(cols, field, start, end), settings.max_values)]


def capped(field: str, reviews: Mapping[str, Totals], predictions: Mapping[str, PredictionTotals],
           cap: int) -> list[SegmentFigures]:
    """The field's values, the `cap` busiest (by predictions, then reviews) kept beside unknown and other, the
    rest folded into other."""
    def size(value: str) -> tuple[int, int, str]:
        return (-predictions.get(value, PredictionTotals()).predictions, -reviews.get(value, Totals()).reviews,
                value)

    named = sorted(set(reviews) | set(predictions), key=size)
    kept = [value for value in named if value not in BUCKETS][:cap]
    folded = [value for value in named if value not in kept and value != UNKNOWN]   # other itself included
    figures = [SegmentFigures(field, value, reviews.get(value, Totals()), predictions.get(value, PredictionTotals()))
               for value in kept + ([UNKNOWN] if UNKNOWN in named else [])]
    if folded:
        figures.append(SegmentFigures(field, OTHER, Totals.sum(reviews[v] for v in folded if v in reviews),
                                      PredictionTotals.sum(predictions[v] for v in folded if v in predictions)))
    return sorted(figures, key=lambda one: one.value)


def families(figures: Sequence[SegmentFigures], days: int) -> list[Metric]:
    """The per-segment gauges (none without figures)."""
    if not figures:
        return []
    window = f"the last {days} days"
    gauges = {
        "reviews": GaugeMetricFamily("clara_segment_reviews", f"Reviews of predictions made in {window}, per "
                                     "segment (reviewed predictions)", labels=LABELS),
        "correct": GaugeMetricFamily("clara_segment_correct_reviews", f"Reviews in {window} that confirmed the "
                                     "prediction, per segment (reviewed predictions)", labels=LABELS),
        "accuracy": GaugeMetricFamily("clara_segment_accuracy", f"Accuracy over {window}, per segment (reviewed "
                                      "predictions)", labels=LABELS),
        "predictions": GaugeMetricFamily("clara_segment_predictions", f"Predictions made in {window}, per segment "
                                         "(all predictions)", labels=LABELS),
        "pending": GaugeMetricFamily("clara_segment_pending_reviews", f"Predictions made in {window} not reviewed "
                                     "yet, per segment", labels=LABELS),
    }
    for one in figures:
        labels = [one.field, one.value]
        reviews = one.reviews.reviews
        gauges["reviews"].add_metric(labels, reviews)
        gauges["correct"].add_metric(labels, one.correct)
        gauges["accuracy"].add_metric(labels, one.correct / reviews if reviews else float("nan"))
        gauges["predictions"].add_metric(labels, one.predictions.predictions)
        gauges["pending"].add_metric(labels, Volume.of(one.predictions, one.reviews).pending)
    return list(gauges.values())
