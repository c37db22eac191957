"""Pure functions from rollup totals to the API's JSON bodies; every metric comes from clara.metrics.

scikit-learn is slow to start per call (milliseconds), so metrics are cached by the exact counters
they are computed from: a past day's numbers are computed once, yet any change to its counters is a
new key and is computed afresh; the days missing from the cache share one scikit-learn call. The
handlers call these functions in an executor.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from clara.config import Config
from clara.metrics import AVERAGES, ClassificationMetrics, classification_metrics_each
from clara.predictions import PredictionTotals
from clara.rollups import LATENCY_EDGES, Totals
from web.hours import Span

SCORES = ("precision", "recall", "f1")
CACHED_METRICS = 8192
_cache: OrderedDict[tuple, ClassificationMetrics] = OrderedDict()
_cache_lock = threading.Lock()  # executor threads share the cache


def from_days(function, by_day: Mapping[dt.date, Totals], *args):
    """`function(totals, *args)` over the range's per-day Totals added up."""
    return function(Totals.sum(by_day.values()), *args)


def metrics_of(totals: Totals, n_classes: int) -> ClassificationMetrics:
    return metrics_each([totals], n_classes)[0]


def metrics_each(totals: Sequence[Totals], n_classes: int) -> list[ClassificationMetrics]:
    """The metrics of each Totals, from the cache or, for those missing, from one scikit-learn call."""
    keys = [(n_classes, tuple(sorted(t.cells.items())), tuple(sorted(t.rejected.items()))) for t in totals]
    with _cache_lock:
        found = {key: _cache[key] for key in keys if key in _cache}
        for key in found:
            _cache.move_to_end(key)
    missing = {key: one for key, one in zip(keys, totals) if key not in found}
    if missing:
        computed = dict(zip(missing, classification_metrics_each(list(missing.values()), n_classes)))
        found |= computed
        with _cache_lock:
            _cache.update(computed)
            while len(_cache) > CACHED_METRICS:
                _cache.popitem(last=False)
    return [found[key] for key in keys]


def averaged(metrics: ClassificationMetrics) -> dict[str, dict[str, float | None]]:
    """Macro and weighted precision/recall/F1; every value null when there is nothing to average."""
    return {average: metrics.averaged.get(average, dict.fromkeys(SCORES)) for average in AVERAGES}


def predicted_by_class(totals: Totals, n_classes: int) -> list[int]:
    """Reviewed predictions per predicted class, rejected-without-class ones included."""
    return [sum(n for (_, pred), n in totals.cells.items() if pred == c) + totals.rejected.get(c, 0)
            for c in range(n_classes)]


def latency(totals: Totals) -> dict:
    """Review latency: mean and histogram (bins by upper edge in seconds; the last bin is open)."""
    edges = [*LATENCY_EDGES, None]
    return {"count": totals.latency_count,
            "mean_seconds": totals.latency_ms / totals.latency_count / 1000 if totals.latency_count else None,
            "histogram": [{"upper_seconds": edge, "count": totals.latency_hist.get(i, 0)}
                          for i, edge in enumerate(edges)]}


def summary(totals: Totals, pending: int, days: Span, config: Config) -> dict:
    n = config.n_classes
    metrics = metrics_of(totals, n)
    return {"range": days.to_json(), "reviews": totals.reviews, "pending": pending,
            "rejected_without_class": sum(totals.rejected.values()), "accuracy": metrics.accuracy,
            "averages": averaged(metrics), "classes": list(config.model.classes),
            "colors": list(config.model.colors), "samples_by_class": metrics.per_class["support"],
            "predicted_by_class": predicted_by_class(totals, n),
            "mean_confidence": (totals.confidence_micros / totals.confidence_count / 1_000_000
                                if totals.confidence_count else None),
            "mean_latency_seconds": latency(totals)["mean_seconds"]}


def daily(by_period: Mapping, span: Span, config: Config) -> dict:
    """One value per local day of the range (`days`), or per local hour of an HourRange (`hours`: UTC start
    times); a period without reviews is null (a gap), never zero."""
    labels = f"{span.unit}s"
    body: dict = {"range": span.to_json(), "by": span.unit, labels: [], "reviews": [], "accuracy": [],
                  **{score: {average: [] for average in AVERAGES} for score in SCORES}}
    each = [by_period.get(period, Totals()) for period in span.periods]
    for period, totals, metrics in zip(span.periods, each, metrics_each(each, config.n_classes)):
        body[labels].append(span.label(period))
        body["reviews"].append(totals.reviews)
        body["accuracy"].append(metrics.accuracy)
        for average, scores in averaged(metrics).items():
            for score in SCORES:
                body[score][average].append(scores[score])
    return body


def classes(totals: Totals, days: Span, config: Config) -> dict:
    metrics = metrics_of(totals, config.n_classes)
    return {"range": days.to_json(), "classes": list(config.model.classes), "colors": list(config.model.colors),
            **{score: metrics.per_class[score] for score in (*SCORES, "support")},
            "predicted": predicted_by_class(totals, config.n_classes)}


def confusion(totals: Totals, days: Span, config: Config) -> dict:
    """Counts (rows: true class, columns: predicted class) and rates normalised by row."""
    matrix = metrics_of(totals, config.n_classes).confusion
    rates = [[cell / sum(row) for cell in row] if sum(row) else [None] * len(row) for row in matrix]
    return {"range": days.to_json(), "classes": list(config.model.classes), "matrix": matrix, "rates": rates,
            "rejected": [totals.rejected.get(c, 0) for c in range(config.n_classes)]}


def training(totals: Totals, predictions: PredictionTotals, days: Span, config: Config) -> dict:
    """The training set's class counts beside the range's predictions: all of them by predicted class (the
    prediction rollups; bad documents apart), and the reviewed ones by predicted and by true class."""
    n = config.n_classes
    true = [0] * n
    for (truth, _), count in totals.cells.items():
        if 0 <= truth < n:
            true[truth] += count
    return {"range": days.to_json(), "classes": list(config.model.classes), "colors": list(config.model.colors),
            "training_counts": list(config.model.training_counts),
            "predicted": predicted_by_class(totals, n), "reviewed_true": true,
            "reviews": totals.reviews, "rejected_without_class": sum(totals.rejected.values()),
            "all_predicted": [predictions.classes.get(c, 0) for c in range(n)],
            "all_predictions": predictions.predictions, "bad": predictions.bad}
